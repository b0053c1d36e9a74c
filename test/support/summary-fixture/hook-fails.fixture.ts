// A test file whose tests pass but whose afterAll hook throws: it errors outside a test.
import { afterAll, expect, it } from 'vitest';

afterAll(() => {
  throw new Error('afterAll fails');
});

it('passes before the hook fails', () => {
  expect(2).toBe(2);
});
