/**
 * h2(m) = SHA-256(SHA-256(0x00 × 64 ‖ m)) (docs/PROTOCOL.md §3.1). The 64 zero bytes are one full block.
 */
import { createHash } from 'node:crypto';

const ZERO_BLOCK = Buffer.alloc(64);

/** h2 of the concatenation of the parts. Strings are taken as their ASCII/UTF-8 bytes. */
export function h2(...parts: (Uint8Array | string)[]): Buffer {
  const inner = createHash('sha256').update(ZERO_BLOCK);
  for (const p of parts) inner.update(p);
  return createHash('sha256').update(inner.digest()).digest();
}
