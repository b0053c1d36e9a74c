// A passing test that leaves a rejected promise nobody awaits: vitest reports an unhandled error.
import { expect, it } from 'vitest';

it('passes but leaves an unhandled rejection', async () => {
  void Promise.reject(new Error('nobody waits for this'));
  await new Promise((resolve) => setTimeout(resolve, 20));
  expect(true).toBe(true);
});
