/**
 * Strict base64 (PROTOCOL.md §2.3): standard alphabet, mandatory padding, no whitespace, canonical
 * trailing bits. Node's decoder is lenient, so every input is checked before it is decoded.
 */
import { RelayError } from './errors.js';

const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** True when `s` is strict, canonical base64 (the empty string counts as valid). */
export function isStrictBase64(s: string): boolean {
  if (s.length % 4 !== 0 || !B64_RE.test(s)) return false;
  if (s.endsWith('==')) return (ALPHABET.indexOf(s[s.length - 3]!) & 0x0f) === 0;
  if (s.endsWith('=')) return (ALPHABET.indexOf(s[s.length - 2]!) & 0x03) === 0;
  return true;
}

/** Decodes strict base64, or returns null. */
export function decodeStrict(s: string): Buffer | null {
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
