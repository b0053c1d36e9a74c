/**
 * §8.23 §8.24 §8.27 on real processes: a relay configured with difficulty 8 publishes it, accepts
 * answers meeting it (low-order bits) and refuses the rest; an out-of-range difficulty prevents
 * start-up.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { b64, h2, hasLowZeroBits } from '@zax/protocol';
import { GATEKEEPER_MAIN, Relay, post } from '../support/relay.js';
import * as raw from '../support/raw.js';

let relay: Relay;
beforeAll(async () => {
  relay = await Relay.start({ redisUrl: inject('redisUrl'), env: { DIFFICULTY: '8' } });
});
afterAll(async () => relay?.stop());

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
    while (hasLowZeroBits(h2(hs.clientToken, hs.relayToken, bad), 8));
    const r = await post(`${relay.url}/verify_session`, `${hs.handshakeId}\r\n${b64(bad)}`);
    expect([r.status, r.headers.get('x-error-details')]).toEqual([401, 'Your request can not be completed.']);
    // the zero-difficulty answer is not a valid proof at d = 8 (outside any grace window)
    const zero = await post(`${relay.url}/verify_session`, `${hs.handshakeId}\r\n${b64(h2(hs.clientToken, hs.relayToken))}`);
    expect(zero.status).toBe(hasLowZeroBits(h2(hs.clientToken, hs.relayToken, h2(hs.clientToken, hs.relayToken)), 8) ? 200 : 401);
    for (const n of [31, 33]) {
      const line = b64(raw.rnd(n)); // 31 and 33 bytes are 44 base64 chars too
      expect(line).toHaveLength(44);
      const res = await post(`${relay.url}/verify_session`, `${hs.handshakeId}\r\n${line}`);
      expect([res.status, res.headers.get('x-error-details')]).toEqual([400, 'Your request can not be completed.']);
    }
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
