/**
 * Strict base64 (docs/PROTOCOL.md §2.3): standard alphabet, mandatory padding, no whitespace, canonical
 * trailing bits. On Node the codec is Buffer's (native, fast) behind a strictness check, since
 * Node's decoder is lenient; elsewhere (browsers, k6) a portable codec that is strict by itself.
 */
import { RelayError } from './errors.js';
import { nodeBuffer, type NodeBufferApi } from './node-buffer.js';

const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const SEXTETS = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) SEXTETS[ALPHABET.charCodeAt(i)] = i;

/**
 * Above this length a string is checked by a round trip instead of the regex: the regex costs
 * ~10 ns a character (~6 ms for a 512000-byte file chunk's 682668 characters), the round trip
 * (Node's native decode and encode, then one string comparison) about a tenth of that.
 */
const ROUND_TRIP_MIN_CHARS = 1024;

/**
 * Long strings on Node: the bytes `s` decodes to when it is strict, canonical base64, else null.
 * Node's decoder is lenient (it skips foreign characters and takes `-`/`_`), but its encoder writes
 * exactly the canonical form: strict canonical base64 is the encoding of what it decodes to, and
 * nothing else re-encodes to itself. So `s` is valid iff decoding then encoding gives `s` back.
 */
function decodeByRoundTrip(buffer: NodeBufferApi, s: string): Uint8Array | null {
  const bytes = buffer.from(s, 'base64');
  return bytes.toString('base64') === s ? bytes : null;
}

function sextet(s: string, i: number): number {
  const c = s.charCodeAt(i);
  return c < 128 ? SEXTETS[c]! : -1;
}

/** The portable decoder: strict and canonical by construction, null for anything else. */
function portableDecode(s: string): Uint8Array | null {
  if (s.length % 4 !== 0) return null;
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((s.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < s.length; i += 4) {
    const last = i + 4 === s.length;
    const a = sextet(s, i);
    const b = sextet(s, i + 1);
    const c = last && pad === 2 ? 0 : sextet(s, i + 2);
    const d = last && pad >= 1 ? 0 : sextet(s, i + 3);
    if (a < 0 || b < 0 || c < 0 || d < 0) return null;
    if (last && pad === 2 && (b & 0x0f) !== 0) return null;
    if (last && pad === 1 && (c & 0x03) !== 0) return null;
    const v = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = v >>> 16;
    if (o < out.length) out[o++] = (v >>> 8) & 0xff;
    if (o < out.length) out[o++] = v & 0xff;
  }
  return out;
}

function portableEncode(bytes: Uint8Array): string {
  let out = '';
  const n = bytes.length;
  let i = 0;
  for (; i + 2 < n; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += ALPHABET[v >>> 18]! + ALPHABET[(v >>> 12) & 63]! + ALPHABET[(v >>> 6) & 63]! + ALPHABET[v & 63]!;
  }
  if (n - i === 1) {
    const v = bytes[i]! << 16;
    out += ALPHABET[v >>> 18]! + ALPHABET[(v >>> 12) & 63]! + '==';
  } else if (n - i === 2) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += ALPHABET[v >>> 18]! + ALPHABET[(v >>> 12) & 63]! + ALPHABET[(v >>> 6) & 63]! + '=';
  }
  return out;
}

/** True when `s` is strict, canonical base64 (the empty string counts as valid). */
export function isStrictBase64(s: string): boolean {
  if (s.length % 4 !== 0) return false;
  if (nodeBuffer === undefined) return portableDecode(s) !== null;
  if (s.length >= ROUND_TRIP_MIN_CHARS) return decodeByRoundTrip(nodeBuffer, s) !== null;
  if (!B64_RE.test(s)) return false;
  if (s.endsWith('==')) return (ALPHABET.indexOf(s[s.length - 3]!) & 0x0f) === 0;
  if (s.endsWith('=')) return (ALPHABET.indexOf(s[s.length - 2]!) & 0x03) === 0;
  return true;
}

/** Decodes strict base64, or returns null. */
export function decodeStrict(s: string): Uint8Array | null {
  if (s.length % 4 !== 0) return null;
  if (nodeBuffer === undefined) return portableDecode(s);
  if (s.length >= ROUND_TRIP_MIN_CHARS) return decodeByRoundTrip(nodeBuffer, s);
  return isStrictBase64(s) ? nodeBuffer.from(s, 'base64') : null;
}

/** Decodes strict base64 of exactly `bytes` bytes, or returns null. */
export function decodeFixed(s: string, bytes: number): Uint8Array | null {
  if (s.length !== 4 * Math.ceil(bytes / 3)) return null;
  const b = decodeStrict(s);
  return b !== null && b.length === bytes ? b : null;
}

/** Like decodeFixed, but a failure is a RelayError (400 G by default). */
export function requireFixed(s: unknown, bytes: number, what: string): Uint8Array {
  const b = typeof s === 'string' ? decodeFixed(s, bytes) : null;
  if (b === null) throw new RelayError('invalid', `${what}: not strict base64 of ${bytes} bytes`);
  return b;
}

/** Canonical padded base64 of bytes. */
export function b64(bytes: Uint8Array): string {
  if (nodeBuffer === undefined) return portableEncode(bytes);
  return nodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}
