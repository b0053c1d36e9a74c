/**
 * Start-up refuses a store it could never serve from, with a readable line: two topologies at once,
 * a cluster or sentinel seed list of which no node answers, and REDIS_WAIT_REPLICAS above the
 * replicas a primary has.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CORE_MAIN, GATEKEEPER_MAIN, ServiceProcess } from '../support/relay.js';
import { freePort, startRedisServer, type RedisServer } from '../support/redis-server.js';
import { freshPrefix } from '../support/prefix.js';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis?.stop();
});

/** Starts a service that must exit before it is ready; resolves with what it printed. */
async function refusedStart(main: string, env: Record<string, string>): Promise<string> {
  const port = await freePort();
  const p = new ServiceProcess('svc', main, {
    REDIS_PREFIX: freshPrefix('startup'),
    INTERNAL_SECRET: randomBytes(24).toString('hex'),
    CORE_PORT: String(port),
    CORE_HOST: '127.0.0.1',
    PORT: String(port),
    HOST: '127.0.0.1',
    CORE_URL: 'http://127.0.0.1:1',
    REDIS_STARTUP_WAIT_SEC: '2',
    ...env,
  }, port);
  const err = await p.start().then(
    () => null,
    (e: unknown) => e as Error,
  );
  await p.stop('SIGKILL');
  expect(err, 'the service must not become ready').not.toBeNull();
  expect(err!.message).toMatch(/process exited with 1 before ready/);
  return err!.message;
}

describe('store start-up checks', () => {
  it('two topologies at once: a configuration error naming both variables', async () => {
    const out = await refusedStart(CORE_MAIN, { REDIS_URL: redis.url, REDIS_CLUSTER_NODES: '127.0.0.1:7000' });
    expect(out).toContain('REDIS_URL, REDIS_CLUSTER_NODES: set only one of them');
  });

  it('a cluster seed list of which no node answers stops the core and the gatekeeper', async () => {
    const seeds = `127.0.0.1:${await freePort()},127.0.0.1:${await freePort()}`;
    const [core, gatekeeper] = await Promise.all([refusedStart(CORE_MAIN, { REDIS_CLUSTER_NODES: seeds }), refusedStart(GATEKEEPER_MAIN, { REDIS_CLUSTER_NODES: seeds })]);
    expect(core).toMatch(/cannot reach the core store within 2 s \(REDIS_STARTUP_WAIT_SEC\): check the seed list/);
    expect(gatekeeper).toMatch(/cannot reach the edge store within 2 s \(REDIS_STARTUP_WAIT_SEC\): check the seed list/);
  }, 60_000);

  it('a sentinel list of which none answers stops the core', async () => {
    const out = await refusedStart(CORE_MAIN, { REDIS_SENTINELS: `127.0.0.1:${await freePort()}`, REDIS_SENTINEL_NAME: 'core' });
    expect(out).toMatch(/cannot reach the core store/);
  }, 60_000);

  it('REDIS_WAIT_REPLICAS above the replicas the primary has: every write would fail, so the core stops', async () => {
    const out = await refusedStart(CORE_MAIN, { REDIS_URL: redis.url, REDIS_WAIT_REPLICAS: '1' });
    expect(out).toMatch(/REDIS_WAIT_REPLICAS=1, but 127\.0\.0\.1:\d+ has 0 replicas/);
  });
});
