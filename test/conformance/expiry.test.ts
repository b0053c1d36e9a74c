/**
 * Time-dependent conformance items on real processes with short configured lifetimes:
 * §8.37 (handshake lifetime is not extended), §8.46 (prove after tokenTtlSec), §8.59 (session
 * lifetime from /prove, not extended by use), §8.85 (message lifetime).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { Relay, post } from '../support/relay.js';
import * as raw from '../support/raw.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let relay: Relay;

beforeAll(async () => {
  relay = await Relay.start({
    redisUrl: inject('redisUrl'),
    env: { TOKEN_TTL_SEC: '2', SESSION_TTL_SEC: '3', MESSAGE_TTL_SEC: '2' },
  });
});
afterAll(async () => relay?.stop());

describe('lifetimes', () => {
  it('§8.37 §8.46 a handshake expires tokenTtlSec after the first start_session, however often repeated', async () => {
    const hs = await raw.startSession(relay.url);
    await sleep(1200);
    const again = await raw.startSession(relay.url, hs.clientToken);
    expect(again.relayToken.equals(hs.relayToken)).toBe(true);
    const verified = await raw.verifySession(relay.url, hs);
    await sleep(1300);
    // 2.5 s after the first start_session: gone, although it was repeated at 1.2 s
    const v = await post(`${relay.url}/verify_session`, raw.verifyBody(hs));
    expect(v.status).toBe(401);
    const p = await post(`${relay.url}/prove`, raw.proveBody(verified, raw.newIdentity()).body);
    expect(p.status).toBe(401);
    // and the same client token now starts a new handshake
    expect((await raw.startSession(relay.url, hs.clientToken)).relayToken.equals(hs.relayToken)).toBe(false);
  });

  it('§8.59 a session ends sessionTtlSec after /prove even if used in between', async () => {
    const s = await raw.connect(relay.url);
    await sleep(1500);
    expect((await raw.command(s, { cmd: 'count' })).status).toBe(200);
    await sleep(1800);
    const r = await raw.command(s, { cmd: 'count' });
    expect(r.status).toBe(401);
  });

  it('§8.85 a message is gone after messageTtlSec: not counted, downloaded or reported', async () => {
    const a = await raw.connect(relay.url);
    const up = await raw.command(a, { cmd: 'upload', to: a.id.hpk, payload: 'short-lived' });
    expect((await raw.command(a, { cmd: 'count' })).plain).toBe('1');
    const st = Number((await raw.command(a, { cmd: 'messageStatus', token: up.text })).text);
    expect(st).toBeGreaterThanOrEqual(1);
    expect(st).toBeLessThanOrEqual(2);
    await sleep(2200);
    expect((await raw.command(a, { cmd: 'count' })).plain).toBe('0');
    expect((await raw.command(a, { cmd: 'download' })).plain).toBe('[]');
    expect((await raw.command(a, { cmd: 'messageStatus', token: up.text })).text).toBe('-2');
  });
});
