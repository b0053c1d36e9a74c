/**
 * Typed wrappers over the handshake Lua scripts: the edge record of one handshake (client token,
 * relay token, absolute expiry and, after the first verify, the relay session public key).
 * Every expiry is checked inside the script against the clock passed in; the Redis key TTL only
 * cleans up, `KEY_TTL_MARGIN_MS` after the record's expiry. Any Redis failure surfaces as
 * RelayError('busy') (503 + Retry-After), never as a misleading 401.
 */
import { RelayError } from '@zax/protocol';
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
  load(handshakeId: string, nowMs: number): Promise<HandshakeRecord | null>;
  /** Stores the pk only on the live record with this relay token; true when stored. */
  setSessionPk(handshakeId: string, relayToken: string, pk: string, nowMs: number): Promise<boolean>;
  delete(handshakeId: string): Promise<void>;
}

/**
 * Times one operation, and turns a failure into RelayError('busy'). ioredis errors may carry the
 * command and its arguments (tokens): only the message is kept.
 */
async function storeOp<T>(observe: (seconds: number) => void, op: Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await op;
  } catch (err) {
    throw new RelayError('busy', `edge redis: ${err instanceof Error ? err.message.slice(0, 120) : 'error'}`);
  } finally {
    observe((performance.now() - t0) / 1000);
  }
}

export function handshakeStore(redis: EdgeRedis, keys: EdgeKeys, observe: (op: RedisOp) => (seconds: number) => void = () => () => {}): HandshakeStore {
  const t = {
    start: observe('start_session'),
    load: observe('load_handshake'),
    setPk: observe('set_session_pk'),
    del: observe('delete_handshake'),
  };
  return {
    start(id, ct, rt, nowMs, ttlSec) {
      const ttlMs = ttlSec * 1000;
      return storeOp(
        t.start,
        redis.zaxGkStartSession(keys.handshake(id), String(nowMs), ct, rt, String(nowMs + ttlMs), String(ttlMs + KEY_TTL_MARGIN_MS)),
      );
    },
    async load(id, nowMs) {
      const rec = await storeOp(t.load, redis.zaxGkLoadHandshake(keys.handshake(id), String(nowMs)));
      if (rec === null) return null;
      const [clientToken, relayToken, exp, pk] = rec;
      return { clientToken, relayToken, expiresAtMs: Number(exp), sessionPk: pk === '' ? null : pk };
    },
    async setSessionPk(id, rt, pk, nowMs) {
      return (await storeOp(t.setPk, redis.zaxGkSetSessionPk(keys.handshake(id), rt, pk, String(nowMs)))) === 1;
    },
    async delete(id) {
      await storeOp(t.del, redis.del(keys.handshake(id)));
    },
  };
}
