/**
 * §8.23 §8.24 §8.27 on real processes: a relay configured with difficulty 8 publishes it, accepts
 * answers meeting it (low-order bits) and refuses the rest, exactly at the boundary (7 bits refused,
 * 8 accepted); an out-of-range difficulty prevents start-up. Answers are judged by an oracle of this
 * file (the hash as a little-endian integer), not by the relay's own `hasLowZeroBits`.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { b64, h2 } from '@zax/protocol';
import { GATEKEEPER_MAIN, Relay, post } from '../support/relay.js';
import * as raw from '../support/raw.js';

let relay: Relay;
beforeAll(async () => {
  relay = await Relay.start({ redisUrl: inject('redisUrl'), env: { DIFFICULTY: '8' } });
});
afterAll(async () => relay?.stop());

/** Trailing zero bits of the hash read as a little-endian 256-bit integer (256 for zero). */
function lowZeroBits(hash: Uint8Array): number {
  const v = BigInt('0x' + (Buffer.from(hash).reverse().toString('hex') || '0'));
  if (v === 0n) return 8 * hash.length;
  let n = 0;
  while (((v >> BigInt(n)) & 1n) === 0n) n++;
  return n;
}

/** A random answer whose hash has exactly `bits` low-order zero bits for this handshake. */
function answerWithExactly(hs: raw.Handshake, bits: number): Buffer {
  for (;;) {
    const a = raw.rnd(32);
    if (lowZeroBits(h2(hs.clientToken, hs.relayToken, a)) === bits) return a;
  }
}

const verify = (hs: raw.Handshake, answer: Uint8Array): Promise<{ status: number; headers: Headers }> =>
  post(`${relay.url}/verify_session`, `${hs.handshakeId}\r\n${b64(answer)}`);

describe('static difficulty 8', () => {
  it('§8.23 publishes d and accepts an answer with d low-order zero bits', async () => {
    const hs = await raw.startSession(relay.url);
    expect(hs.difficulty).toBe(8);
    const r = await post(`${relay.url}/verify_session`, raw.verifyBody(hs));
    expect(r.status).toBe(200);
    // and the whole session works
    expect((await raw.command(await raw.connect(relay.url), { cmd: 'count' })).plain).toBe('0');
  });

  it('§8.24 an answer not meeting d is 401 G; a 44-char answer of 31 or 33 bytes is 400 G', async () => {
    const hs = await raw.startSession(relay.url);
    let bad: Buffer;
    do bad = raw.rnd(32);
    while (lowZeroBits(h2(hs.clientToken, hs.relayToken, bad)) >= 8);
    const r = await verify(hs, bad);
    expect([r.status, r.headers.get('x-error-details')]).toEqual([401, 'Your request can not be completed.']);
    // the zero-difficulty answer is not a valid proof at d = 8 (outside any grace window)
    const answer0 = h2(hs.clientToken, hs.relayToken);
    const zero = await verify(hs, answer0);
    expect(zero.status).toBe(lowZeroBits(h2(hs.clientToken, hs.relayToken, answer0)) >= 8 ? 200 : 401);
    for (const n of [31, 33]) {
      const line = b64(raw.rnd(n)); // 31 and 33 bytes are 44 base64 chars too
      expect(line).toHaveLength(44);
      const res = await post(`${relay.url}/verify_session`, `${hs.handshakeId}\r\n${line}`);
      expect([res.status, res.headers.get('x-error-details')]).toEqual([400, 'Your request can not be completed.']);
    }
  });

  it('§8.23 §8.24 at the boundary: exactly 7 low-order zero bits is 401 G, exactly 8 or 9 is 200', async () => {
    for (const bits of [7, 6, 1, 0]) {
      const hs = await raw.startSession(relay.url);
      const r = await verify(hs, answerWithExactly(hs, bits));
      expect([r.status, r.headers.get('x-error-details')], `${bits} bits`).toEqual([401, 'Your request can not be completed.']);
    }
    for (const bits of [8, 9]) {
      const hs = await raw.startSession(relay.url);
      expect((await verify(hs, answerWithExactly(hs, bits))).status, `${bits} bits`).toBe(200);
    }
  });

  it('the oracle of this file reads the hash as a little-endian integer', () => {
    expect(lowZeroBits(Buffer.from([0x00, 0x20]))).toBe(13);
    expect(lowZeroBits(Buffer.from([0x80, 0x00]))).toBe(7);
    expect(lowZeroBits(Buffer.from([0x01, 0x00]))).toBe(0);
    expect(lowZeroBits(Buffer.alloc(32))).toBe(256);
  });

  it('§8.27 a configured difficulty outside 0..255 prevents start-up', () => {
    for (const d of ['256', '-1', '1.5', 'x']) {
      const r = spawnSync(process.execPath, [GATEKEEPER_MAIN], {
        env: { PATH: process.env.PATH ?? '', REDIS_URL: 'redis://127.0.0.1:1', INTERNAL_SECRET: 'x'.repeat(20), DIFFICULTY: d, PORT: '0' },
        encoding: 'utf8',
        timeout: 10_000,
      });
      expect(r.status, d).toBe(1);
      expect(r.stdout + r.stderr).toMatch(/DIFFICULTY/);
    }
  });
});
