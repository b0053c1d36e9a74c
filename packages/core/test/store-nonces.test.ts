/** The nonce replay cache (SET NX EX) on real Redis. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStores, randomNonceB64, type StoreFixture } from './helpers.js';
import { expectTtlGiven, timedWrite } from '../../../test/support/ttl.js';

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
    const w = await timedWrite(f.redis, () => f.stores.nonces.record(n));
    await expectTtlGiven(f.redis, f.keys.nonce(n), w, 600_000);
  });

  it('forget removes what a failed /prove recorded', async () => {
    const [a, b] = [randomNonceB64(), randomNonceB64()];
    await f.stores.nonces.record(a);
    await f.stores.nonces.record(b);
    await f.stores.nonces.forget([a, b]);
    expect(await f.redis.exists(f.keys.nonce(a), f.keys.nonce(b))).toBe(0);
    await f.stores.nonces.forget([]);
  });

  it('of 25 concurrent records of one nonce exactly one passes', async () => {
    const n = randomNonceB64();
    const results = await Promise.all(Array.from({ length: 25 }, () => f.stores.nonces.record(n)));
    expect(results.filter(Boolean)).toHaveLength(1);
  });
});
