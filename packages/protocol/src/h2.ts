/**
 * h2(m) = SHA-256(SHA-256(0x00 × 64 ‖ m)) (docs/PROTOCOL.md §3.1). The 64 zero bytes are one full block.
 * SHA-256 is @noble/hashes' (pure JavaScript), so this runs wherever the protocol does.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { utf8Encode } from './utf8.js';

const ZERO_BLOCK = new Uint8Array(64);

/** h2 of the concatenation of the parts. Strings are taken as their UTF-8 bytes. */
export function h2(...parts: (Uint8Array | string)[]): Uint8Array {
  const inner = sha256.create().update(ZERO_BLOCK);
  for (const p of parts) inner.update(typeof p === 'string' ? utf8Encode(p) : p);
  return sha256(inner.digest());
}
