/** Edge Redis outage: prompt 503 with Retry-After (never a hang, 401 or 500), and recovery by itself. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEXT_BUSY, b64, h2 } from '@zax/protocol';
import { startRedisServer, type RedisServer } from '../../../test/support/redis-server.js';
import { post, request, startFakeCore, startGatekeeper, type FakeCore, type Gatekeeper, type Reply } from './helpers.js';

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

async function until(pred: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('edge Redis down', () => {
  it('answers 503 on every API endpoint (the throttle fails closed) and /readyz, quickly, while /livez keeps working', async () => {
    expect((await post(gk.port, '/start_session', b64(CT))).status).toBe(200);
    await redisServer.stop();
    await until(async () => gk.redis.status !== 'ready', 5000);

    const started = Date.now();
    expectBusy(await post(gk.port, '/start_session', b64(CT)));
    expectBusy(await post(gk.port, '/verify_session', `${ID}\r\n${b64(h2(CT, CT))}`));
    expect(Date.now() - started).toBeLessThan(2000);
    expectBusy(await request(gk.port, { method: 'GET', path: '/readyz' }));
    expect((await request(gk.port, { method: 'GET', path: '/livez' })).status).toBe(200);
    expectBusy(await post(gk.port, '/command', 'x'));
    expectBusy(await post(gk.port, '/prove', 'x'));
    // throttling (§6.3 step 2) comes before parsing: with the budget on, nothing can be checked
    expectBusy(await post(gk.port, '/start_session', 'short'));
  });

  it('without a request budget, forwarding needs no edge Redis and keeps working', async () => {
    await until(async () => gkNoBudget.redis.status !== 'ready', 5000);
    expect((await post(gkNoBudget.port, '/command', 'x')).status).toBe(200);
  });

  it('recovers by itself once Redis is back (scripts are loaded again)', async () => {
    await redisServer.restart();
    await until(async () => (await request(gk.port, { method: 'GET', path: '/readyz' })).status === 200, 10_000);
    await until(async () => (await request(gkNoBudget.port, { method: 'GET', path: '/readyz' })).status === 200, 10_000);
    const r = await post(gk.port, '/start_session', b64(CT));
    expect(r.status).toBe(200);
    const rt = Buffer.from(r.body.split('\r\n')[0]!, 'base64');
    const v = await post(gk.port, '/verify_session', `${ID}\r\n${b64(h2(CT, rt))}`);
    expect(v.status).toBe(200);
  });
});
