/**
 * A request refused for want of authentication leaves nothing in Redis: no nonce record, no
 * consumed handshake, nothing. (Before, a `/command` with a random hpk and a fresh nonce was refused
 * 401 but left a replay record for nonceCacheSec, and enough of them filled the store.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { b64, randomBytes, tweetnaclCrypto as C } from '@zax/protocol';
import { commandBody, establishSession, keySnapshot, mint, nonceAt, proveBody, startCore, type Core, type Handshake, type ProveParts, type Session } from './helpers.js';

let core: Core;
let s: Session;
let handshake: Handshake;
beforeAll(async () => {
  core = await startCore();
  s = await establishSession(core);
  ({ handshake } = await mint(core, { expiresAtMs: core.clock.nowMs() + 3_600_000 }));
});
afterAll(async () => {
  await core?.close();
});

const now = () => core.clock.nowSec();

describe('refused requests leave no key', () => {
  it('/command: no session, a box that does not open, a replay, a stale nonce, bad base64', async () => {
    const used = nonceAt(now());
    expect((await core.post('/command', commandBody(s, { cmd: 'count' }, { nonce: used }))).status).toBe(200);
    const before = await keySnapshot(core);
    const refused: Array<[string, () => string, number]> = [
      ['no session (a random hpk)', () => commandBody({ hpk: b64(randomBytes(32)), sharedKey: s.sharedKey }, { cmd: 'count' }, { nonce: nonceAt(now()) }), 401],
      ['a box that does not open under the live session', () => commandBody({ hpk: s.hpk, sharedKey: randomBytes(32) }, { cmd: 'count' }, { nonce: nonceAt(now()) }), 401],
      ['a replayed nonce', () => commandBody(s, { cmd: 'count' }, { nonce: used }), 400],
      ['a stale nonce', () => commandBody(s, { cmd: 'count' }, { nonce: nonceAt(now() - 3600) }), 400],
      ['a box line that is not base64', () => [s.hpk, b64(nonceAt(now())), '!!!!'].join('\r\n'), 400],
    ];
    for (const [what, body, status] of refused) {
      for (let i = 0; i < 20; i++) expect((await core.post('/command', body())).status, what).toBe(status);
    }
    expect(await keySnapshot(core)).toEqual(before);
  });

  it('/prove: no live handshake, inner nonce = outer nonce, a wrong signature, outer or inner box that does not open', async () => {
    const before = await keySnapshot(core);
    const prove = (opts: Partial<ProveParts>) =>
      core.post('/prove', proveBody({ handshake, identity: C.keyPair(), aSess: C.keyPair(), outerNonce: nonceAt(now()), innerNonce: nonceAt(now()), ...opts }));
    const unknown = { ...handshake, handshakeId: b64(randomBytes(32)) };
    expect((await prove({ handshake: unknown })).status).toBe(401);
    const n = nonceAt(now());
    expect((await prove({ outerNonce: n, innerNonce: n })).status).toBe(400);
    expect((await prove({ sign: new Uint8Array(32) })).status).toBe(401);
    expect((await prove({ outerKey: randomBytes(32) })).status).toBe(400);
    expect((await prove({ innerKey: randomBytes(32) })).status).toBe(400);
    expect(await keySnapshot(core)).toEqual(before);
    // The handshake is still there: a real proof succeeds, and its nonces are kept.
    expect((await prove({})).status).toBe(200);
  });
});
