/** @zax/protocol against the shared vectors: h2, strict base64, nonces, proof of work, files ids. */
import { describe, expect, it } from 'vitest';
import { b64, checkAnswer, decodeFixed, h2, hasLowZeroBits, isNonceFresh, isStrictBase64, makeNonce, nonceTimestamp, solvePow } from '@zax/protocol';
import { hex, loadVector, unb64 } from '../../../test/support/vectors.js';

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('h2 (vectors/h2.json)', () => {
  const v = loadVector('h2.json');
  for (const c of v.vectors) {
    it(`reproduces ${c.name}`, () => {
      expect(hexOf(h2(hex(c.input_hex)))).toBe(c.output_hex);
      if (c.output_b64) expect(b64(h2(hex(c.input_hex)))).toBe(c.output_b64);
    });
  }
  it('hashes the plain concatenation of several arguments', () => {
    const m = v.multi_argument;
    expect(hexOf(h2(...m.args_hex.map(hex)))).toBe(m.output_hex);
    expect(hexOf(h2(hex(m.concatenated_hex)))).toBe(m.output_hex);
  });
  it('produces none of the look-alike constructions', () => {
    for (const w of v.wrong_constructions) expect(hexOf(h2(w.input_ascii))).not.toBe(w.output_hex);
  });
});

describe('strict base64 (vectors/base64.json)', () => {
  const v = loadVector('base64.json');
  for (const c of v.cases) {
    it(`${c.label}`, () => {
      expect(isStrictBase64(c.input)).toBe(c.strict_valid);
      expect(decodeFixed(c.input, 32) !== null).toBe(c.accept_as_32_byte_field);
      expect(decodeFixed(c.input, 24) !== null).toBe(c.accept_as_24_byte_field);
      if (c.accept_as_32_byte_field) expect(hexOf(decodeFixed(c.input, 32)!)).toBe(c.decoded_hex);
      if (c.accept_as_24_byte_field) expect(hexOf(decodeFixed(c.input, 24)!)).toBe(c.decoded_hex);
    });
  }
});

describe('nonces (vectors/nonce.json)', () => {
  const v = loadVector('nonce.json');
  it('lays out 8 big-endian seconds then 16 random bytes', () => {
    const e = v.layout_example;
    const n = makeNonce(e.timestamp, () => hex(e.random_part_hex));
    expect(hexOf(n)).toBe(e.nonce_hex);
    expect(b64(n)).toBe(e.nonce_b64);
    expect(nonceTimestamp(n)).toBe(e.timestamp);
  });
  for (const c of v.window_checks) {
    it(`window: ${c.label}`, () => {
      const n = decodeFixed(c.nonce_b64, 24)!;
      expect(nonceTimestamp(n)).toBe(c.timestamp);
      expect(isNonceFresh(n, c.relay_clock, v.nonce_window_sec)).toBe(c.accept);
    });
  }
  for (const c of v.malformed) {
    it(`malformed: ${c.label}`, () => {
      const n = decodeFixed(c.nonce_b64, 24);
      expect(n !== null && isNonceFresh(n, 1700000000, v.nonce_window_sec)).toBe(c.accept);
    });
  }
  it('makes distinct relay nonces at the same second', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) seen.add(hexOf(makeNonce(1700000000, (k) => Buffer.from(crypto.getRandomValues(new Uint8Array(k))))));
    expect(seen.size).toBe(1000);
  });
});

describe('proof of work (vectors/pow.json)', () => {
  const v = loadVector('pow.json');
  const ct = unb64(v.client_token_b64);
  const rt = unb64(v.relay_token_b64);
  for (const c of [...v.cases, ...v.cross_checks]) {
    it(`d=${c.difficulty} ${c.category} → ${c.accept ? 'accept' : 'reject'}`, () => {
      const nonce = unb64(c.nonce_b64);
      expect(hexOf(h2(ct, rt, nonce))).toBe(c.hash_hex);
      expect(checkAnswer(ct, rt, nonce, c.difficulty)).toBe(c.accept);
    });
  }
  for (const c of v.difficulty_zero) {
    it(`d=0 ${c.category}`, () => {
      expect(checkAnswer(ct, rt, unb64(c.answer_b64), 0)).toBe(c.accept);
    });
  }
  it('rejects answers that are not 32 bytes', () => {
    expect(checkAnswer(ct, rt, Buffer.alloc(31), 1)).toBe(false);
    expect(checkAnswer(ct, rt, Buffer.alloc(33), 0)).toBe(false);
  });
  it('solves what it checks, at several difficulties', () => {
    const rnd = (k: number): Buffer => Buffer.from(crypto.getRandomValues(new Uint8Array(k)));
    for (const d of [0, 1, 5, 9, 12]) expect(checkAnswer(ct, rt, solvePow(ct, rt, d, rnd), d)).toBe(true);
  });
  it('counts low-order bits from byte 0 upward', () => {
    expect(hasLowZeroBits(Buffer.from([0x00, 0x20]), 11)).toBe(true);
    expect(hasLowZeroBits(Buffer.from([0x00, 0x01]), 11)).toBe(false);
    expect(hasLowZeroBits(Buffer.alloc(32), 256)).toBe(true);
    expect(hasLowZeroBits(Buffer.alloc(32), 257)).toBe(false);
  });
});

describe('file identifiers (vectors/files.json)', () => {
  const v = loadVector('files.json');
  it('uploadID and storage_id of the reference vector', () => {
    const r = v.reference_vector;
    const uploadId = h2(r.hpk_from_ascii, r.hpk_to_ascii, r.nonce_ascii, r.seed);
    expect(b64(uploadId)).toBe(r.upload_id_b64);
    expect(hexOf(h2(uploadId, r.seed))).toBe(r.storage_id_hex);
  });
  it('storage token of the start_file_upload vector', () => {
    const s = v.start_file_upload_vector;
    expect(b64(h2(s.hpk_to_b64 + s.metadata.nonce))).toBe(s.storage_token_b64);
    const uploadId = h2(unb64(s.hpk_from_b64), unb64(s.hpk_to_b64), unb64(s.metadata.nonce), s.seed);
    expect(b64(uploadId)).toBe(s.upload_id_b64);
  });
});
