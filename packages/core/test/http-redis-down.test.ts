/**
 * Redis unreachable or stalled → 503 busy with Retry-After, never 500 (item 18), and recovery on
 * its own when Redis is back. Uses a private redis-server that the test freezes, stops and restarts.
 * Promptness is a sequence, not a stopwatch: the 503 arrives while Redis is still frozen (so only
 * the command timeout can have produced it) and before the caller's own timeout; the measured
 * latency is printed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INTERNAL_SECRET_HEADER, TEXT_BUSY, b64, randomBytes } from '@zax/protocol';
import { connectRedis, type CoreRedis } from '../src/redis.js';
import { startRedisServer, type RedisServer } from '../../../test/support/redis-server.js';
import { until } from '../../../test/support/until.js';
import { SECRET, command, commandBody, establishSession, mint, startCore, type Core, type HttpReply } from './helpers.js';

/** The core's Redis command timeout in this suite. */
const COMMAND_TIMEOUT_MS = 300;
/**
 * How long the core's caller waits before it gives up on its own: the gatekeeper's default
 * CORE_TIMEOUT_MS. A stalled Redis must be answered as busy by the core before that.
 */
const CALLER_TIMEOUT_MS = 3000;

let server: RedisServer;
let redis: CoreRedis;
let core: Core;
/** The support server's stop() must not run twice (it would wait for a second exit). */
let running = true;

beforeAll(async () => {
  server = await startRedisServer();
  redis = await connectRedis(server.url, { commandTimeoutMs: COMMAND_TIMEOUT_MS, maxReconnectDelayMs: 100 });
  core = await startCore({ redis, redisUrl: server.url, env: { REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS), BUSY_RETRY_AFTER_SEC: '7' } });
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

/** POST as the gatekeeper would, giving up after CALLER_TIMEOUT_MS like it does. */
async function postAsCaller(path: string, body: string): Promise<HttpReply> {
  let res: Response;
  try {
    res = await fetch(core.url + path, { method: 'POST', headers: { [INTERNAL_SECRET_HEADER]: SECRET }, body, signal: AbortSignal.timeout(CALLER_TIMEOUT_MS) });
  } catch (e) {
    throw new Error(`no answer before the caller's own timeout (${CALLER_TIMEOUT_MS} ms): ${e instanceof Error ? e.message : String(e)}`);
  }
  return { status: res.status, headers: res.headers, body: await res.text() };
}

describe('Redis unavailable', () => {
  it('stalled Redis (commands time out) → 503 while it is still stalled, before the caller gives up', async () => {
    const s = await establishSession(core);
    server.freeze(); // no answer to anything until thaw()
    let reply: HttpReply;
    let ms: number;
    try {
      const started = performance.now();
      reply = await postAsCaller('/command', commandBody(s, { cmd: 'count' }));
      ms = performance.now() - started;
    } finally {
      server.thaw();
    }
    expectBusy(reply);
    console.log(`stalled Redis: 503 after ${ms.toFixed(0)} ms (REDIS_COMMAND_TIMEOUT_MS ${COMMAND_TIMEOUT_MS}, caller timeout ${CALLER_TIMEOUT_MS} ms)`);
    await until('count answers 200 again', async () => (await command(core, s, { cmd: 'count' })).status === 200, 10_000);
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
    await until('the core ready again', async () => (await core.request('GET', '/readyz')).status === 200, 10_000);
    // The restarted Redis is empty (memory only): the old session is gone, a new one works.
    expect((await command(core, s, { cmd: 'count' })).status).toBe(401);
    const fresh = await establishSession(core);
    expect((await command(core, fresh, { cmd: 'count' })).status).toBe(200);
  });
});
