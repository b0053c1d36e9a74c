/**
 * Handshake proof of work (docs/PROTOCOL.md §3.4). At d = 0 the answer is h2(ct ‖ rt) exactly; at d ≥ 1
 * H = h2(ct ‖ rt ‖ answer) must have its d LOW-ORDER bits zero (little-endian reading of H).
 */
import { h2 } from './h2.js';

/** True when the d low-order bits of `hash` (from byte 0, least-significant bit first) are zero. */
export function hasLowZeroBits(hash: Uint8Array, d: number): boolean {
  const q = Math.floor(d / 8);
  const r = d % 8;
  if (q > hash.length || (q === hash.length && r > 0)) return false;
  for (let i = 0; i < q; i++) if (hash[i] !== 0) return false;
  return r === 0 || (hash[q]! & ((1 << r) - 1)) === 0;
}

/** Equal lengths and bytes, in a time that depends on the length only. */
function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Whether `answer` (32 bytes) satisfies difficulty d for these tokens. */
export function checkAnswer(clientToken: Uint8Array, relayToken: Uint8Array, answer: Uint8Array, d: number): boolean {
  if (answer.length !== 32) return false;
  if (d === 0) return constantTimeEqual(h2(clientToken, relayToken), answer);
  return hasLowZeroBits(h2(clientToken, relayToken, answer), d);
}

/** Finds an answer for difficulty d (client side). `random` seeds the search start. */
export function solvePow(clientToken: Uint8Array, relayToken: Uint8Array, d: number, random: (n: number) => Uint8Array): Uint8Array {
  if (d === 0) return h2(clientToken, relayToken);
  const nonce = Uint8Array.from(random(32));
  for (;;) {
    if (hasLowZeroBits(h2(clientToken, relayToken, nonce), d)) return nonce;
    // increment as a little-endian counter
    for (let i = 0; i < 32; i++) {
      nonce[i] = (nonce[i]! + 1) & 0xff;
      if (nonce[i] !== 0) break;
    }
  }
}
