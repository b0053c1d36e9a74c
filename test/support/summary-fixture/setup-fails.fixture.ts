// A suite whose beforeAll hook throws: its test never runs, and the file errors outside a test.
import { beforeAll, describe, expect, it } from 'vitest';

describe('a suite that cannot set up', () => {
  beforeAll(() => {
    throw new Error('beforeAll fails');
  });

  it('never runs', () => {
    expect(true).toBe(true);
  });
});
