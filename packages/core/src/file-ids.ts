/**
 * File identifiers (docs/PROTOCOL.md §3.1, §7.1): uploadID = h2(hpk_from ‖ hpk_to ‖ metadata_nonce ‖
 * ASCII(fileSeed)) over the raw 32-byte hpks and raw 24-byte nonce; storage_id = h2(uploadID ‖
 * ASCII(fileSeed)); and the reference relay's on-disk name for it. This relay keeps chunks in Redis
 * under the uploadID, so storage_id and storage_name are only here for reference and vectors.
 */
import { h2 } from '@zax/protocol';

/** h2(hpk_from ‖ hpk_to ‖ metadata_nonce ‖ ASCII(seed)), raw inputs. */
export function uploadId(hpkFrom: Uint8Array, hpkTo: Uint8Array, metadataNonce: Uint8Array, seed: string): Uint8Array {
  return h2(hpkFrom, hpkTo, metadataNonce, Buffer.from(seed, 'ascii'));
}

/** h2(uploadID ‖ ASCII(seed)). */
export function storageId(uploadID: Uint8Array, seed: string): Uint8Array {
  return h2(uploadID, Buffer.from(seed, 'ascii'));
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** Lowercase RFC 4648 base32 without padding (52 chars for 32 bytes): the reference chunk name stem. */
export function storageName(id: Uint8Array): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const byte of id) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(acc << (5 - bits)) & 31];
  return out;
}
