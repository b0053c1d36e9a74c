/**
 * Identities: a Curve25519 comm key pair and its mailbox address hpk = h2(pk) (docs/PROTOCOL.md §3.1),
 * the parsing of public keys given as strings, and the identity file's JSON (base64 secret key).
 * No Node modules: the browser bundle uses it too. Reading and writing the file is `identity-file.ts`.
 */
import { b64, decodeFixed, h2, KEY_BYTES, type Crypto } from '@zax/protocol';
import { bestCrypto } from './crypto-backend.js';
import { IdentityError } from './errors.js';

export interface Identity {
  /** Curve25519 public comm key (32 bytes); correspondents encrypt to it. */
  readonly publicKey: Uint8Array;
  /** Curve25519 secret comm key (32 bytes). */
  readonly secretKey: Uint8Array;
  /** h2(publicKey): the mailbox address on every relay. */
  readonly hpk: Uint8Array;
}

/** The mailbox address of a public key. */
export const hpkOf = (publicKey: Uint8Array): Uint8Array => h2(publicKey);

export function identityFromSecretKey(secretKey: Uint8Array, crypto: Crypto = bestCrypto()): Identity {
  if (secretKey.length !== KEY_BYTES) throw new IdentityError(`a secret key has ${KEY_BYTES} bytes, not ${secretKey.length}`);
  const kp = crypto.keyPairFromSecretKey(secretKey);
  return { publicKey: kp.publicKey, secretKey: kp.secretKey, hpk: hpkOf(kp.publicKey) };
}

export function generateIdentity(crypto: Crypto = bestCrypto()): Identity {
  const kp = crypto.keyPair();
  return { publicKey: kp.publicKey, secretKey: kp.secretKey, hpk: hpkOf(kp.publicKey) };
}

/** A 32-byte key or hpk from strict base64 (44 chars) or raw bytes; `what` names it in the error. */
export function parseKey(value: string | Uint8Array, what = 'public key'): Uint8Array {
  if (typeof value !== 'string') {
    if (value.length !== KEY_BYTES) throw new IdentityError(`${what}: expected ${KEY_BYTES} bytes, got ${value.length}`);
    return value;
  }
  const k = decodeFixed(value, KEY_BYTES);
  if (k === null) throw new IdentityError(`${what}: expected 44 characters of standard base64 (32 bytes), got ${JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)}`);
  return k;
}

// ---------- identity file ----------

const FILE_TYPE = 'zax-identity';
const FILE_VERSION = 1;

/** The identity file's JSON. `publicKey` and `hpk` are informative and checked on load. */
export interface IdentityFile {
  type: typeof FILE_TYPE;
  version: typeof FILE_VERSION;
  publicKey: string;
  hpk: string;
  secretKey: string;
}

export function serializeIdentity(id: Identity): string {
  const file: IdentityFile = {
    type: FILE_TYPE,
    version: FILE_VERSION,
    publicKey: b64(id.publicKey),
    hpk: b64(id.hpk),
    secretKey: b64(id.secretKey),
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

export function parseIdentity(text: string, crypto: Crypto = bestCrypto()): Identity {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    throw new IdentityError('identity file is not JSON');
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new IdentityError('identity file is not a JSON object');
  const o = obj as Record<string, unknown>;
  if (o.type !== FILE_TYPE) throw new IdentityError(`identity file: "type" must be "${FILE_TYPE}"`);
  if (o.version !== FILE_VERSION) throw new IdentityError(`identity file: unsupported version ${JSON.stringify(o.version)}`);
  if (typeof o.secretKey !== 'string') throw new IdentityError('identity file: "secretKey" missing');
  const id = identityFromSecretKey(parseKey(o.secretKey, 'identity file "secretKey"'), crypto);
  // A hand-edited file whose public part no longer matches its secret would send mail to one
  // address and read another; refuse it rather than guess which half is right.
  if (o.publicKey !== undefined && o.publicKey !== b64(id.publicKey)) throw new IdentityError('identity file: "publicKey" does not match "secretKey"');
  if (o.hpk !== undefined && o.hpk !== b64(id.hpk)) throw new IdentityError('identity file: "hpk" does not match "secretKey"');
  return id;
}
