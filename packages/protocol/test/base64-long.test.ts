/**
 * Long base64 strings (file chunks) are checked by a decode/encode round trip instead of the
 * regex: the same strings must pass and fail as under the regex rule of docs/PROTOCOL.md §2.3.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeStrict, isStrictBase64 } from '@zax/protocol';

const RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/** The rule as the regex states it (the short-string path). */
function reference(s: string): boolean {
  if (s.length % 4 !== 0 || !RE.test(s)) return false;
  if (s.endsWith('==')) return (ALPHABET.indexOf(s[s.length - 3]!) & 0x0f) === 0;
  if (s.endsWith('=')) return (ALPHABET.indexOf(s[s.length - 2]!) & 0x03) === 0;
  return true;
}

const long = fc.uint8Array({ minLength: 768, maxLength: 1200 }).map((b) => Buffer.from(b).toString('base64'));
const foreign = fc.constantFrom('-', '_', ' ', '\n', '\r', '.', '!', '=', '\u00e9', '\u20ac', '\ud83d', 'A', '/', '+');

describe('strict base64 of long strings', () => {
  it('accepts every canonical encoding and decodes it exactly (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 768, maxLength: 2000 }), (bytes) => {
        const s = Buffer.from(bytes).toString('base64');
        expect(isStrictBase64(s)).toBe(true);
        expect(decodeStrict(s)).toEqual(Buffer.from(bytes));
      }),
    );
  });
  it('agrees with the regex rule under corruption: replaced, inserted and removed characters (property)', () => {
    fc.assert(
      fc.property(long, fc.nat(), foreign, fc.constantFrom('replace', 'insert', 'remove', 'replace4'), (s, pos, ch, how) => {
        const i = pos % s.length;
        const t =
          how === 'replace'
            ? s.slice(0, i) + ch + s.slice(i + 1)
            : how === 'insert'
              ? s.slice(0, i) + ch + s.slice(i)
              : how === 'remove'
                ? s.slice(0, i) + s.slice(i + 1)
                : s.slice(0, i) + ch + ch + ch + s.slice(i + 1); // length stays a multiple of 4
        const want = reference(t);
        expect(isStrictBase64(t)).toBe(want);
        expect(decodeStrict(t) !== null).toBe(want);
      }),
      { numRuns: 2000 },
    );
  });
  it('refuses non-canonical trailing bits and misplaced padding', () => {
    const s = Buffer.alloc(1000, 7).toString('base64');
    expect(isStrictBase64(s)).toBe(true);
    const bits = (t: string, k: number): string => t.slice(0, t.length - k - 1) + ALPHABET[ALPHABET.indexOf(t[t.length - k - 1]!) | 1]! + t.slice(t.length - k);
    for (const n of [1000, 1001, 1002]) {
      const e = Buffer.alloc(n, 0x41).toString('base64');
      const pad = e.endsWith('==') ? 2 : e.endsWith('=') ? 1 : 0;
      if (pad > 0) expect(isStrictBase64(bits(e, pad))).toBe(false);
      expect(isStrictBase64(e.slice(0, 4) + '====' + e.slice(8))).toBe(false);
      expect(isStrictBase64(e.replace(/=+$/, ''))).toBe(reference(e.replace(/=+$/, '')));
    }
  });
});
