/**
 * Base64 between byte arrays (file chunks): `encodeBase64Into` writes exactly the text of `b64`,
 * and `decodeStrictBytes` accepts, decodes and refuses exactly what `decodeStrict` does.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { b64, base64Length, decodeStrict, decodeStrictBytes, encodeBase64Into } from '@zax/protocol';

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/** Single characters, in and out of the alphabet, and multi-byte ones (several ASCII-less bytes). */
const foreign = fc.constantFrom('-', '_', ' ', '\n', '\r', '.', '!', '=', '\u0000', '\u007f', '\u00e9', '\u20ac', 'A', '/', '+', 'z', '0');

/** decodeStrict and decodeStrictBytes on the same text must agree: both null, or the same bytes. */
function agree(s: string): void {
  const want = decodeStrict(s);
  const got = decodeStrictBytes(ascii(s));
  if (want === null) expect(got).toBeNull();
  else expect(got === null ? null : Array.from(got)).toEqual(Array.from(want));
}

describe('encodeBase64Into', () => {
  it('writes the text of b64, at any offset, and returns the end (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 3000 }), fc.nat(7), (bytes, offset) => {
        const out = new Uint8Array(offset + base64Length(bytes.length) + 3).fill(0xee);
        const end = encodeBase64Into(bytes, out, offset);
        expect(end).toBe(offset + b64(bytes).length);
        expect(text(out.subarray(offset, end))).toBe(b64(bytes));
        expect(out.subarray(0, offset).every((x) => x === 0xee)).toBe(true);
        expect(out.subarray(end).every((x) => x === 0xee)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
  it('encodes a view on a larger buffer by the view alone', () => {
    const big = Uint8Array.from({ length: 100 }, (_, i) => i);
    const view = big.subarray(10, 21);
    const out = new Uint8Array(base64Length(11));
    encodeBase64Into(view, out);
    expect(text(out)).toBe(b64(Uint8Array.from(view)));
  });
  it('refuses an output without room, and a bad offset', () => {
    expect(() => encodeBase64Into(new Uint8Array(4), new Uint8Array(7))).toThrow(RangeError);
    expect(() => encodeBase64Into(new Uint8Array(3), new Uint8Array(8), 5)).toThrow(RangeError);
    expect(() => encodeBase64Into(new Uint8Array(3), new Uint8Array(8), -1)).toThrow(RangeError);
    expect(encodeBase64Into(new Uint8Array(0), new Uint8Array(0))).toBe(0);
  });
  it('has base64Length', () => {
    expect([0, 1, 2, 3, 4, 511_984, 512_000].map(base64Length)).toEqual([0, 4, 4, 4, 8, 682_648, 682_668]);
  });
});

describe('decodeStrictBytes', () => {
  it('decodes every canonical encoding exactly, short and long (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 4000 }), (bytes) => {
        expect(Array.from(decodeStrictBytes(ascii(b64(bytes)))!)).toEqual(Array.from(bytes));
      }),
      { numRuns: 500 },
    );
  });
  it('agrees with decodeStrict under corruption: replaced, inserted, removed characters (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 1500 }), fc.nat(), foreign, fc.constantFrom('replace', 'insert', 'remove', 'replace4', 'tail'), (bytes, pos, ch, how) => {
        const s = b64(bytes);
        const i = s.length === 0 ? 0 : pos % s.length;
        const t =
          how === 'replace'
            ? s.slice(0, i) + ch + s.slice(i + 1)
            : how === 'insert'
              ? s.slice(0, i) + ch + s.slice(i)
              : how === 'remove'
                ? s.slice(0, i) + s.slice(i + 1)
                : how === 'replace4'
                  ? s.slice(0, i) + ch + ch + ch + s.slice(i + 1) // length stays a multiple of 4
                  : s.slice(0, Math.max(0, s.length - 1 - (pos % 3))) + ch + s.slice(Math.max(0, s.length - (pos % 3))); // near the padding
        agree(t);
      }),
      { numRuns: 3000 },
    );
  });
  it('refuses non-canonical trailing bits, missing or misplaced padding, and foreign bytes', () => {
    const flip = (s: string, k: number): string => s.slice(0, s.length - k - 1) + ALPHABET[ALPHABET.indexOf(s[s.length - k - 1]!) | 1]! + s.slice(s.length - k);
    for (const n of [1, 2, 4, 5, 1000, 1001]) {
      const e = b64(new Uint8Array(n).fill(0x41));
      const pad = e.endsWith('==') ? 2 : 1;
      for (const t of [flip(e, pad), e.replace(/=+$/, ''), '====' + e, e.slice(0, 4) + '====' + e.slice(8), e.slice(0, -4) + '=' + e.slice(-3)]) {
        agree(t);
        expect(decodeStrictBytes(ascii(t))).toBeNull();
      }
      agree(e.replace(/=+$/, 'A'.repeat(pad)));
    }
    for (const t of ['', 'A', 'AA', 'AAA', 'A===', '====', 'AA=A', 'AAA=', 'AAE=', 'AB==', 'AQ==', 'AA==AAAA', 'AAAA\n', ' AAAA', 'AA-_', 'AAAA====']) agree(t);
    // Bytes above ASCII (as from a Latin-1 or broken body) are foreign too.
    for (const x of [0x80, 0xc3, 0xff]) expect(decodeStrictBytes(Uint8Array.of(0x41, 0x41, 0x41, x))).toBeNull();
  });
  it('writes into `into` when it has room, else into a new array', () => {
    const into = new Uint8Array(10).fill(9);
    const got = decodeStrictBytes(ascii('AQID'), into)!;
    expect(got.buffer).toBe(into.buffer);
    expect(Array.from(got)).toEqual([1, 2, 3]);
    expect(into[3]).toBe(9);
    const small = new Uint8Array(2);
    const other = decodeStrictBytes(ascii('AQID'), small)!;
    expect(other.buffer).not.toBe(small.buffer);
    expect(Array.from(other)).toEqual([1, 2, 3]);
  });
});
