/**
 * The one small crypto interface every service and client uses (NaCl box, precomputed keys, key
 * pairs, randomness), and its portable implementation on tweetnacl. An all-zero X25519 shared
 * secret (a low-order public key) is treated as undecryptable, as libsodium does (docs/PROTOCOL.md §3.3).
 */
import nacl from 'tweetnacl';

export interface KeyPair {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

export interface Crypto {
  readonly name: string;
  randomBytes(n: number): Uint8Array;
  keyPair(): KeyPair;
  keyPairFromSecretKey(secretKey: Uint8Array): KeyPair;
  /** crypto_box (tag ‖ ciphertext). Throws on a low-order public key. */
  box(message: Uint8Array, nonce: Uint8Array, publicKey: Uint8Array, secretKey: Uint8Array): Uint8Array;
  /** Opens a box, or returns null (bad tag, wrong sizes, low-order public key). */
  boxOpen(box: Uint8Array, nonce: Uint8Array, publicKey: Uint8Array, secretKey: Uint8Array): Uint8Array | null;
  /** The precomputed shared key, or null for a low-order public key (all-zero shared secret). */
  before(publicKey: Uint8Array, secretKey: Uint8Array): Uint8Array | null;
  /** crypto_box with a precomputed key (= crypto_secretbox under that key). */
  boxAfter(message: Uint8Array, nonce: Uint8Array, sharedKey: Uint8Array): Uint8Array;
  boxOpenAfter(box: Uint8Array, nonce: Uint8Array, sharedKey: Uint8Array): Uint8Array | null;
  /**
   * `boxAfter` into a caller's buffer (file chunks, sealed chunk after chunk into reused buffers):
   * writes the same `message.length + 16` bytes to the start of `out` and returns them as a view
   * on it. With `out.length ≥ message.length + 32` (NaCl's 32-byte zero padding) no backend
   * allocates; with less, one may seal into a new array and copy. Throws on a short `out` or bad
   * nonce/key sizes. Optional: callers fall back to `boxAfter`.
   */
  secretboxInto?(out: Uint8Array, message: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array;
}

/** "expand 32-byte k", the Salsa20 constant HSalsa20 needs. */
const SIGMA = new Uint8Array([101, 120, 112, 97, 110, 100, 32, 51, 50, 45, 98, 121, 116, 101, 32, 107]);
const ZERO16 = new Uint8Array(16);

function isAllZero(b: Uint8Array): boolean {
  let acc = 0;
  for (const x of b) acc |= x;
  return acc === 0;
}

/** The most `crypto.getRandomValues` fills in one call (Web Crypto's limit). */
const MAX_RANDOM_FILL = 65536;

/** The runtime's CSPRNG (Web Crypto: Node ≥ 19 and browsers have it as `globalThis.crypto`). */
const webCrypto = (globalThis as { crypto?: { getRandomValues(b: Uint8Array): Uint8Array } }).crypto;

/** `n` bytes from the runtime's CSPRNG, filled in chunks of at most 65536 bytes. */
export function randomBytes(n: number): Uint8Array {
  if (webCrypto === undefined) throw new Error('no CSPRNG: this runtime has no globalThis.crypto.getRandomValues');
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += MAX_RANDOM_FILL) webCrypto.getRandomValues(out.subarray(off, Math.min(n, off + MAX_RANDOM_FILL)));
  return out;
}

const lowlevel = (nacl as unknown as { lowlevel: unknown }).lowlevel as {
  crypto_scalarmult(q: Uint8Array, n: Uint8Array, p: Uint8Array): number;
  crypto_core_hsalsa20(out: Uint8Array, inp: Uint8Array, k: Uint8Array, c: Uint8Array): number;
  crypto_secretbox(c: Uint8Array, m: Uint8Array, d: number, n: Uint8Array, k: Uint8Array): number;
};

/** The checks both backends make before sealing into `out`. */
export function checkSecretboxInto(out: Uint8Array, message: Uint8Array, nonce: Uint8Array, key: Uint8Array): void {
  if (nonce.length !== 24 || key.length !== 32) throw new Error('bad nonce or key size');
  if (out.length < message.length + 16) throw new Error(`secretboxInto: out holds ${out.length} bytes, ${message.length + 16} needed`);
}

/**
 * tweetnacl's `secretboxInto`. Its low-level crypto_secretbox works on buffers with 32 leading
 * zero bytes (message) and gives the box after 16 leading zero bytes; it can work in place. So the
 * padded message is laid out in `out` itself, sealed there, and the box moved to the start.
 */
function tweetnaclSecretboxInto(out: Uint8Array, message: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array {
  checkSecretboxInto(out, message, nonce, key);
  const n = message.length + 16;
  if (out.length < message.length + 32) {
    out.set(nacl.secretbox(message, nonce, key));
    return out.subarray(0, n);
  }
  const padded = out.subarray(0, message.length + 32);
  padded.set(message, 32);
  padded.fill(0, 0, 32);
  lowlevel.crypto_secretbox(padded, padded, padded.length, nonce, key);
  out.copyWithin(0, 16, padded.length);
  return out.subarray(0, n);
}

/** HSalsa20 of a raw X25519 shared secret with a zero input block: the NaCl box key. */
export function hsalsa20(shared: Uint8Array): Uint8Array {
  const k = new Uint8Array(32);
  lowlevel.crypto_core_hsalsa20(k, ZERO16, shared, SIGMA);
  return k;
}

function sizesOk(nonce: Uint8Array, ...keys: Uint8Array[]): boolean {
  return nonce.length === nacl.box.nonceLength && keys.every((k) => k.length === 32);
}

/**
 * The tweetnacl backend over the CSPRNG `random` (where the runtime's is not `globalThis.crypto`:
 * k6 hands its own).
 */
export const tweetnaclCryptoWith = (random: (n: number) => Uint8Array): Crypto => ({
  name: 'tweetnacl',
  randomBytes: random,
  keyPair() {
    return nacl.box.keyPair.fromSecretKey(random(32));
  },
  keyPairFromSecretKey(secretKey) {
    return nacl.box.keyPair.fromSecretKey(secretKey);
  },
  before(publicKey, secretKey) {
    if (publicKey.length !== 32 || secretKey.length !== 32) return null;
    const shared = new Uint8Array(32);
    lowlevel.crypto_scalarmult(shared, secretKey, publicKey);
    if (isAllZero(shared)) return null;
    const k = hsalsa20(shared);
    shared.fill(0);
    return k;
  },
  box(message, nonce, publicKey, secretKey) {
    const k = this.before(publicKey, secretKey);
    if (k === null) throw new Error('low-order public key');
    return this.boxAfter(message, nonce, k);
  },
  boxOpen(box, nonce, publicKey, secretKey) {
    if (!sizesOk(nonce)) return null;
    const k = this.before(publicKey, secretKey);
    return k === null ? null : this.boxOpenAfter(box, nonce, k);
  },
  boxAfter(message, nonce, sharedKey) {
    return nacl.secretbox(message, nonce, sharedKey);
  },
  boxOpenAfter(box, nonce, sharedKey) {
    if (!sizesOk(nonce, sharedKey) || box.length < 16) return null;
    return nacl.secretbox.open(box, nonce, sharedKey);
  },
  secretboxInto: tweetnaclSecretboxInto,
});

/** The tweetnacl backend over the runtime's CSPRNG: the portable reference. */
export const tweetnaclCrypto: Crypto = tweetnaclCryptoWith(randomBytes);
