/**
 * Typed wrappers over the handshake Lua scripts: the edge record of one handshake (client token,
 * relay token, absolute expiry and, after the first verify, the relay session public key).
 * Every expiry is checked inside the script against the clock passed in; the Redis key TTL only
 * cleans up, `KEY_TTL_MARGIN_MS` after the record's expiry. Any Redis failure surfaces as
 * StoreUnavailableError (503 + Retry-After, `storeCall`), never as a misleading 401.
 */
import { sinkObserver, storeCall, type LatencySink } from '@zax/service';
import type { EdgeKeys } from '../keys.js';
import type { RedisOp } from '../metrics.js';
import type { EdgeRedis } from '../redis.js';

/** Redis keeps a record this long past its expiry; it is dead (checked in Lua) meanwhile. */
export const KEY_TTL_MARGIN_MS = 60_000;

export interface HandshakeRecord {
  readonly clientToken: string;
  readonly relayToken: string;
  readonly expiresAtMs: number;
  /** b64 relay session public key, or null before the first successful verify. */
  readonly sessionPk: string | null;
}

export interface HandshakeStore {
  /** Returns the live record's relay token, creating the record with `candidateRelayToken` if none lives. */
  start(handshakeId: string, clientToken: string, candidateRelayToken: string, nowMs: number, ttlSec: number): Promise<string>;
  read(handshakeId: string, nowMs: number): Promise<HandshakeRecord | null>;
  /** Stores the pk only on the live record with this relay token; true when stored. */
  setSessionPk(handshakeId: string, relayToken: string, pk: string, nowMs: number): Promise<boolean>;
  delete(handshakeId: string): Promise<void>;
}

export function handshakeStore(redis: EdgeRedis, keys: EdgeKeys, observe: (op: RedisOp) => LatencySink = () => () => {}): HandshakeStore {
  const t = sinkObserver(observe);
  return {
    start(id, ct, rt, nowMs, ttlSec) {
      const ttlMs = ttlSec * 1000;
      return storeCall(
        'start_session',
        () => redis.zaxGkStartSession(keys.handshake(id), String(nowMs), ct, rt, String(nowMs + ttlMs), String(ttlMs + KEY_TTL_MARGIN_MS)),
        t,
      );
    },
    async read(id, nowMs) {
      const rec = await storeCall('read_handshake', () => redis.zaxGkReadHandshake(keys.handshake(id), String(nowMs)), t);
      if (rec === null) return null;
      const [clientToken, relayToken, exp, pk] = rec;
      return { clientToken, relayToken, expiresAtMs: Number(exp), sessionPk: pk === '' ? null : pk };
    },
    async setSessionPk(id, rt, pk, nowMs) {
      return (await storeCall('set_session_pk', () => redis.zaxGkSetSessionPk(keys.handshake(id), rt, pk, String(nowMs)), t)) === 1;
    },
    async delete(id) {
      await storeCall('delete_handshake', () => redis.del(keys.handshake(id)), t);
    },
  };
}
