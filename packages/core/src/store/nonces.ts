/**
 * The relay-wide replay cache of `/prove` nonces (docs/PROTOCOL.md §3.2 step 3): one key per
 * accepted nonce, written with `SET NX` and the `nonceCacheSec` TTL, so check and record are one
 * atomic step and of two concurrent requests with the same nonce exactly one passes. (`/command`
 * nonces are recorded per hpk, with the session lookup: sessions.ts.)
 */
import type { CoreRedis } from '../redis.js';
import type { Keys } from '../keys.js';
import { storeCall } from '@zax/service';
import { NO_OBSERVER, type StoreObserver } from './observer.js';

export interface NonceStore {
  /** Records the nonce; true if it was not in the cache (first use), false for a replay. */
  record(nonceB64: string): Promise<boolean>;
  /** Removes nonces this request recorded, when it then failed authentication. */
  forget(nonces: readonly string[]): Promise<void>;
}

export function createNonceStore(redis: CoreRedis, keys: Keys, cacheSec: number, obs: StoreObserver = NO_OBSERVER): NonceStore {
  return {
    async record(nonceB64) {
      const reply = await storeCall('nonce record', () => redis.set(keys.nonce(nonceB64), '1', 'EX', cacheSec, 'NX'), obs);
      return reply === 'OK';
    },
    async forget(nonces) {
      // One DEL per key: relay-wide nonce keys sit in different Redis Cluster slots.
      await Promise.all(nonces.map((n) => storeCall('nonce forget', () => redis.del(keys.nonce(n)), obs)));
    },
  };
}
