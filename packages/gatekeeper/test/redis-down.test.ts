/**
 * Edge Redis outage: prompt 503 with Retry-After (never a hang, 401 or 500), and recovery by itself.
 * Promptness is a sequence, not a stopwatch: every 503 arrives while Redis is still frozen or
 * stopped, before the client's own timeout; the measured latencies are printed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEXT_BUSY, b64, h2 } from '@zax/protocol';
import { startRedisServer, type RedisServer } from '../../../test/support/redis-server.js';
import { until } from '../../../test/support/until.js';
import { asClient } from './as-client.js';
import { post, request, startFakeCore, startGatekeeper, type FakeCore, type Gatekeeper, type Reply } from './helpers.js';

/** The edge Redis command timeout the test gatekeepers run with (helpers.ts). */
const COMMAND_TIMEOUT_MS = 500;
/** A client that gives up on its own after this long; the gatekeeper must have answered by then. */
const CLIENT_TIMEOUT_MS = 5000;
const asClientWithin = (r: Promise<Reply>): Promise<Reply & { ms: number }> => asClient(r, CLIENT_TIMEOUT_MS);

const CT = Buffer.alloc(32, 0x21);
const ID = b64(h2(CT));

function expectBusy(r: Reply): void {
  expect(r.status).toBe(503);
  expect(r.body).toBe('');
  expect(r.headers['x-error-details']).toBe(TEXT_BUSY);
  expect(r.headers['retry-after']).toBe('7');
}

let redisServer: RedisServer;
let core: FakeCore;
let gk: Gatekeeper;
/** The same, with the request budget off: forwarding then needs no edge Redis at all. */
let gkNoBudget: Gatekeeper;
beforeAll(async () => {
  redisServer = await startRedisServer();
  core = await startFakeCore();
  gk = await startGatekeeper({ redisUrl: redisServer.url, coreUrl: core.url });
  gkNoBudget = await startGatekeeper({ redisUrl: redisServer.url, coreUrl: core.url, env: { REQUEST_BURST_PER_IP: '0' } });
});
afterAll(async () => {
  await gk.close();
  await gkNoBudget.close();
  await core.close();
  await redisServer.stop();
});

describe('edge Redis down', () => {
  it('a stalled edge Redis (commands time out) → 503 while it is still stalled', async () => {
    expect(gk.config.redisCommandTimeoutMs).toBe(COMMAND_TIMEOUT_MS);
    redisServer.freeze(); // no answer to anything until thaw()
    let r: Reply & { ms: number };
    try {
      r = await asClientWithin(post(gk.port, '/start_session', b64(CT)));
    } finally {
      redisServer.thaw();
    }
    expectBusy(r);
    console.log(`stalled edge Redis: 503 after ${r.ms.toFixed(0)} ms (REDIS_COMMAND_TIMEOUT_MS ${COMMAND_TIMEOUT_MS})`);
    await until('the gatekeeper ready', async () => (await request(gk.port, { method: 'GET', path: '/readyz' })).status === 200, 10_000);
  });

  it('answers 503 on every API endpoint (the throttle fails closed) and /readyz, at once, while /livez keeps working', async () => {
    expect((await post(gk.port, '/start_session', b64(CT))).status).toBe(200);
    await redisServer.stop();
    await until('the gatekeeper sees Redis gone', async () => gk.redis.status !== 'ready', 5000);

    const start = await asClientWithin(post(gk.port, '/start_session', b64(CT)));
    expectBusy(start);
    const verify = await asClientWithin(post(gk.port, '/verify_session', `${ID}\r\n${b64(h2(CT, CT))}`));
    expectBusy(verify);
    console.log(`stopped edge Redis: 503 after ${start.ms.toFixed(0)} ms (/start_session), ${verify.ms.toFixed(0)} ms (/verify_session)`);
    expectBusy(await asClientWithin(request(gk.port, { method: 'GET', path: '/readyz' })));
    expect((await request(gk.port, { method: 'GET', path: '/livez' })).status).toBe(200);
    expectBusy(await asClientWithin(post(gk.port, '/command', 'x')));
    expectBusy(await asClientWithin(post(gk.port, '/prove', 'x')));
    // throttling (§6.3 step 2) comes before parsing: with the budget on, nothing can be checked
    expectBusy(await asClientWithin(post(gk.port, '/start_session', 'short')));
  });

  it('without a request budget, forwarding needs no edge Redis and keeps working', async () => {
    await until('the second gatekeeper sees Redis gone', async () => gkNoBudget.redis.status !== 'ready', 5000);
    expect((await post(gkNoBudget.port, '/command', 'x')).status).toBe(200);
  });

  it('recovers by itself once Redis is back (scripts are loaded again)', async () => {
    await redisServer.restart();
    await until('the gatekeeper ready', async () => (await request(gk.port, { method: 'GET', path: '/readyz' })).status === 200, 10_000);
    await until('the second gatekeeper ready', async () => (await request(gkNoBudget.port, { method: 'GET', path: '/readyz' })).status === 200, 10_000);
    const r = await post(gk.port, '/start_session', b64(CT));
    expect(r.status).toBe(200);
    const rt = Buffer.from(r.body.split('\r\n')[0]!, 'base64');
    const v = await post(gk.port, '/verify_session', `${ID}\r\n${b64(h2(CT, rt))}`);
    expect(v.status).toBe(200);
  });
});
