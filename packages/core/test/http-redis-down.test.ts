/**
 * Redis unreachable or stalled → 503 busy with Retry-After, never 500 (item 18), and recovery on
 * its own when Redis is back. Uses a private redis-server that the test stops and restarts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { TEXT_BUSY, b64, randomBytes } from '@zax/protocol';
import { connectRedis, type CoreRedis } from '../src/redis.js';
import { startRedisServer, type RedisServer } from '../../../test/support/redis-server.js';
import { command, commandBody, establishSession, mint, startCore, type Core, type HttpReply } from './helpers.js';

let server: RedisServer;
let redis: CoreRedis;
let core: Core;
/** The support server's stop() must not run twice (it would wait for a second exit). */
let running = true;

beforeAll(async () => {
  server = await startRedisServer();
  redis = await connectRedis(server.url, { commandTimeoutMs: 300, maxReconnectDelayMs: 100 });
  core = await startCore({ redis, redisUrl: server.url, env: { REDIS_COMMAND_TIMEOUT_MS: '300', BUSY_RETRY_AFTER_SEC: '7' } });
});
afterAll(async () => {
  await core.close();
  redis.disconnect();
  if (running) await server.stop();
});

function expectBusy(r: HttpReply): void {
  expect(r.status).toBe(503);
  expect(r.headers.get('retry-after')).toBe('7');
  expect(r.headers.get('x-error-details')).toBe(TEXT_BUSY);
  expect(r.body).toBe('');
}

async function until(cond: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Redis unavailable', () => {
  it('stalled Redis (commands time out) → 503', async () => {
    const s = await establishSession(core);
    const admin = new Redis(server.url);
    await admin.call('CLIENT', 'PAUSE', '1500', 'ALL');
    try {
      const started = Date.now();
      expectBusy(await command(core, s, { cmd: 'count' }));
      expect(Date.now() - started).toBeLessThan(1400);
    } finally {
      await admin.call('CLIENT', 'UNPAUSE').catch(() => undefined);
      admin.disconnect();
    }
    await until(async () => (await command(core, s, { cmd: 'count' })).status === 200);
  });

  it('stopped Redis → 503 on every route but /livez; recovers by itself after a restart', async () => {
    const s = await establishSession(core);
    await server.stop();
    running = false;

    expectBusy(await command(core, s, { cmd: 'count' }));
    expectBusy(await core.post('/command', commandBody(s, { cmd: 'upload', to: s.hpk, payload: 'x' })));
    expectBusy((await mint(core)).reply);
    const proveLines = [b64(randomBytes(32)), b64(randomBytes(32)), b64(randomBytes(24)), b64(randomBytes(192))];
    expectBusy(await core.post('/prove', proveLines.join('\r\n')));
    expect((await core.request('GET', '/readyz')).status).toBe(503);
    expect((await core.request('GET', '/livez')).status).toBe(200);
    // Input errors that need no store are still answered as such.
    expect((await core.post('/command', 'x')).status).toBe(400);

    await server.restart();
    running = true;
    await until(async () => (await core.request('GET', '/readyz')).status === 200);
    // The restarted Redis is empty (memory only): the old session is gone, a new one works.
    expect((await command(core, s, { cmd: 'count' })).status).toBe(401);
    const fresh = await establishSession(core);
    expect((await command(core, fresh, { cmd: 'count' })).status).toBe(200);
  });
});
