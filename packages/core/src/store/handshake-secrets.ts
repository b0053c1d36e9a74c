/**
 * Handshake secrets in the core store (docs/DESIGN.md "Who owns which state"): minted for the gatekeeper
 * on `/verify_session`, read by `/prove`, and consumed by a successful `/prove`, which leaves a
 * "proven" marker until the handshake's expiry. Scripts: mint.lua, consume.lua.
 */
import type { CoreRedis } from '../redis.js';
import { KEY_TTL_MARGIN_MS, type Keys } from '../keys.js';
import { badReply, storeCall } from '@zax/service';
import { NO_OBSERVER, type StoreObserver } from './observer.js';

export interface HandshakeSecrets {
  readonly clientToken: string;
  readonly relayToken: string;
  readonly relaySessionPk: string;
  readonly relaySessionSk: string;
  readonly expiresAtMs: number;
}

export interface MintInput extends HandshakeSecrets {
  readonly handshakeId: string;
}

export type MintResult = { readonly status: 'ok'; readonly relaySessionPk: string } | { readonly status: 'proven' };

export interface HandshakeStore {
  /** Create-if-absent (same relay token → the stored key, DEVIATION D9); refused once proven. */
  mint(input: MintInput, nowMs: number): Promise<MintResult>;
  /** The live handshake secrets, or null (unknown or expired). */
  read(handshakeId: string, nowMs: number): Promise<HandshakeSecrets | null>;
  /** Deletes the live handshake with this relay token and marks it proven; false if it is gone. */
  consume(handshakeId: string, relayToken: string, nowMs: number): Promise<boolean>;
}

export function createHandshakeStore(redis: CoreRedis, keys: Keys, obs: StoreObserver = NO_OBSERVER): HandshakeStore {
  return {
    async mint(input, nowMs) {
      const k = keys.handshake(input.handshakeId);
      const reply = await storeCall('mint', () =>
        redis.zaxMint(
          k.secrets,
          k.proven,
          input.clientToken,
          input.relayToken,
          input.relaySessionPk,
          input.relaySessionSk,
          input.expiresAtMs,
          nowMs,
          KEY_TTL_MARGIN_MS,
        ),
        obs,
      );
      if (Array.isArray(reply) && reply[0] === 'proven') return { status: 'proven' };
      if (Array.isArray(reply) && reply[0] === 'ok' && typeof reply[1] === 'string') return { status: 'ok', relaySessionPk: reply[1] };
      throw badReply('mint', reply);
    },

    async read(handshakeId, nowMs) {
      const k = keys.handshake(handshakeId);
      const [ct, rt, pk, sk, exp] = await storeCall(
        'handshake read',
        () => redis.hmget(k.secrets, 'ct', 'rt', 'pk', 'sk', 'exp'),
        obs,
      );
      if (ct == null || rt == null || pk == null || sk == null || exp == null) return null;
      const expiresAtMs = Number(exp);
      if (!(expiresAtMs > nowMs)) return null;
      return { clientToken: ct, relayToken: rt, relaySessionPk: pk, relaySessionSk: sk, expiresAtMs };
    },

    async consume(handshakeId, relayToken, nowMs) {
      const k = keys.handshake(handshakeId);
      const reply = await storeCall('consume', () => redis.zaxConsume(k.secrets, k.proven, relayToken, nowMs, KEY_TTL_MARGIN_MS), obs);
      if (reply === 1 || reply === 0) return reply === 1;
      throw badReply('consume', reply);
    },
  };
}
