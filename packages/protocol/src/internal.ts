/**
 * The private API between gatekeeper and core (DESIGN.md "The internal API"): header names and the
 * versioned request/response bodies of `POST /internal/sessions`, validated on both sides.
 */
import { decodeFixed } from './base64.js';
import { isInteger } from './json.js';

/** Shared secret on every core route except health and metrics. */
export const INTERNAL_SECRET_HEADER = 'x-zax-internal-secret';
/** Core → gatekeeper, on a successful `/prove`: the handshake id it consumed. Never reaches a client. */
export const CONSUMED_HANDSHAKE_HEADER = 'x-zax-consumed-handshake';

export const INTERNAL_SESSIONS_PATH = '/internal/sessions';
export const INTERNAL_LOAD_PATH = '/internal/load';
export const INTERNAL_API_VERSION = 1;

export interface MintRequest {
  v: 1;
  /** b64(h2(client_token)) */
  handshakeId: string;
  clientToken: string;
  relayToken: string;
  /** The handshake's absolute expiry (ms since epoch), so both stores agree. */
  expiresAtMs: number;
}

export type MintResponse = { v: 1; status: 'ok'; relaySessionPk: string } | { v: 1; status: 'proven' };

const is32 = (v: unknown): v is string => typeof v === 'string' && decodeFixed(v, 32) !== null;

export function parseMintRequest(v: unknown): MintRequest | null {
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (o.v !== INTERNAL_API_VERSION) return null;
  if (!is32(o.handshakeId) || !is32(o.clientToken) || !is32(o.relayToken)) return null;
  if (!isInteger(o.expiresAtMs) || o.expiresAtMs <= 0) return null;
  return { v: 1, handshakeId: o.handshakeId, clientToken: o.clientToken, relayToken: o.relayToken, expiresAtMs: o.expiresAtMs };
}

export function parseMintResponse(v: unknown): MintResponse | null {
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (o.v !== INTERNAL_API_VERSION) return null;
  if (o.status === 'proven') return { v: 1, status: 'proven' };
  if (o.status === 'ok' && is32(o.relaySessionPk)) return { v: 1, status: 'ok', relaySessionPk: o.relaySessionPk };
  return null;
}
