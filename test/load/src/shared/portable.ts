/**
 * The portable Platform: tweetnacl + a pure SHA-256 + pure base64/UTF-8. It needs nothing from Node,
 * so the k6 bundles use it as is; the node generator uses it with `--crypto portable`.
 */
import nacl from 'tweetnacl';
import { fromBase64Strict, toBase64, utf8Decode, utf8Encode } from './encoding.js';
import { sha256 } from './sha256.js';
import type { Platform } from './wire.js';

const lowlevel = (nacl as unknown as { lowlevel: unknown }).lowlevel as {
  crypto_scalarmult(q: Uint8Array, n: Uint8Array, p: Uint8Array): number;
  crypto_core_hsalsa20(out: Uint8Array, inp: Uint8Array, k: Uint8Array, c: Uint8Array): number;
};
const SIGMA = new Uint8Array([101, 120, 112, 97, 110, 100, 32, 51, 50, 45, 98, 121, 116, 101, 32, 107]);
const ZERO16 = new Uint8Array(16);
const ZERO_BLOCK = new Uint8Array(64);

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** h2(m) = SHA-256(SHA-256(0x00 × 64 ‖ m)) (docs/PROTOCOL.md §3.1), on the pure SHA-256. */
export function pureH2(...parts: Uint8Array[]): Uint8Array {
  return sha256(sha256(concat([ZERO_BLOCK, ...parts])));
}

/** A Platform on tweetnacl; `random(n)` must be a CSPRNG (k6/crypto `randomBytes`, node:crypto). */
export function portablePlatform(random: (n: number) => Uint8Array, name = 'tweetnacl'): Platform {
  return {
    name,
    random,
    keyPair() {
      return nacl.box.keyPair.fromSecretKey(random(32));
    },
    before(publicKey, secretKey) {
      const shared = new Uint8Array(32);
      lowlevel.crypto_scalarmult(shared, secretKey, publicKey);
      let acc = 0;
      for (const x of shared) acc |= x;
      if (acc === 0) return null;
      const k = new Uint8Array(32);
      lowlevel.crypto_core_hsalsa20(k, ZERO16, shared, SIGMA);
      return k;
    },
    boxAfter(message, nonce, key) {
      return nacl.secretbox(message, nonce, key);
    },
    boxOpenAfter(box, nonce, key) {
      return box.length < 16 ? null : nacl.secretbox.open(box, nonce, key);
    },
    h2: pureH2,
    b64: toBase64,
    unb64: fromBase64Strict,
    utf8: utf8Encode,
    fromUtf8: utf8Decode,
    nowSec: () => Math.floor(Date.now() / 1000),
  };
}
