/**
 * The private API between gatekeeper and core (docs/DESIGN.md "The internal API"): header names and the
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

/**
 * `GET /internal/load` (core → gatekeeper), version 1: the core's load over its last completed
 * period, aggregated over every core replica (docs/DESIGN.md "The internal API"). The gatekeeper's
 * difficulty controller reads it once per difficulty period. Rates are counts over the period
 * [periodStartMs, periodEndMs); the per-replica figures are the worst any live replica reported.
 *
 * ```json
 * {"v":1,"periodStartMs":1700000000000,"periodEndMs":1700000060000,"replicas":2,
 *  "mints":1200,"commands":56000,"eventLoopUtilization":0.41,"latencyP99Ms":38.5,
 *  "redisUsedMemoryBytes":73400320,"redisMaxMemoryBytes":1073741824}
 * ```
 */
export interface LoadReport {
  v: 1;
  /** Start of the period the counts cover, ms since epoch (inclusive). */
  periodStartMs: number;
  /** End of that period, ms since epoch (exclusive); ≥ periodStartMs. */
  periodEndMs: number;
  /** Core replicas whose figures are included (those that reported within their TTL); ≥ 0. */
  replicas: number;
  /** Session key pairs minted (`POST /internal/sessions` answered ok) in the period, summed over replicas. */
  mints: number;
  /** `/prove` and `/command` requests handled in the period, summed over replicas. */
  commands: number;
  /** Highest event-loop utilisation (0..1) any replica measured over the period. */
  eventLoopUtilization: number;
  /** Highest p99 request latency (ms) any replica measured over the period; 0 without requests. */
  latencyP99Ms: number;
  /** Core Redis `used_memory`, bytes. */
  redisUsedMemoryBytes: number;
  /** Core Redis `maxmemory`, bytes; 0 = no limit configured. */
  redisMaxMemoryBytes: number;
}

const isCount = (v: unknown): v is number => isInteger(v) && v >= 0;
const isNonNegative = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** Validates a `GET /internal/load` body; null for anything that is not a version-1 report. */
export function parseLoadReport(v: unknown): LoadReport | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if (o.v !== INTERNAL_API_VERSION) return null;
  const { periodStartMs, periodEndMs, replicas, mints, commands, eventLoopUtilization, latencyP99Ms, redisUsedMemoryBytes, redisMaxMemoryBytes } = o;
  if (!isCount(periodStartMs) || !isCount(periodEndMs) || periodEndMs < periodStartMs) return null;
  if (!isCount(replicas) || !isCount(mints) || !isCount(commands)) return null;
  if (!isNonNegative(eventLoopUtilization) || eventLoopUtilization > 1) return null;
  if (!isNonNegative(latencyP99Ms)) return null;
  if (!isCount(redisUsedMemoryBytes) || !isCount(redisMaxMemoryBytes)) return null;
  return { v: 1, periodStartMs, periodEndMs, replicas, mints, commands, eventLoopUtilization, latencyP99Ms, redisUsedMemoryBytes, redisMaxMemoryBytes };
}
