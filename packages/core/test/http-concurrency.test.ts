/** Concurrency over HTTP: replayed bodies race (item 31), one session in parallel (item 65). */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TEXT_G } from '@zax/protocol';
import { commandBody, commandJson, establishSession, openResponse, startCore, type Core } from './helpers.js';

let core: Core;
beforeEach(async () => {
  core = await startCore();
});
afterEach(async () => {
  await core.close();
});

describe('concurrency', () => {
  it('of 20 concurrent identical /command bodies exactly one succeeds (item 31)', async () => {
    const s = await establishSession(core);
    const body = commandBody(s, { cmd: 'count' });
    const replies = await Promise.all(Array.from({ length: 20 }, () => core.post('/command', body)));
    const ok = replies.filter((r) => r.status === 200);
    expect(ok).toHaveLength(1);
    expect(openResponse(s, ok[0]!.body)).toBe('0');
    for (const r of replies.filter((x) => x.status !== 200)) {
      expect(r.status).toBe(400);
      expect(r.headers.get('x-error-details')).toBe(TEXT_G);
    }
  });

  it('of 10 concurrent identical uploads exactly one stores a message', async () => {
    const s = await establishSession(core);
    const body = commandBody(s, { cmd: 'upload', to: s.hpk, payload: 'once' });
    const replies = await Promise.all(Array.from({ length: 10 }, () => core.post('/command', body)));
    expect(replies.filter((r) => r.status === 200)).toHaveLength(1);
    expect(await commandJson(core, s, { cmd: 'count' })).toBe(1);
  });

  it('concurrent commands under one session all succeed (item 65)', async () => {
    const s = await establishSession(core);
    const bodies = [
      commandBody(s, { cmd: 'count' }),
      commandBody(s, { cmd: 'upload', to: s.hpk, payload: 'a' }),
      commandBody(s, { cmd: 'upload', to: s.hpk, payload: 'b' }),
      commandBody(s, { cmd: 'download' }),
      commandBody(s, { cmd: 'getEntropy', size: 32 }),
    ];
    const replies = await Promise.all(bodies.map((b) => core.post('/command', b)));
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(await commandJson(core, s, { cmd: 'count' })).toBe(2);
  });

  it('concurrent uploads to a mailbox at its quota never overshoot it', async () => {
    await core.close();
    core = await startCore({ env: { MAILBOX_QUOTA: '5' } });
    const s = await establishSession(core);
    const replies = await Promise.all(
      Array.from({ length: 12 }, (_, i) => core.post('/command', commandBody(s, { cmd: 'upload', to: s.hpk, payload: `m${i}` }))),
    );
    expect(replies.filter((r) => r.status === 200)).toHaveLength(5);
    expect(replies.filter((r) => r.status === 429)).toHaveLength(7);
    expect(await commandJson(core, s, { cmd: 'count' })).toBe(5);
  });
});
