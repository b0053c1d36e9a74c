/**
 * The fast Crypto backend on sodium-native (libsodium, prebuilt binaries inside the npm package),
 * behind the same interface as the tweetnacl reference. sodium-native 5 no longer exports
 * `crypto_box_beforenm` or HSalsa20, so the precomputed key is built from `crypto_scalarmult`
 * (libsodium refuses an all-zero result: a low-order public key) and tweetnacl's HSalsa20 core.
 * `bestCrypto()` picks this backend when the binding loads and falls back to tweetnacl otherwise.
 *
 * sodium-native is an optional dependency of @zax/protocol (the services depend on it themselves),
 * so nothing here, and nothing in the emitted declarations, names its module: it is loaded at run
 * time and used through `SodiumApi`, the few functions this file calls. Which backend was picked,
 * and why sodium-native did not load, is reported with `NODE_DEBUG=zax` (node:util debuglog).
 */
import { createRequire } from 'node:module';
import { debuglog } from 'node:util';
import { hsalsa20, tweetnaclCrypto, type Crypto } from './crypto.js';

type Bytes = Uint8Array;

/** The sodium-native 5 functions this backend calls (that package ships no types of its own). */
export interface SodiumApi {
  randombytes_buf(out: Bytes): void;
  crypto_box_keypair(pk: Bytes, sk: Bytes): void;
  crypto_scalarmult_base(q: Bytes, n: Bytes): void;
  crypto_scalarmult(q: Bytes, n: Bytes, p: Bytes): void;
  crypto_secretbox_easy(c: Bytes, m: Bytes, n: Bytes, k: Bytes): void;
  crypto_secretbox_open_easy(m: Bytes, c: Bytes, n: Bytes, k: Bytes): boolean;
}

const debug = debuglog('zax');

/** The binding, or the reason it did not load; tried once per process. */
let loaded: { sodium: SodiumApi } | { error: string } | null = null;

function loadSodium(): SodiumApi | null {
  if (loaded === null) {
    try {
      loaded = { sodium: createRequire(import.meta.url)('sodium-native') as SodiumApi };
    } catch (e) {
      const code = (e as { code?: unknown } | null)?.code;
      const first = (e instanceof Error ? e.message : String(e)).split('\n', 1)[0]!;
      const absent = code === 'MODULE_NOT_FOUND' && first.includes("'sodium-native'");
      loaded = { error: absent ? 'sodium-native is not installed' : `sodium-native does not load: ${first}` };
    }
  }
  return 'sodium' in loaded ? loaded.sodium : null;
}

const NONCE = 24;
const MAC = 16;
const KEY = 32;

export function createSodiumCrypto(sodium: SodiumApi): Crypto {
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

/**
 * sodium-native when its binding loads, else the tweetnacl reference. The choice is made once and
 * reported at debug level: `NODE_DEBUG=zax` prints e.g.
 * `ZAX 4242: crypto backend: tweetnacl (sodium-native is not installed)` on stderr.
 */
export function bestCrypto(): Crypto {
  if (cached === null) {
    const sodium = loadSodium();
    if (sodium === null) {
      cached = tweetnaclCrypto;
      debug('crypto backend: tweetnacl (%s)', loaded !== null && 'error' in loaded ? loaded.error : 'sodium-native unavailable');
    } else {
      cached = createSodiumCrypto(sodium);
      debug('crypto backend: sodium-native');
    }
  }
  return cached;
}

/** The sodium-native backend, or null where the binding does not load. */
export function sodiumCrypto(): Crypto | null {
  const sodium = loadSodium();
  return sodium === null ? null : createSodiumCrypto(sodium);
}
