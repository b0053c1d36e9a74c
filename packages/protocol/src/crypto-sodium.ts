/**
 * The fast Crypto backend on sodium-native (libsodium, prebuilt binaries inside the npm package),
 * behind the same interface as the tweetnacl reference. sodium-native 5 no longer exports
 * `crypto_box_beforenm` or HSalsa20, so the precomputed key is built from `crypto_scalarmult`
 * (libsodium refuses an all-zero result: a low-order public key) and tweetnacl's HSalsa20 core.
 *
 * Pure: this package neither depends on sodium-native nor loads it. A package that does (the
 * services, the Node client) hands `sodiumBackends` a function that requires the binding from
 * where it is installed, and gets `best()` (this backend when the binding loads, else tweetnacl)
 * and `sodium()`. Nothing here, nor in the emitted declarations, names the module: it is used
 * through `SodiumApi`, the few functions this file calls.
 */
import { checkSecretboxInto, hsalsa20, tweetnaclCrypto, type Crypto } from './crypto.js';

type Bytes = Uint8Array;

/** The sodium-native 5 functions this backend calls (that package ships no types of its own). */
interface SodiumApi {
  randombytes_buf(out: Bytes): void;
  crypto_box_keypair(pk: Bytes, sk: Bytes): void;
  crypto_scalarmult_base(q: Bytes, n: Bytes): void;
  crypto_scalarmult(q: Bytes, n: Bytes, p: Bytes): void;
  crypto_secretbox_easy(c: Bytes, m: Bytes, n: Bytes, k: Bytes): void;
  crypto_secretbox_open_easy(m: Bytes, c: Bytes, n: Bytes, k: Bytes): boolean;
}

const NONCE = 24;
const MAC = 16;
const KEY = 32;

function createSodiumCrypto(sodium: SodiumApi): Crypto {
  const before = (publicKey: Uint8Array, secretKey: Uint8Array): Uint8Array | null => {
    if (publicKey.length !== KEY || secretKey.length !== KEY) return null;
    const shared = new Uint8Array(KEY);
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
      const b = new Uint8Array(n);
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
      const out = new Uint8Array(message.length + MAC);
      sodium.crypto_secretbox_easy(out, message, nonce, sharedKey);
      return out;
    },
    boxOpenAfter(box, nonce, sharedKey) {
      if (box.length < MAC || nonce.length !== NONCE || sharedKey.length !== KEY) return null;
      const out = new Uint8Array(box.length - MAC);
      return sodium.crypto_secretbox_open_easy(out, box, nonce, sharedKey) ? out : null;
    },
    secretboxInto(out, message, nonce, key) {
      checkSecretboxInto(out, message, nonce, key);
      const box = out.subarray(0, message.length + MAC);
      sodium.crypto_secretbox_easy(box, message, nonce, key);
      return box;
    },
  };
}

/** Why the binding did not load, in one line. */
function loadFailure(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  const first = (e instanceof Error ? e.message : String(e)).split('\n', 1)[0]!;
  const absent = code === 'MODULE_NOT_FOUND' && first.includes("'sodium-native'");
  return absent ? 'sodium-native is not installed' : `sodium-native does not load: ${first}`;
}

export interface SodiumBackends {
  /**
   * sodium-native when its binding loads, else the tweetnacl reference. The choice is made once and
   * reported through `report`, e.g. `crypto backend: tweetnacl (sodium-native is not installed)`.
   */
  best(): Crypto;
  /** The sodium-native backend, or null where the binding does not load. */
  sodium(): Crypto | null;
}

/**
 * The backends over the binding `requireSodium` returns (it throws where sodium-native is not
 * installed or does not load); it is called at most once. `report` gets the choice `best` made.
 */
export function sodiumBackends(requireSodium: () => unknown, report: (message: string) => void): SodiumBackends {
  let loaded: { sodium: SodiumApi } | { error: string } | null = null;
  let best: Crypto | null = null;
  const load = (): { sodium: SodiumApi } | { error: string } => {
    if (loaded === null) {
      try {
        loaded = { sodium: requireSodium() as SodiumApi };
      } catch (e) {
        loaded = { error: loadFailure(e) };
      }
    }
    return loaded;
  };
  return {
    best() {
      if (best === null) {
        const l = load();
        best = 'sodium' in l ? createSodiumCrypto(l.sodium) : tweetnaclCrypto;
        report('sodium' in l ? 'crypto backend: sodium-native' : `crypto backend: tweetnacl (${l.error})`);
      }
      return best;
    },
    sodium() {
      const l = load();
      return 'sodium' in l ? createSodiumCrypto(l.sodium) : null;
    },
  };
}
