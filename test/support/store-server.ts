/**
 * A private store for a test run or a fault test, in the topology the run asks for with
 * ZAX_TEST_TOPOLOGY: `single` (default: one memory-only redis-server), `cluster` (3 primaries + 3
 * replicas) or `sentinel` (1 primary, 2 replicas, 3 sentinels), all on free loopback ports.
 * `spec` is what the suites receive as `redisUrl` (test/support/store.ts).
 */
import { startRedisServer } from './redis-server.js';
import { startRedisCluster, startSentinelGroup } from './redis-topology.js';
import { clusterSpec, sentinelSpec } from './store.js';

export type TestTopology = 'single' | 'cluster' | 'sentinel';

/** The topology asked for by ZAX_TEST_TOPOLOGY (unset or empty: single). */
export function testTopology(): TestTopology {
  const t = process.env.ZAX_TEST_TOPOLOGY ?? '';
  if (t === '' || t === 'single') return 'single';
  if (t === 'cluster' || t === 'sentinel') return t;
  throw new Error(`ZAX_TEST_TOPOLOGY: "${t}" is not single, cluster or sentinel`);
}

export interface StoreServer {
  readonly topology: TestTopology;
  /** A redis:// URL or a store spec. */
  readonly spec: string;
  /** Every data node down (SIGKILL); sentinels stay up. */
  stop(): Promise<void>;
  /** Every data node back on its port (empty: nothing is kept on disk), the store healthy again. */
  restart(): Promise<void>;
  /** Stops everything for good. */
  close(): Promise<void>;
}

export async function startStoreServer(topology: TestTopology = testTopology()): Promise<StoreServer> {
  switch (topology) {
    case 'single': {
      const s = await startRedisServer();
      return { topology, spec: s.url, stop: () => s.stop(), restart: () => s.restart(), close: () => s.stop() };
    }
    case 'cluster': {
      const c = await startRedisCluster();
      return {
        topology,
        spec: clusterSpec(c.seeds),
        stop: async () => {
          await Promise.all(c.ports.map((p) => c.kill(p)));
        },
        restart: async () => {
          await Promise.all(c.ports.map((p) => c.restart(p)));
          await c.waitHealthy(30_000);
        },
        close: () => c.stop(),
      };
    }
    case 'sentinel': {
      const g = await startSentinelGroup();
      return {
        topology,
        spec: sentinelSpec(g.name, g.sentinels),
        stop: async () => {
          await Promise.all(g.dataPorts.map((p) => g.kill(p)));
        },
        restart: async () => {
          // The primary first, so the others come back as its replicas.
          const primary = await g.primaryPort();
          await g.restart(primary);
          await Promise.all(g.dataPorts.filter((p) => p !== primary).map((p) => g.restart(p)));
          await g.waitHealthy(30_000);
        },
        close: () => g.stop(),
      };
    }
  }
}
