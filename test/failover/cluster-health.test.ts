/**
 * On a Redis Cluster: the maintenance jobs run (BullMQ on the braced `{jobs}` prefix), and readiness
 * follows the cluster: a slot range with no primary left (a primary and its replica both gone)
 * makes both services' /readyz 503 while requests get 503 + Retry-After; once the nodes are back,
 * everything is ready again by itself.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createKeys } from '@zax/core';
import { Relay } from '../support/relay.js';
import * as raw from '../support/raw.js';
import { startRedisCluster, type RedisClusterHandle } from '../support/redis-topology.js';
import { clusterSpec } from '../support/store.js';
import { until } from '../support/until.js';

let cluster: RedisClusterHandle;
let relay: Relay;

beforeAll(async () => {
  cluster = await startRedisCluster();
  relay = await Relay.start({ redisUrl: clusterSpec(cluster.seeds), env: { FILE_SWEEP_INTERVAL_SEC: '1', LOAD_PERIOD_SEC: '1', BUSY_RETRY_AFTER_SEC: '2' } });
});
afterAll(async () => {
  await relay?.stop();
  await cluster?.stop();
});

const coreUrl = (): string => relay.core.env.CORE_URL!;
const status = async (url: string): Promise<number> => (await fetch(url).catch(() => ({ status: 0 }))).status;

it('runs the maintenance jobs on the cluster', async () => {
  await until(
    'both jobs completed at least once',
    async () => {
      const text = await (await fetch(`${coreUrl()}/metrics`)).text();
      return ['file-sweep', 'load-aggregate'].every((job) => new RegExp(`zax_core_jobs_total\\{job="${job}",outcome="completed"\\} [1-9]`).test(text));
    },
    20_000,
  );
});

it('is not ready while slots have no primary, and recovers by itself', async () => {
  const s = await raw.connect(relay.url);
  // The pair that serves this session's mailbox.
  const primary = await cluster.primaryPortOfKey(createKeys(relay.prefix).mailbox(s.id.hpk).msgs);
  const replica = (await cluster.nodes()).find((n) => n.primaryPort === primary)!.port;
  await Promise.all([cluster.kill(replica), cluster.kill(primary)]);
  // The other nodes mark the pair failed after the node timeout: cluster_state:fail.
  await until('core /readyz is 503', async () => (await status(`${coreUrl()}/readyz`)) === 503, 20_000);
  await until('gatekeeper /readyz is 503', async () => (await status(`${relay.url}/readyz`)) === 503, 20_000);
  const busy = await raw.command(s, { cmd: 'count' });
  expect(busy.status).toBe(503);
  expect(busy.headers.get('retry-after')).toBe('2');
  await cluster.restart(primary);
  await cluster.restart(replica);
  await cluster.waitHealthy(30_000);
  await until('core /readyz is 200', async () => (await status(`${coreUrl()}/readyz`)) === 200, 20_000);
  await until('gatekeeper /readyz is 200', async () => (await status(`${relay.url}/readyz`)) === 200, 20_000);
  // Memory-only: the restarted pair came back empty; a new session works.
  const again = await raw.connect(relay.url);
  expect((await raw.command(again, { cmd: 'count' })).status).toBe(200);
}, 90_000);
