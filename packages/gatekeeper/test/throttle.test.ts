/**
 * Per-client throttling (docs/PROTOCOL.md §7, §6.3, §8.17): lua/throttle.lua on real Redis with the clock
 * passed in, then the HTTP behaviour: 429 + Retry-After on each budget, before the body is read,
 * never on health routes, and MAX_IN_FLIGHT_REQUESTS → 503.
 */
import http from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { TEXT_BUSY, TEXT_TOO_LARGE, TEXT_TOO_MANY, b64 } from '@zax/protocol';
import { dropPrefix, freshPrefix } from '../../../test/support/prefix.js';
import { expectTtlGiven, timedWrite } from '../../../test/support/ttl.js';
import { edgeKeys } from '../src/keys.js';
import { connectRedis, redisReady, type EdgeRedis } from '../src/redis.js';
import { createThrottle, type Throttle } from '../src/throttle.js';
import { closeServer, listen, post, request, startFakeCore, startGatekeeper, type FakeCore, type Gatekeeper, type Reply } from './helpers.js';

const T0 = 1_700_000_000_000;

describe('lua/throttle.lua (token bucket, injected clock)', () => {
  let redis: EdgeRedis;
  let prefix: string;
  let throttle: Throttle;
  beforeEach(async () => {
    prefix = freshPrefix('gk-tb');
    redis = connectRedis(inject('redisUrl'), { commandTimeoutMs: 1000 });
    await redisReady(redis);
    throttle = createThrottle(redis, edgeKeys(prefix), {
      handshake: { burst: 3, ratePerMin: 6 }, // one token per 10 s
      request: { burst: 0, ratePerMin: 1 },
    });
  });
  afterEach(async () => {
    await dropPrefix(inject('redisUrl'), prefix);
    redis.disconnect();
  });

  it('grants a full burst, then refuses with the seconds until the next token', async () => {
    for (let i = 0; i < 3; i++) expect(await throttle.take('handshake', '198.51.100.1', T0)).toBe(0);
    expect(await throttle.take('handshake', '198.51.100.1', T0)).toBe(10);
    expect(await throttle.take('handshake', '198.51.100.1', T0 + 4_000)).toBe(6);
    expect(await throttle.take('handshake', '198.51.100.1', T0 + 9_001)).toBe(1);
    expect(await throttle.take('handshake', '198.51.100.1', T0 + 10_000)).toBe(0);
    expect(await throttle.take('handshake', '198.51.100.1', T0 + 10_000)).toBe(10);
  });

  it('refills continuously up to the burst, never beyond', async () => {
    for (let i = 0; i < 3; i++) await throttle.take('handshake', 'c', T0);
    // 15 s → 1.5 tokens: one granted, the half token stays
    expect(await throttle.take('handshake', 'c', T0 + 15_000)).toBe(0);
    expect(await throttle.take('handshake', 'c', T0 + 15_000)).toBe(5);
    // an hour later the bucket holds exactly `burst` tokens
    for (let i = 0; i < 3; i++) expect(await throttle.take('handshake', 'c', T0 + 3_600_000)).toBe(0);
    expect(await throttle.take('handshake', 'c', T0 + 3_600_000)).toBeGreaterThan(0);
  });

  it('keeps clients apart, and a refused request takes nothing', async () => {
    for (let i = 0; i < 3; i++) await throttle.take('handshake', 'a', T0);
    for (let i = 0; i < 5; i++) expect(await throttle.take('handshake', 'a', T0)).toBe(10);
    expect(await throttle.take('handshake', 'b', T0)).toBe(0);
    expect(await throttle.take('handshake', 'a', T0 + 10_000)).toBe(0);
  });

  it('never runs time backwards for a bucket (replica clocks disagree a little)', async () => {
    for (let i = 0; i < 3; i++) await throttle.take('handshake', 'c', T0 + 5_000);
    expect(await throttle.take('handshake', 'c', T0)).toBe(10);
    expect(await throttle.take('handshake', 'c', T0 + 15_000)).toBe(0);
  });

  it('stores one hash with a TTL of a full refill plus a margin', async () => {
    const w = await timedWrite(redis, () => throttle.take('handshake', '198.51.100.1', T0));
    const key = edgeKeys(prefix).bucket('handshake', '198.51.100.1');
    expect(await redis.hgetall(key)).toEqual({ t: '2', ts: String(T0) });
    await expectTtlGiven(redis, key, w, 31_000);
  });

  it('a budget with burst 0 is unlimited and never touches Redis', async () => {
    expect(throttle.limited('request')).toBe(false);
    redis.disconnect();
    expect(await throttle.take('request', 'c', T0)).toBe(0);
  });

  it('turns a Redis failure into busy (fail closed)', async () => {
    redis.disconnect();
    await expect(throttle.take('handshake', 'c', T0)).rejects.toMatchObject({ code: 'busy' });
  });
});

function expectThrottled(r: Reply, retryAfter?: number): void {
  expect(r.status).toBe(429);
  expect(r.body).toBe('');
  expect(r.headers['x-error-details']).toBe(TEXT_TOO_MANY);
  expect(r.headers['access-control-allow-origin']).toBe('*');
  const ra = Number(r.headers['retry-after']);
  expect(Number.isInteger(ra) && ra >= 1).toBe(true);
  if (retryAfter !== undefined) expect(ra).toBe(retryAfter);
}

const token = (i: number): string => b64(Buffer.alloc(32, i));

describe('HTTP', () => {
  let core: FakeCore;
  const open: Gatekeeper[] = [];
  const gatekeeper = async (env: Record<string, string>, prefix?: string): Promise<Gatekeeper> => {
    const gk = await startGatekeeper({ coreUrl: core.url, env, ...(prefix ? { prefix } : {}) });
    open.push(gk);
    return gk;
  };
  beforeEach(async () => {
    core = await startFakeCore();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((g) => g.close()));
    await core.close();
  });

  it('§8.17: burst 2, rate 1/min → the third /start_session is 429 with Retry-After ≥ 1', async () => {
    const gk = await gatekeeper({ HANDSHAKE_BURST_PER_IP: '2', HANDSHAKE_RATE_PER_IP_PER_MIN: '1' });
    expect((await post(gk.port, '/start_session', token(1))).status).toBe(200);
    expect((await post(gk.port, '/start_session', token(2))).status).toBe(200);
    expectThrottled(await post(gk.port, '/start_session', token(3)), 60);
    gk.clock.ms += 30_000;
    expectThrottled(await post(gk.port, '/start_session', token(3)), 30);
    gk.clock.ms += 30_000;
    expect((await post(gk.port, '/start_session', token(3))).status).toBe(200);
  });

  it('the handshake budget covers /start_session and /verify_session together, and never reaches the core', async () => {
    const gk = await gatekeeper({ HANDSHAKE_BURST_PER_IP: '2', HANDSHAKE_RATE_PER_IP_PER_MIN: '6' });
    expect((await post(gk.port, '/start_session', token(1))).status).toBe(200);
    expect((await post(gk.port, '/verify_session', `${token(1)}\r\n${token(2)}`)).status).toBe(401);
    expectThrottled(await post(gk.port, '/verify_session', `${token(1)}\r\n${token(2)}`), 10);
    expectThrottled(await post(gk.port, '/start_session', token(1)), 10);
    expect(core.mints).toHaveLength(0);
    // the request budget is separate
    expect((await post(gk.port, '/command', 'x')).status).toBe(200);
  });

  it('the request budget covers /prove and /command; throttled requests never reach the core', async () => {
    const gk = await gatekeeper({ REQUEST_BURST_PER_IP: '3', REQUEST_RATE_PER_IP_PER_MIN: '2' });
    expect((await post(gk.port, '/prove', 'a')).status).toBe(200);
    expect((await post(gk.port, '/command', 'b')).status).toBe(200);
    expect((await post(gk.port, '/command', 'c')).status).toBe(200);
    expectThrottled(await post(gk.port, '/prove', 'd'), 30);
    expectThrottled(await post(gk.port, '/command', 'e'), 30);
    expect(core.forwarded.map((f) => f.body.toString())).toEqual(['a', 'b', 'c']);
    // the handshake budget is separate
    expect((await post(gk.port, '/start_session', token(9))).status).toBe(200);
  });

  it('0 = unlimited', async () => {
    const gk = await gatekeeper({ HANDSHAKE_BURST_PER_IP: '0', REQUEST_BURST_PER_IP: '0' });
    for (let i = 0; i < 30; i++) expect((await post(gk.port, '/start_session', token(i))).status).toBe(200);
    expect(await gk.redis.keys(`${gk.prefix}tb:*`)).toEqual([]);
  });

  it('strict mode (the paper: one handshake per 10 s) is burst 1, rate 6/min', async () => {
    const gk = await gatekeeper({ HANDSHAKE_BURST_PER_IP: '1', HANDSHAKE_RATE_PER_IP_PER_MIN: '6' });
    expect((await post(gk.port, '/start_session', token(1))).status).toBe(200);
    expectThrottled(await post(gk.port, '/start_session', token(2)), 10);
    gk.clock.ms += 10_000;
    expect((await post(gk.port, '/start_session', token(2))).status).toBe(200);
  });

  it('two replicas sharing the edge Redis share one budget', async () => {
    const a = await gatekeeper({ HANDSHAKE_BURST_PER_IP: '3', HANDSHAKE_RATE_PER_IP_PER_MIN: '1' });
    const b = await gatekeeper({ HANDSHAKE_BURST_PER_IP: '3', HANDSHAKE_RATE_PER_IP_PER_MIN: '1' }, a.prefix);
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await post(i % 2 === 0 ? a.port : b.port, '/start_session', token(i))).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429, 429]);
  });

  it('§6.3: routing first (404, 405, 204 are never throttled), then 429 before 413', async () => {
    const gk = await gatekeeper({ HANDSHAKE_BURST_PER_IP: '1', HANDSHAKE_RATE_PER_IP_PER_MIN: '1' });
    // 413 while the budget lasts (this uses the one token)
    const big = 'A'.repeat(5000);
    expect((await post(gk.port, '/start_session', big)).status).toBe(413);
    // now throttled: an oversized body gets 429, not 413, by Content-Length and chunked
    expectThrottled(await post(gk.port, '/start_session', big));
    expectThrottled(await request(gk.port, { path: '/verify_session', body: big, chunkBytes: 1000 }));
    expect((await request(gk.port, { method: 'GET', path: '/start_session' })).status).toBe(405);
    expect((await request(gk.port, { method: 'OPTIONS', path: '/start_session' })).status).toBe(204);
    expect((await post(gk.port, '/nope', big)).status).toBe(404);
  });

  it('an oversized body on an unthrottled budget is still 413 (checked after the throttle)', async () => {
    const gk = await gatekeeper({ HANDSHAKE_BURST_PER_IP: '5' });
    const r = await post(gk.port, '/prove', 'A'.repeat(5000));
    expect(r.status).toBe(413);
    expect(r.headers['x-error-details']).toBe(TEXT_TOO_LARGE);
  });

  it('health routes are never throttled (nor /metrics on the admin handler)', async () => {
    const gk = await gatekeeper({ HANDSHAKE_BURST_PER_IP: '1', REQUEST_BURST_PER_IP: '1', HANDSHAKE_RATE_PER_IP_PER_MIN: '1', REQUEST_RATE_PER_IP_PER_MIN: '1' });
    await post(gk.port, '/start_session', token(1));
    await post(gk.port, '/command', 'x');
    expectThrottled(await post(gk.port, '/start_session', token(1)));
    expectThrottled(await post(gk.port, '/command', 'x'));
    for (let i = 0; i < 20; i++) {
      for (const path of ['/livez', '/readyz']) expect((await request(gk.port, { method: 'GET', path })).status).toBe(200);
    }
    const admin = await listen(gk.app.adminHandler);
    try {
      for (let i = 0; i < 20; i++) expect((await request(admin.port, { method: 'GET', path: '/metrics' })).status).toBe(200);
    } finally {
      await closeServer(admin.server);
    }
  });

  it('believes X-Forwarded-For only from a trusted proxy', async () => {
    const env = { HANDSHAKE_BURST_PER_IP: '1', HANDSHAKE_RATE_PER_IP_PER_MIN: '1' };
    const trusting = await gatekeeper({ ...env, TRUSTED_PROXIES: '127.0.0.0/8,::1' });
    // behind the (trusted) loopback proxy, two clients have a budget each
    expect((await request(trusting.port, { path: '/start_session', body: token(1), headers: { 'x-forwarded-for': '198.51.100.1' } })).status).toBe(200);
    expect((await request(trusting.port, { path: '/start_session', body: token(2), headers: { 'x-forwarded-for': '198.51.100.2' } })).status).toBe(200);
    expectThrottled(await request(trusting.port, { path: '/start_session', body: token(3), headers: { 'x-forwarded-for': '198.51.100.1' } }));
    // a client that writes its own XFF entry (left of the real one) does not escape
    expectThrottled(
      await request(trusting.port, { path: '/start_session', body: token(4), headers: { 'x-forwarded-for': '203.0.113.77, 198.51.100.1' } }),
    );
    const distrusting = await gatekeeper({ ...env, TRUSTED_PROXIES: '10.0.0.0/8' });
    // from an untrusted peer the header is ignored: every "client" is the socket address
    expect((await request(distrusting.port, { path: '/start_session', body: token(1), headers: { 'x-forwarded-for': '198.51.100.1' } })).status).toBe(200);
    expectThrottled(await request(distrusting.port, { path: '/start_session', body: token(2), headers: { 'x-forwarded-for': '198.51.100.2' } }));
    expect(await distrusting.redis.keys(`${distrusting.prefix}tb:*`)).toEqual([`${distrusting.prefix}tb:h:127.0.0.1`]);
  });

  it('MAX_IN_FLIGHT_REQUESTS: one more concurrent request gets 503 busy with Retry-After; health is not counted', async () => {
    const gk = await gatekeeper({ MAX_IN_FLIGHT_REQUESTS: '2' });
    const held: http.ServerResponse[] = [];
    const bothHeld = new Promise<void>((resolve) => {
      core.onForward = (_p, _b, res) => {
        if (held.push(res) === 2) resolve();
      };
    });
    const slow = [post(gk.port, '/command', 'a'), post(gk.port, '/command', 'b')];
    await bothHeld;
    const r = await post(gk.port, '/start_session', token(1));
    expect(r.status).toBe(503);
    expect(r.headers['x-error-details']).toBe(TEXT_BUSY);
    expect(r.headers['retry-after']).toBe('7');
    expect((await request(gk.port, { method: 'GET', path: '/livez' })).status).toBe(200);
    for (const res of held) res.writeHead(200).end('0');
    expect((await Promise.all(slow)).map((x) => x.status)).toEqual([200, 200]);
    expect((await post(gk.port, '/start_session', token(1))).status).toBe(200);
  });
});
