/**
 * Timestamped 24-byte nonces (docs/PROTOCOL.md §3.2): bytes 0–7 Unix seconds big-endian, 8–23 random.
 */
import { NONCE_BYTES } from './constants.js';

/** Seconds encoded in a nonce's first 8 bytes (as a JS number; huge values stay huge). */
export function nonceTimestamp(nonce: Uint8Array): number {
  const view = new DataView(nonce.buffer, nonce.byteOffset, 8);
  return view.getUint32(0) * 2 ** 32 + view.getUint32(4);
}

/** |now − ts| ≤ windowSec, inclusive. */
export function isNonceFresh(nonce: Uint8Array, nowSec: number, windowSec: number): boolean {
  return nonce.length === NONCE_BYTES && Math.abs(nowSec - nonceTimestamp(nonce)) <= windowSec;
}

/** A new nonce for `nowSec` with 16 bytes from `random`. */
export function makeNonce(nowSec: number, random: (n: number) => Uint8Array): Uint8Array {
  const n = new Uint8Array(NONCE_BYTES);
  const view = new DataView(n.buffer);
  view.setUint32(0, Math.floor(nowSec / 2 ** 32));
  view.setUint32(4, nowSec % 2 ** 32 >>> 0);
  n.set(random(16), 8);
  return n;
}
