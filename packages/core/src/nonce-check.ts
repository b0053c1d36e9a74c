/**
 * The checked-nonce rule (docs/PROTOCOL.md §3.2), shared by `/prove` (outer and inner) and `/command`:
 * exactly 24 bytes, timestamp within ±nonceWindowSec of the relay clock (inclusive), and not seen
 * in the relay-wide replay cache — checked and recorded in one atomic step. Any failure is 400 G.
 */
import { B64_NONCE_CHARS, NONCE_BYTES, RelayError, decodeFixed, isNonceFresh } from '@zax/protocol';
import type { NonceStore } from './store/nonces.js';

export async function checkNonce(nonces: NonceStore, nonceB64: unknown, nowSec: number, windowSec: number, what: string): Promise<Buffer> {
  const nonce = typeof nonceB64 === 'string' && nonceB64.length === B64_NONCE_CHARS ? decodeFixed(nonceB64, NONCE_BYTES) : null;
  if (nonce === null) throw new RelayError('invalid', `${what}: not a 24-byte nonce`);
  if (!isNonceFresh(nonce, nowSec, windowSec)) throw new RelayError('invalid', `${what}: outside the time window`);
  if (!(await nonces.record(nonceB64 as string))) throw new RelayError('invalid', `${what}: replayed`);
  return nonce;
}
