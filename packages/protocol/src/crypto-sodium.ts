/**
 * The fast Crypto backend on sodium-native (libsodium, prebuilt binaries inside the npm package),
 * behind the same interface as the tweetnacl reference. sodium-native 5 no longer exports
 * `crypto_box_beforenm` or HSalsa20, so the precomputed key is built from `crypto_scalarmult`
 * (libsodium refuses an all-zero result: a low-order public key) and tweetnacl's HSalsa20 core.
 * `bestCrypto()` picks this backend when the binding loads and falls back to tweetnacl otherwise.
 */
import { createRequire } from 'node:module';
import { hsalsa20, tweetnaclCrypto, type Crypto } from './crypto.js';

type Sodium = typeof import('sodium-native');

function loadSodium(): Sodium | null {
  try {
    return createRequire(import.meta.url)('sodium-native') as Sodium;
  } catch {
    return null;
  }
}

const NONCE = 24;
const MAC = 16;
const KEY = 32;

export function createSodiumCrypto(sodium: Sodium): Crypto {
  const before = (publicKey: Uint8Array, secretKey: Uint8Array): Uint8Array | null => {
    if (publicKey.length !== KEY || secretKey.length !== KEY) return null;
    const shared = Buffer.allocUnsafe(KEY);
    try {
      sodium.crypto_scalarmult(shared, secretKey, publicKey);
    } catch {
      return null; // all-zero shared secret
    }
    const k = hsalsa20(shared);
    shared.fill(0);
    return k;
  };
  return {
    name: 'sodium-native',
    randomBytes(n) {
      const b = Buffer.allocUnsafe(n);
      sodium.randombytes_buf(b);
      return b;
    },
    // Keys are plain Uint8Arrays, as tweetnacl gives them, so callers see one type from both backends.
    keyPair() {
      const publicKey = new Uint8Array(KEY);
      const secretKey = new Uint8Array(KEY);
      sodium.crypto_box_keypair(publicKey, secretKey);
      return { publicKey, secretKey };
    },
    keyPairFromSecretKey(secretKey) {
      const publicKey = new Uint8Array(KEY);
      sodium.crypto_scalarmult_base(publicKey, secretKey);
      return { publicKey, secretKey: Uint8Array.from(secretKey) };
    },
    before,
    box(message, nonce, publicKey, secretKey) {
      const k = before(publicKey, secretKey);
      if (k === null) throw new Error('low-order public key');
      return this.boxAfter(message, nonce, k);
    },
    boxOpen(box, nonce, publicKey, secretKey) {
      const k = before(publicKey, secretKey);
      return k === null ? null : this.boxOpenAfter(box, nonce, k);
    },
    boxAfter(message, nonce, sharedKey) {
      if (nonce.length !== NONCE || sharedKey.length !== KEY) throw new Error('bad nonce or key size');
      const out = Buffer.allocUnsafe(message.length + MAC);
      sodium.crypto_secretbox_easy(out, message, nonce, sharedKey);
      return out;
    },
    boxOpenAfter(box, nonce, sharedKey) {
      if (box.length < MAC || nonce.length !== NONCE || sharedKey.length !== KEY) return null;
      const out = Buffer.allocUnsafe(box.length - MAC);
      return sodium.crypto_secretbox_open_easy(out, box, nonce, sharedKey) ? out : null;
    },
  };
}

let cached: Crypto | null = null;

/** sodium-native when its binding loads, else the tweetnacl reference. */
export function bestCrypto(): Crypto {
  if (cached === null) {
    const sodium = loadSodium();
    cached = sodium === null ? tweetnaclCrypto : createSodiumCrypto(sodium);
  }
  return cached;
}

/** The sodium-native backend, or null where the binding does not load. */
export function sodiumCrypto(): Crypto | null {
  const sodium = loadSodium();
  return sodium === null ? null : createSodiumCrypto(sodium);
}
