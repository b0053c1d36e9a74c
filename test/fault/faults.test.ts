/**
 * Faults on real processes: the core killed between verify and prove and while commands flow, and
 * Redis stopped under the relay (§8.18). The gatekeeper answers 503 with Retry-After — never 500 —
 * and the flow completes once the dependency is back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Relay, post } from '../support/relay.js';
import { startStoreServer, type StoreServer } from '../support/store-server.js';
import { TEXT_BUSY } from '@zax/protocol';
import * as raw from '../support/raw.js';

let redis: StoreServer;
let relay: Relay;

beforeAll(async () => {
  // A store of its own (in the run's topology, ZAX_TEST_TOPOLOGY), so stopping it harms no other suite.
  redis = await startStoreServer();
  relay = await Relay.start({ redisUrl: redis.spec, env: { BUSY_RETRY_AFTER_SEC: '2', CORE_TIMEOUT_MS: '1500' } });
});
afterAll(async () => {
  await relay?.stop().catch(() => undefined);
  await redis?.close();
});

function expectBusy(r: { status: number; headers: Headers; text: string }): void {
  expect(r.status).toBe(503);
  expect(r.headers.get('retry-after')).toBe('2');
  expect(r.headers.get('x-error-details')).toBe(TEXT_BUSY);
  expect(r.text).toBe('');
}

describe('core killed', () => {
  it('between verify and prove: 503, then the same handshake proves once the core is back', async () => {
    const id = raw.newIdentity();
    const hs = await raw.verifySession(relay.url, await raw.startSession(relay.url));
    await relay.core.stop('SIGKILL');
    const { body } = raw.proveBody(hs, id);
    expectBusy(await post(`${relay.url}/prove`, body));
    // the gatekeeper stays ready: its readiness follows its own Redis only
    expect((await fetch(`${relay.url}/readyz`)).status).toBe(200);
    // handshakes that need no core still work; verify needs the core to mint → 503
    const hs2 = await raw.startSession(relay.url);
    expectBusy(await post(`${relay.url}/verify_session`, raw.verifyBody(hs2)));
    await relay.core.start();
    const again = raw.proveBody(hs, id);
    const ok = await post(`${relay.url}/prove`, again.body);
    expect(ok.status).toBe(200);
    expect((await post(`${relay.url}/verify_session`, raw.verifyBody(hs2))).status).toBe(200);
  });

  it('while commands flow: no 500, every failure is 503, and traffic recovers', async () => {
    const a = await raw.connect(relay.url);
    const statuses: number[] = [];
    // Each phase waits for what the traffic shows, not for a number of milliseconds.
    let waiting: { cond: () => boolean; resolve: () => void }[] = [];
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        const r = await raw.command(a, { cmd: 'upload', to: a.id.hpk, payload: 'x' });
        statuses.push(r.status);
        const met = waiting.filter((w) => w.cond());
        waiting = waiting.filter((w) => !met.includes(w));
        for (const w of met) w.resolve();
        if (r.status !== 200) expectBusy(r);
      }
    })();
    // A loop that fails (a status other than 200 or 503) ends the wait with its error.
    const when = (cond: () => boolean): Promise<void> =>
      cond()
        ? Promise.resolve()
        : Promise.race([new Promise<void>((resolve) => waiting.push({ cond, resolve })), loop.then(() => Promise.reject(new Error('the traffic stopped')))]);
    try {
      await when(() => statuses.filter((s) => s === 200).length >= 3); // flowing
      await relay.core.stop('SIGKILL');
      const killedAt = statuses.length;
      await when(() => statuses.slice(killedAt).includes(503)); // refused while the core is gone
      await relay.core.start();
      const backAt = statuses.length;
      await when(() => statuses.slice(backAt).includes(200)); // flowing again
    } finally {
      stop = true;
      await loop;
    }
    expect(statuses).toContain(503);
    expect(statuses.at(-1)).toBe(200);
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
    // the session lives in Redis, so it survived the core restart
    expect((await raw.command(a, { cmd: 'count' })).status).toBe(200);
  });

  it('a graceful SIGTERM exits 0', async () => {
    expect(await relay.core.stop('SIGTERM')).toBe(0);
    await relay.core.start();
  });
});

describe('Redis stopped (§8.18)', () => {
  it('every well-formed POST gets 503 with Retry-After, and the relay recovers by itself', async () => {
    const a = await raw.connect(relay.url);
    const hs = await raw.startSession(relay.url);
    await redis.stop();
    expectBusy(await post(`${relay.url}/start_session`, raw.verifyBody(hs).split('\r\n')[0]!));
    expectBusy(await post(`${relay.url}/verify_session`, raw.verifyBody(hs)));
    expectBusy(await post(`${relay.url}/prove`, raw.proveBody({ ...hs, relaySessionPk: raw.rnd(32) }, raw.newIdentity()).body));
    expectBusy(await raw.command(a, { cmd: 'count' }));
    expect((await fetch(`${relay.url}/readyz`)).status).toBe(503);
    expect((await fetch(`${relay.url}/livez`)).status).toBe(200);
    await redis.restart();
    // memory-only Redis lost everything: a fresh handshake works once both services reconnect
    // (by themselves, however long that takes: the test's own timeout is the bound)
    let s: raw.Session | null = null;
    while (s === null) {
      s = await raw.connect(relay.url).catch((e: unknown) => {
        if (!(e instanceof Error && / 503$/.test(e.message))) throw e; // only "busy" means not yet
        return null;
      });
      if (s === null) await new Promise((r) => setTimeout(r, 200));
    }
    expect((await raw.command(s, { cmd: 'count' })).plain).toBe('0');
  });
});
