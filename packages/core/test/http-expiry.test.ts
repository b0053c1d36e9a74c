/** Time through the injected clock: session TTL (59), message TTL (85), messageStatus, handshakes. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TEXT_G, tweetnaclCrypto as C } from '@zax/protocol';
import { command, commandJson, commandPlain, establishSession, mint, nonceAt, proveBody, startCore, type Core } from './helpers.js';

let core: Core;
beforeEach(async () => {
  core = await startCore();
});
afterEach(async () => {
  await core.close();
});

describe('expiry', () => {
  it('a session ends sessionTtlSec after /prove, even if used in between (59)', async () => {
    const s = await establishSession(core);
    core.clock.advanceSec(600);
    expect((await command(core, s, { cmd: 'count' })).status).toBe(200);
    core.clock.advanceSec(599);
    expect((await command(core, s, { cmd: 'count' })).status).toBe(200);
    core.clock.advanceSec(1);
    const r = await command(core, s, { cmd: 'count' });
    expect(r.status).toBe(401);
    expect(r.headers.get('x-error-details')).toBe(TEXT_G);
  });

  it('the session TTL follows SESSION_TTL_SEC', async () => {
    await core.close();
    core = await startCore({ env: { SESSION_TTL_SEC: '30' } });
    const s = await establishSession(core);
    core.clock.advanceSec(29);
    expect((await command(core, s, { cmd: 'count' })).status).toBe(200);
    core.clock.advanceSec(1);
    expect((await command(core, s, { cmd: 'count' })).status).toBe(401);
  });

  it('after messageTtlSec a message is not counted, downloaded or reported (85)', async () => {
    await core.close();
    core = await startCore({ env: { MESSAGE_TTL_SEC: '100', SESSION_TTL_SEC: '3600' } });
    const alice = await establishSession(core);
    const bob = await establishSession(core);
    const token = await commandPlain(core, alice, { cmd: 'upload', to: bob.hpk, payload: 'x' });
    core.clock.advanceSec(50);
    await commandPlain(core, alice, { cmd: 'upload', to: bob.hpk, payload: 'y' });
    expect(await commandPlain(core, alice, { cmd: 'messageStatus', token })).toBe('50');
    core.clock.ms += 49_001;
    expect(await commandPlain(core, alice, { cmd: 'messageStatus', token })).toBe('1');
    expect(await commandJson(core, bob, { cmd: 'count' })).toBe(2);
    core.clock.ms += 999;
    expect(await commandPlain(core, alice, { cmd: 'messageStatus', token })).toBe('-2');
    expect(await commandJson(core, bob, { cmd: 'count' })).toBe(1);
    expect((await commandJson<Array<{ data: string }>>(core, bob, { cmd: 'download' })).map((i) => i.data)).toEqual(['y']);
    core.clock.advanceSec(50);
    expect(await commandJson(core, bob, { cmd: 'count' })).toBe(0);
    expect(await commandJson(core, bob, { cmd: 'download' })).toEqual([]);
  });

  it('a handshake can be proven until its expiry and not at it (46)', async () => {
    const prove = async (lifetimeMs: number, waitMs: number): Promise<number> => {
      const { handshake } = await mint(core, { expiresAtMs: core.clock.nowMs() + lifetimeMs });
      core.clock.ms += waitMs;
      const now = core.clock.nowSec();
      const body = proveBody({ handshake, identity: C.keyPair(), aSess: C.keyPair(), outerNonce: nonceAt(now), innerNonce: nonceAt(now) });
      return (await core.post('/prove', body)).status;
    };
    expect(await prove(10_000, 9_999)).toBe(200);
    expect(await prove(10_000, 10_000)).toBe(401);
  });
});
