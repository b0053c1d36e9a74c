/**
 * Strict base64 (docs/PROTOCOL.md §2.3): standard alphabet, mandatory padding, no whitespace, canonical
 * trailing bits. Node's decoder is lenient, so every input is checked before it is decoded.
 */
import { RelayError } from './errors.js';

const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/**
 * Above this length a string is checked by a round trip instead of the regex: the regex costs
 * ~10 ns a character (~6 ms for a 512000-byte file chunk's 682668 characters), the round trip
 * (Node's native decode and encode, then one string comparison) about a tenth of that.
 */
const ROUND_TRIP_MIN_CHARS = 1024;

/**
 * Long strings: the bytes `s` decodes to when it is strict, canonical base64, else null. Node's
 * decoder is lenient (it skips foreign characters and takes `-`/`_`), but its encoder writes
 * exactly the canonical form: strict canonical base64 is the encoding of what it decodes to, and
 * nothing else re-encodes to itself. So `s` is valid iff decoding then encoding gives `s` back.
 */
function decodeByRoundTrip(s: string): Buffer | null {
  const bytes = Buffer.from(s, 'base64');
  return bytes.toString('base64') === s ? bytes : null;
}

/** True when `s` is strict, canonical base64 (the empty string counts as valid). */
export function isStrictBase64(s: string): boolean {
  if (s.length % 4 !== 0) return false;
  if (s.length >= ROUND_TRIP_MIN_CHARS) return decodeByRoundTrip(s) !== null;
  if (!B64_RE.test(s)) return false;
  if (s.endsWith('==')) return (ALPHABET.indexOf(s[s.length - 3]!) & 0x0f) === 0;
  if (s.endsWith('=')) return (ALPHABET.indexOf(s[s.length - 2]!) & 0x03) === 0;
  return true;
}

/** Decodes strict base64, or returns null. */
export function decodeStrict(s: string): Buffer | null {
  if (s.length % 4 !== 0) return null;
  if (s.length >= ROUND_TRIP_MIN_CHARS) return decodeByRoundTrip(s);
  return isStrictBase64(s) ? Buffer.from(s, 'base64') : null;
}

/** Decodes strict base64 of exactly `bytes` bytes, or returns null. */
export function decodeFixed(s: string, bytes: number): Buffer | null {
  if (s.length !== 4 * Math.ceil(bytes / 3)) return null;
  const b = decodeStrict(s);
  return b !== null && b.length === bytes ? b : null;
}

/** Like decodeFixed, but a failure is a RelayError (400 G by default). */
export function requireFixed(s: unknown, bytes: number, what: string): Buffer {
  const b = typeof s === 'string' ? decodeFixed(s, bytes) : null;
  if (b === null) throw new RelayError('invalid', `${what}: not strict base64 of ${bytes} bytes`);
  return b;
}

/** Canonical padded base64 of bytes. */
export function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}
