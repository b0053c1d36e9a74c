/** Framing, base64 and command validation: unit tests plus fast-check properties. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  RelayError,
  b64,
  base64DecodedBytes,
  decodeStrict,
  frame,
  joinLines,
  normalizePath,
  splitLines,
  validateCommand,
} from '@zax/protocol';

const LIMITS = { maxMessageBytes: 262144, maxChunkSize: 512000, maxFileSize: 1073741823 };
const HPK = 'ziroWr6xdFL0txLbCDjZAZTlwMiZiMuPzxy2Wl+zfXM=';
const NONCE = 'AAAAAGVT8QUQERITFBUWFxgZGhscHR4f';

function codeOf(f: () => unknown): string {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (e instanceof RelayError) return e.code;
    throw e;
  }
}

describe('splitLines', () => {
  it('drops exactly one trailing line break', () => {
    expect(splitLines('a\r\n')).toEqual(['a']);
    expect(splitLines('a\n')).toEqual(['a']);
    expect(splitLines('a\r\n\r\n')).toEqual(['a', '']);
    expect(splitLines('')).toEqual([]);
    expect(splitLines('\r\n')).toEqual([]);
    expect(splitLines('\r\na')).toEqual(['', 'a']);
  });
  it('keeps a lone CR as content', () => {
    expect(splitLines('a\rb')).toEqual(['a\rb']);
    expect(splitLines('a\r')).toEqual(['a\r']);
  });
  it('round-trips lines joined by CRLF or LF (property)', () => {
    const line = fc.string({ unit: fc.constantFrom('A', 'b', '=', '+', '/', ' ', '\r'), minLength: 1 }).filter((s) => !s.endsWith('\r'));
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 6 }), fc.constantFrom('\r\n', '\n'), fc.boolean(), (lines, sep, trailing) => {
        expect(splitLines(lines.join(sep) + (trailing ? sep : ''))).toEqual(lines);
      }),
    );
  });
  it('frame: line count and lengths are framing errors', () => {
    expect(codeOf(() => frame('', [44]))).toBe('framing');
    expect(codeOf(() => frame('x'.repeat(43), [44]))).toBe('framing');
    expect(codeOf(() => frame('x'.repeat(44), [44]))).toBe('ok');
    expect(codeOf(() => frame('a\nb\nc', [1, null]))).toBe('framing');
    expect(codeOf(() => frame('a\nb\nc', [1, null], 1))).toBe('ok');
    expect(codeOf(() => frame('a\n\nc', [1, null], 1))).toBe('framing');
  });
  it('joins response lines with CRLF and no trailing break', () => {
    expect(joinLines(['a', 'b'])).toBe('a\r\nb');
  });
});

describe('base64', () => {
  it('round-trips random bytes canonically (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const s = b64(bytes);
        expect(decodeStrict(s)).toEqual(Buffer.from(bytes));
        expect(base64DecodedBytes(s)).toBe(bytes.length);
      }),
    );
  });
  it('rejects any single-character corruption into a non-alphabet character (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.nat(), fc.constantFrom('-', '_', ' ', '\n', '.', '!'), (bytes, pos, ch) => {
        const s = b64(bytes);
        const i = pos % s.length;
        expect(decodeStrict(s.slice(0, i) + ch + s.slice(i + 1))).toBeNull();
      }),
    );
  });
});

describe('paths', () => {
  it('normalises leading and trailing slashes and drops the query', () => {
    expect(normalizePath('//command')).toBe('/command');
    expect(normalizePath('/command/')).toBe('/command');
    expect(normalizePath('/start_session?x=1')).toBe('/start_session');
  });
});

describe('validateCommand', () => {
  const v = (o: Record<string, unknown>, line4: string | null = null): string => codeOf(() => validateCommand(o, LIMITS, line4));
  it('requires a known cmd', () => {
    expect(v({})).toBe('invalid');
    expect(v({ cmd: 'Count' })).toBe('invalid');
    expect(v({ cmd: null })).toBe('invalid');
    expect(v({ cmd: 'count' })).toBe('ok');
  });
  it('upload', () => {
    expect(v({ cmd: 'upload', to: HPK, payload: 'hi' })).toBe('ok');
    expect(v({ cmd: 'upload', to: HPK, payload: '' })).toBe('ok');
    expect(v({ cmd: 'upload', to: HPK, payload: { ctext: 'x', nonce: NONCE } })).toBe('ok');
    expect(v({ cmd: 'upload', to: HPK, payload: { ctext: 'x', nonce: null } })).toBe('ok');
    expect(v({ cmd: 'upload', to: HPK, payload: { ctext: 'x', nonce: 'AAAA' } })).toBe('invalid');
    expect(v({ cmd: 'upload', to: HPK, payload: 5 })).toBe('invalid');
    expect(v({ cmd: 'upload', to: HPK, payload: ['x'] })).toBe('invalid');
    expect(v({ cmd: 'upload', to: HPK, payload: { nonce: NONCE } })).toBe('invalid');
    expect(v({ cmd: 'upload', to: HPK.slice(0, 42) + 'N=', payload: 'x' })).toBe('invalid');
    expect(v({ cmd: 'upload', to: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==', payload: 'x' })).toBe('invalid');
    expect(v({ cmd: 'upload', to: HPK, payload: 'x'.repeat(262145) })).toBe('tooLarge');
    expect(v({ cmd: 'upload', to: HPK, payload: 'é'.repeat(131073) })).toBe('tooLarge');
  });
  it('download', () => {
    expect(validateCommand({ cmd: 'download' }, LIMITS, null)).toEqual({ cmd: 'download', start: 0, count: 100, from: null });
    expect(validateCommand({ cmd: 'download', count: 500, start: 1.0 }, LIMITS, null)).toMatchObject({ count: 100, start: 1 });
    for (const bad of [{ count: 0 }, { count: '1' }, { start: -1 }, { start: 1.5 }, { from: [] }, { from: 'x' }, { from: ['x'] }, { count: 2 ** 53 }]) {
      expect(v({ cmd: 'download', ...bad })).toBe('invalid');
    }
    expect(v({ cmd: 'download', from: [HPK] })).toBe('ok');
  });
  it('messageStatus, delete, getEntropy', () => {
    expect(v({ cmd: 'messageStatus', token: HPK })).toBe('ok');
    expect(v({ cmd: 'messageStatus', token: HPK.slice(1) })).toBe('invalid');
    expect(v({ cmd: 'delete', payload: [] })).toBe('ok');
    expect(v({ cmd: 'delete', payload: Array(100).fill(NONCE) })).toBe('ok');
    expect(v({ cmd: 'delete', payload: Array(101).fill(NONCE) })).toBe('invalid');
    expect(v({ cmd: 'delete', payload: 'x' })).toBe('invalid');
    expect(v({ cmd: 'delete', payload: [1] })).toBe('invalid');
    expect(v({ cmd: 'getEntropy', size: 1000 })).toBe('ok');
    expect(v({ cmd: 'getEntropy', size: 0 })).toBe('invalid');
    expect(v({ cmd: 'getEntropy', size: 512001 })).toBe('invalid');
    expect(v({ cmd: 'getEntropy', size: '5' })).toBe('invalid');
  });
  it('file commands', () => {
    const meta = { nonce: NONCE, ctext: 'c' };
    expect(v({ cmd: 'startFileUpload', to: HPK, file_size: 11, metadata: meta })).toBe('ok');
    expect(v({ cmd: 'startFileUpload', to: HPK, file_size: 0, metadata: meta })).toBe('invalid');
    expect(v({ cmd: 'startFileUpload', to: HPK, file_size: 11, metadata: { nonce: NONCE, ctext: '' } })).toBe('invalid');
    expect(v({ cmd: 'uploadFileChunk', uploadID: HPK, part: 0, nonce: NONCE }, 'AAAA')).toBe('ok');
    expect(v({ cmd: 'uploadFileChunk', uploadID: HPK, part: 0, nonce: NONCE })).toBe('invalid');
    expect(v({ cmd: 'uploadFileChunk', uploadID: HPK, part: '0', nonce: NONCE }, 'AAAA')).toBe('invalid');
    expect(v({ cmd: 'uploadFileChunk', uploadID: HPK, part: 0, nonce: NONCE, last_chunk: 1 }, 'AAAA')).toBe('invalid');
    expect(v({ cmd: 'uploadFileChunk', uploadID: HPK, part: 0, nonce: NONCE }, 'A'.repeat(682668))).toBe('tooLarge');
    expect(v({ cmd: 'downloadFileChunk', uploadID: HPK, part: -1 })).toBe('invalid');
    expect(v({ cmd: 'fileStatus', uploadID: HPK })).toBe('ok');
    expect(v({ cmd: 'deleteFile', uploadID: 'x' })).toBe('invalid');
  });
});
