/**
 * The checked-nonce rule (docs/PROTOCOL.md §3.2), shared by `/prove` (outer and inner) and `/command`:
 * exactly 24 bytes, timestamp within ±nonceWindowSec of the relay clock (inclusive), and not seen
 * in the replay cache — checked and recorded in one atomic step. Any failure is 400 G. `/prove`
 * records in the relay-wide cache (checkNonce); `/command` checks the form here (nonceOf) and
 * records per hpk together with its session lookup (store/sessions.ts).
 */
import { B64_NONCE_CHARS, NONCE_BYTES, RelayError, decodeFixed, isNonceFresh } from '@zax/protocol';
import type { NonceStore } from './store/nonces.js';

/** The nonce's bytes when it is 24 bytes within the time window; else 400 G. Touches no store. */
export function nonceOf(nonceB64: unknown, nowSec: number, windowSec: number, what: string): Uint8Array {
  const nonce = typeof nonceB64 === 'string' && nonceB64.length === B64_NONCE_CHARS ? decodeFixed(nonceB64, NONCE_BYTES) : null;
  if (nonce === null) throw new RelayError('invalid', `${what}: not a 24-byte nonce`);
  if (!isNonceFresh(nonce, nowSec, windowSec)) throw new RelayError('invalid', `${what}: outside the time window`);
  return nonce;
}

/** nonceOf, then the nonce recorded in the relay-wide cache (a replay: 400 G). */
export async function checkNonce(nonces: NonceStore, nonceB64: unknown, nowSec: number, windowSec: number, what: string): Promise<Uint8Array> {
  const nonce = nonceOf(nonceB64, nowSec, windowSec, what);
  if (!(await nonces.record(nonceB64 as string))) throw new RelayError('invalid', `${what}: replayed`);
  return nonce;
}
