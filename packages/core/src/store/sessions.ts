/**
 * Sessions (docs/PROTOCOL.md §4.0): per hpk, the precomputed box key and `a_sess_pk`, with an absolute
 * expiry `sessionTtlSec` after `/prove`, never extended, replaced by the next `/prove`. Stored
 * beside the mailbox in the `{hpk}` slot. Scripts: session_set.lua, session_get.lua.
 */
import { b64 } from '@zax/protocol';
import type { CoreRedis } from '../redis.js';
import { KEY_TTL_MARGIN_MS, type Keys } from '../keys.js';
import { badReply, storeCall } from './errors.js';
import { NO_OBSERVER, type StoreObserver } from './observer.js';

export interface Session {
  /** crypto_box_beforenm(a_sess_pk, r_sess_sk). */
  readonly sharedKey: Buffer;
  readonly aSessPk: string;
}

export interface SessionStore {
  /** Creates the session, replacing any previous one for the hpk. */
  set(hpk: string, session: { sharedKey: Uint8Array; aSessPk: string; expiresAtMs: number }, nowMs: number): Promise<void>;
  /** The live session, or null. */
  get(hpk: string, nowMs: number): Promise<Session | null>;
}

export function createSessionStore(redis: CoreRedis, keys: Keys, obs: StoreObserver = NO_OBSERVER): SessionStore {
  return {
    async set(hpk, s, nowMs) {
      const reply = await storeCall('session set', () =>
        redis.zaxSessionSet(keys.session(hpk), b64(s.sharedKey), s.aSessPk, s.expiresAtMs, nowMs, KEY_TTL_MARGIN_MS),
        obs,
      );
      if (reply !== 1) throw badReply('session set', reply);
    },

    async get(hpk, nowMs) {
      const reply = await storeCall('session get', () => redis.zaxSessionGet(keys.session(hpk), nowMs), obs);
      if (reply === null) return null;
      if (Array.isArray(reply) && typeof reply[0] === 'string' && typeof reply[1] === 'string') {
        return { sharedKey: Buffer.from(reply[0], 'base64'), aSessPk: reply[1] };
      }
      throw badReply('session get', reply);
    },
  };
}
