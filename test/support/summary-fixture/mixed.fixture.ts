// A passing, a failing, a skipped and a todo test (summary-reporter.test.ts runs this folder).
import { expect, it } from 'vitest';

it('passes', () => {
  expect(1 + 1).toBe(2);
});

it('fails', () => {
  expect(1 + 1).toBe(3);
});

it.skip('is skipped', () => {
  expect(true).toBe(true);
});

it.todo('is still to write');
