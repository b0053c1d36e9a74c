/**
 * Sessions (docs/PROTOCOL.md §4.0): per hpk, the precomputed box key and `a_sess_pk`, with an absolute
 * expiry `sessionTtlSec` after `/prove`, never extended, replaced by the next `/prove`. Stored
 * beside the mailbox in the `{hpk}` slot, with the hpk's command-nonce replay cache. Scripts:
 * session-set.lua, session-open.lua.
 */
import { b64 } from '@zax/protocol';
import type { CoreRedis } from '../redis.js';
import { KEY_TTL_MARGIN_MS, type Keys } from '../keys.js';
import { badReply, storeCall } from '@zax/service';
import { NO_OBSERVER, type StoreObserver } from './observer.js';

export interface Session {
  /** crypto_box_beforenm(a_sess_pk, r_sess_sk). */
  readonly sharedKey: Buffer;
  readonly aSessPk: string;
}

export interface SessionStore {
  /**
   * Creates the session, replacing any previous one for the hpk, and records the `/prove` nonces
   * that created it (outer, inner) in the hpk's command-nonce replay cache.
   */
  set(hpk: string, session: { sharedKey: Uint8Array; aSessPk: string; expiresAtMs: number }, nowMs: number, proveNonces: readonly [string, string]): Promise<void>;
  /**
   * A command's authentication lookup (docs/PROTOCOL.md §4.4 steps 3 and 5), one atomic step: the
   * live session and whether the command nonce was new, recorded in the hpk's replay cache only
   * when there is a live session. Without one, `replayed` tells whether the nonce was seen, and
   * nothing is written.
   */
  open(hpk: string, nonceB64: string, nowMs: number): Promise<{ session: Session | null; replayed: boolean }>;
  /** Removes a command nonce that `open` recorded, for a request that then failed authentication. */
  forgetNonce(hpk: string, nonceB64: string): Promise<void>;
}

export function createSessionStore(redis: CoreRedis, keys: Keys, nonceCacheSec: number, obs: StoreObserver = NO_OBSERVER): SessionStore {
  return {
    async set(hpk, s, nowMs, [outer, inner]) {
      const reply = await storeCall('session set', () =>
        redis.zaxSessionSet(
          keys.session(hpk),
          keys.commandNonce(hpk, outer),
          keys.commandNonce(hpk, inner),
          b64(s.sharedKey),
          s.aSessPk,
          s.expiresAtMs,
          nowMs,
          KEY_TTL_MARGIN_MS,
          nonceCacheSec,
        ),
        obs,
      );
      if (reply !== 1) throw badReply('session set', reply);
    },

    async open(hpk, nonceB64, nowMs) {
      const reply = await storeCall('session open', () => redis.zaxSessionOpen(keys.session(hpk), keys.commandNonce(hpk, nonceB64), nowMs, nonceCacheSec), obs);
      if (reply === 0 || reply === 1) return { session: null, replayed: reply === 1 };
      if (Array.isArray(reply) && typeof reply[0] === 'string' && typeof reply[1] === 'string' && (reply[2] === 0 || reply[2] === 1)) {
        return { session: { sharedKey: Buffer.from(reply[0], 'base64'), aSessPk: reply[1] }, replayed: reply[2] === 0 };
      }
      throw badReply('session open', reply);
    },

    async forgetNonce(hpk, nonceB64) {
      await storeCall('nonce forget', () => redis.del(keys.commandNonce(hpk, nonceB64)), obs);
    },
  };
}
