/**
 * Which store the tests run on. The suites receive one string, `inject('redisUrl')`: a `redis://`
 * URL (a single private redis-server, the default), or, when the run was started with
 * ZAX_TEST_TOPOLOGY=cluster|sentinel (test/support/global-setup.ts), a test-only spec naming a
 * local Redis Cluster (`redis-cluster://h:p,h:p,…`) or Sentinel group
 * (`redis-sentinel://name@h:p,h:p,…`). The relay never sees these specs: `storeEnv` turns one into
 * the relay's own variables (REDIS_URL | REDIS_CLUSTER_NODES | REDIS_SENTINELS + _NAME), and
 * `storeTopology` into the topology the services' connection module takes.
 */
import { createRedisClient, parseHostPorts, type RedisClient, type RedisTopology } from '@zax/service';

const CLUSTER = 'redis-cluster://';
const SENTINEL = 'redis-sentinel://';

export const clusterSpec = (seeds: string): string => `${CLUSTER}${seeds}`;
export const sentinelSpec = (name: string, sentinels: string): string => `${SENTINEL}${name}@${sentinels}`;

/** The relay's environment variables for a store spec (or URL). */
export function storeEnv(spec: string): Record<string, string> {
  if (spec.startsWith(CLUSTER)) return { REDIS_CLUSTER_NODES: spec.slice(CLUSTER.length) };
  if (spec.startsWith(SENTINEL)) {
    const [name, sentinels] = spec.slice(SENTINEL.length).split('@') as [string, string];
    return { REDIS_SENTINELS: sentinels, REDIS_SENTINEL_NAME: name };
  }
  return { REDIS_URL: spec };
}

/** The topology of a store spec (or URL), for createRedis/connectRedis. */
export function storeTopology(spec: string): RedisTopology {
  const problems: string[] = [];
  const noAuth = { username: null, password: null, tls: false };
  if (spec.startsWith(CLUSTER)) return { kind: 'cluster', nodes: parseHostPorts('spec', spec.slice(CLUSTER.length), problems), ...noAuth };
  if (spec.startsWith(SENTINEL)) {
    const [name, sentinels] = spec.slice(SENTINEL.length).split('@') as [string, string];
    return { kind: 'sentinel', name, sentinels: parseHostPorts('spec', sentinels, problems), sentinelPassword: null, ...noAuth };
  }
  return { kind: 'single', url: spec };
}

/** Whether the spec names more than a single server. */
export const isTopology = (spec: string): boolean => spec.startsWith(CLUSTER) || spec.startsWith(SENTINEL);

/** A plain client (no scripts) for a spec, ready. */
export async function storeClient(spec: string): Promise<RedisClient> {
  const client = createRedisClient(storeTopology(spec), { commandTimeoutMs: 5000, connectionName: 'zax-test', blocking: true });
  await new Promise<void>((resolve, reject) => {
    if (client.status === 'ready') return resolve();
    const timer = setTimeout(() => reject(new Error(`store ${spec} not ready`)), 20_000);
    client.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return client;
}
