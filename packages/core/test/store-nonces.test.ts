/** The nonce replay cache (SET NX EX) on real Redis. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStores, randomNonceB64, type StoreFixture } from './helpers.js';

let f: StoreFixture;
beforeEach(async () => {
  f = await openStores('nonce', 600);
});
afterEach(async () => {
  await f.close();
});

describe('nonce record', () => {
  it('accepts a nonce once, then reports a replay', async () => {
    const n = randomNonceB64();
    expect(await f.stores.nonces.record(n)).toBe(true);
    expect(await f.stores.nonces.record(n)).toBe(false);
    expect(await f.stores.nonces.record(randomNonceB64())).toBe(true);
  });

  it('keeps the nonce for nonceCacheSec', async () => {
    const n = randomNonceB64();
    await f.stores.nonces.record(n);
    const ttl = await f.redis.ttl(f.keys.nonce(n));
    expect(ttl).toBeGreaterThan(590);
    expect(ttl).toBeLessThanOrEqual(600);
  });

  it('of 25 concurrent records of one nonce exactly one passes', async () => {
    const n = randomNonceB64();
    const results = await Promise.all(Array.from({ length: 25 }, () => f.stores.nonces.record(n)));
    expect(results.filter(Boolean)).toHaveLength(1);
  });
});
