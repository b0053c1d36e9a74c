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

// ---------- between byte arrays (large file chunks: no string, no copy) ----------

/** ASCII code of each sextet, and the sextet of each ASCII code (−1: not in the alphabet). */
const ASCII = new Uint8Array(64);
for (let i = 0; i < 64; i++) ASCII[i] = ALPHABET.charCodeAt(i);
const SEXTET_OF_BYTE = new Int16Array(256).fill(-1);
for (let i = 0; i < 64; i++) SEXTET_OF_BYTE[ASCII[i]!] = i;
const PAD = 0x3d; // '='

/** The length of the padded base64 of `n` bytes. */
export const base64Length = (n: number): number => 4 * Math.ceil(n / 3);

/**
 * Writes the canonical padded base64 of `bytes` as ASCII into `out` at `offset` (which must have
 * `base64Length(bytes.length)` bytes of room) and returns the offset after it. The same text as
 * `b64`, without building a string.
 */
export function encodeBase64Into(bytes: Uint8Array, out: Uint8Array, offset = 0): number {
  const n = bytes.length;
  const end = offset + base64Length(n);
  if (!Number.isSafeInteger(offset) || offset < 0 || end > out.length) throw new RangeError(`base64 of ${n} bytes does not fit at ${offset} in ${out.length} bytes`);
  let o = offset;
  let i = 0;
  for (const whole = n - (n % 3); i < whole; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out[o] = ASCII[v >>> 18]!;
    out[o + 1] = ASCII[(v >>> 12) & 63]!;
    out[o + 2] = ASCII[(v >>> 6) & 63]!;
    out[o + 3] = ASCII[v & 63]!;
    o += 4;
  }
  if (n - i === 1) {
    const v = bytes[i]! << 16;
    out[o] = ASCII[v >>> 18]!;
    out[o + 1] = ASCII[(v >>> 12) & 63]!;
    out[o + 2] = PAD;
    out[o + 3] = PAD;
  } else if (n - i === 2) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out[o] = ASCII[v >>> 18]!;
    out[o + 1] = ASCII[(v >>> 12) & 63]!;
    out[o + 2] = ASCII[(v >>> 6) & 63]!;
    out[o + 3] = PAD;
  }
  return end;
}

/**
 * Decodes strict base64 given as ASCII bytes, under exactly the rules of `decodeStrict` (standard
 * alphabet, mandatory padding only at the end, no whitespace, canonical trailing bits), or returns
 * null. The result is written into `into` (a view on its start is returned) when it has room,
 * else into a new array.
 */
export function decodeStrictBytes(ascii: Uint8Array, into?: Uint8Array): Uint8Array | null {
  const len = ascii.length;
  if (len % 4 !== 0) return null;
  const pad = len === 0 ? 0 : ascii[len - 1] !== PAD ? 0 : ascii[len - 2] === PAD ? 2 : 1;
  const size = (len / 4) * 3 - pad;
  const out = into !== undefined && into.length >= size ? into.subarray(0, size) : new Uint8Array(size);
  const whole = pad === 0 ? len : len - 4;
  let o = 0;
  for (let i = 0; i < whole; i += 4) {
    const a = SEXTET_OF_BYTE[ascii[i]!]!;
    const b = SEXTET_OF_BYTE[ascii[i + 1]!]!;
    const c = SEXTET_OF_BYTE[ascii[i + 2]!]!;
    const d = SEXTET_OF_BYTE[ascii[i + 3]!]!;
    // One test for all four: any −1 makes the OR negative.
    if ((a | b | c | d) < 0) return null;
    out[o] = (a << 2) | (b >>> 4);
    out[o + 1] = ((b & 15) << 4) | (c >>> 2);
    out[o + 2] = ((c & 3) << 6) | d;
    o += 3;
  }
  if (pad > 0) {
    const a = SEXTET_OF_BYTE[ascii[whole]!]!;
    const b = SEXTET_OF_BYTE[ascii[whole + 1]!]!;
    if ((a | b) < 0) return null;
    out[o] = (a << 2) | (b >>> 4);
    if (pad === 2) {
      if ((b & 15) !== 0) return null;
    } else {
      const c = SEXTET_OF_BYTE[ascii[whole + 2]!]!;
      if (c < 0 || (c & 3) !== 0) return null;
      out[o + 1] = ((b & 15) << 4) | (c >>> 2);
    }
  }
  return out;
}
