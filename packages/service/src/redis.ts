/// <reference path="./cluster-key-slot.d.ts" />
/**
 * The one Redis connection module of both tiers. Whatever the topology (single server, Redis
 * Cluster through ioredis' Cluster client, a Sentinel-watched primary through ioredis' sentinel
 * support), the client is set up for request paths the same way: no offline queue (a command while
 * the store is away fails at once and becomes a 503), a per-command timeout, endless reconnection
 * with a capped back-off, no silent re-send of a command that may already have run (a script is not
 * replayed on another node during a failover), and commands issued together sent together
 * (auto-pipelining). Lua scripts are registered with `defineCommand` (EVALSHA, falling back to EVAL
 * after a restart or a failover to a node that has not seen them).
 */
import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { asTopology, describeTopology, type RedisTopology } from './topology.js';

/** A connection to a store of any topology. */
export type RedisClient = Redis | Cluster;

/** A Lua script: its text and fixed key count (undefined: the caller passes the key count first). */
export interface ScriptDef {
  readonly lua: string;
  readonly keys: number | undefined;
}

/** Where connection events are reported; structured like the services' loggers. */
export interface ConnLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface ClientOptions {
  /** Per-command timeout, so an unresponsive store becomes a prompt 503. */
  commandTimeoutMs: number;
  /** Shown in CLIENT LIST. */
  connectionName: string;
  /** Scripts to register (name → definition); each also gets a `<name>Buffer` variant. */
  scripts?: Readonly<Record<string, ScriptDef>>;
  log?: ConnLog;
  /** What the log lines call this store. @default 'redis' */
  label?: string;
  /** Longest wait between reconnect attempts. @default 1000 */
  maxReconnectDelayMs?: number;
  /**
   * For BullMQ: queue commands while disconnected and retry them without limit (its blocking
   * worker connection needs that). Never for request paths.
   */
  blocking?: boolean;
}

const backoff =
  (maxMs: number) =>
  (attempt: number): number =>
    Math.min(50 * 2 ** Math.min(attempt, 10), maxMs);

/** Options every node connection gets (single server, sentinel primary, each cluster node). */
function nodeOptions(opts: ClientOptions): RedisOptions {
  const blocking = opts.blocking === true;
  return {
    connectionName: opts.connectionName,
    enableOfflineQueue: blocking,
    commandTimeout: blocking ? undefined : opts.commandTimeoutMs,
    connectTimeout: Math.max(opts.commandTimeoutMs, 1000),
    // Fail commands caught by a disconnect instead of re-sending them: a script may already have run.
    maxRetriesPerRequest: blocking ? null : 0,
    autoResendUnfulfilledCommands: blocking,
    retryStrategy: backoff(opts.maxReconnectDelayMs ?? 1000),
    // A former primary demoted to replica answers writes with READONLY: reconnect (the sentinel
    // client then asks the sentinels for the current primary); the command itself is not re-sent.
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
  };
}

/** Creates the client (connecting in the background) and registers the scripts. */
export function createRedisClient(target: RedisTopology | string, opts: ClientOptions): RedisClient {
  const t = asTopology(target);
  const base = nodeOptions(opts);
  let client: RedisClient;
  switch (t.kind) {
    case 'single':
      client = new Redis(t.url, { ...base, enableAutoPipelining: opts.blocking !== true });
      break;
    case 'sentinel':
      client = new Redis({
        ...base,
        enableAutoPipelining: opts.blocking !== true,
        sentinels: t.sentinels.map((s) => ({ host: s.host, port: s.port })),
        name: t.name,
        role: 'master',
        ...(t.username !== null ? { username: t.username } : {}),
        ...(t.password !== null ? { password: t.password } : {}),
        ...(t.sentinelPassword !== null ? { sentinelPassword: t.sentinelPassword } : {}),
        ...(t.tls ? { tls: {} } : {}),
        // Sentinels told of a new primary push +switch-master: the client moves at once.
        failoverDetector: true,
        sentinelRetryStrategy: backoff(opts.maxReconnectDelayMs ?? 1000),
        sentinelCommandTimeout: Math.max(opts.commandTimeoutMs, 500),
      });
      break;
    case 'cluster': {
      // Auto-pipelining groups commands by the node of their first argument, so a command whose
      // first argument is not a key (a script with a variable key count starts with the count)
      // would put keys of another node into the batch, failing every command in it.
      const variableKeys = Object.entries(opts.scripts ?? {})
        .filter(([, d]) => d.keys === undefined)
        .flatMap(([name]) => [name, `${name}Buffer`]);
      const clusterOpts: ClusterOptions = {
        autoPipeliningIgnoredCommands: ['eval', 'evalsha', 'call', ...variableKeys],
        redisOptions: {
          ...base,
          ...(t.username !== null ? { username: t.username } : {}),
          ...(t.password !== null ? { password: t.password } : {}),
          ...(t.tls ? { tls: {} } : {}),
        },
        enableOfflineQueue: opts.blocking === true,
        enableAutoPipelining: opts.blocking !== true,
        clusterRetryStrategy: backoff(opts.maxReconnectDelayMs ?? 1000),
        // A command that met a closed connection or CLUSTERDOWN is not re-sent to another node (it
        // may have run): it fails (→ 503) and the slot map is refreshed in the background.
        retryDelayOnFailover: opts.blocking === true ? 100 : 0,
        retryDelayOnClusterDown: opts.blocking === true ? 100 : 0,
        retryDelayOnTryAgain: 100,
        maxRedirections: 6,
        slotsRefreshTimeout: Math.max(opts.commandTimeoutMs, 1000),
        // A failover moves slots without a MOVED reaching an idle client: look again every second.
        slotsRefreshInterval: 1000,
        scaleReads: 'master',
      };
      client = new Cluster(
        t.nodes.map((n) => ({ host: n.host, port: n.port })),
        clusterOpts,
      );
      break;
    }
  }
  for (const [name, s] of Object.entries(opts.scripts ?? {})) {
    client.defineCommand(name, s.keys === undefined ? { lua: s.lua } : { numberOfKeys: s.keys, lua: s.lua });
  }
  const label = opts.label ?? 'redis';
  let down = false;
  let lastWarnMs = -Infinity;
  // Without a listener ioredis prints every connection error; the message may name the host.
  client.on('error', (err: Error) => {
    const now = performance.now();
    if (!down || now - lastWarnMs > 5000) {
      lastWarnMs = now;
      opts.log?.warn({ err: err.message, store: describeTopology(t) }, `${label} error`);
    }
    down = true;
  });
  client.on('ready', () => {
    opts.log?.info({ store: describeTopology(t) }, down ? `${label} ready again` : `${label} ready`);
    down = false;
  });
  return client;
}

/** Resolves once the client is ready (for a cluster: the slot map is loaded and CLUSTER INFO says ok). */
export function waitReady(redis: RedisClient, timeoutMs = Infinity): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = Number.isFinite(timeoutMs)
      ? setTimeout(() => {
          redis.off('ready', onReady);
          reject(new Error('redis not ready in time'));
        }, timeoutMs)
      : null;
    const onReady = (): void => {
      if (timer !== null) clearTimeout(timer);
      resolve();
    };
    redis.once('ready', onReady);
  });
}

/** The primaries' connections: the client itself, or each cluster primary's. */
export function primaries(redis: RedisClient): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}

/** One slot-owner's connection in a cluster (by the client's current slot map), or null. */
export function primaryOfKey(cluster: Cluster, key: string): Redis | null {
  const owners = cluster.slots[calculateSlot(key)];
  const nodeKey = owners?.[0];
  if (nodeKey === undefined) return null;
  for (const node of cluster.nodes('master')) {
    if (`${node.options.host}:${node.options.port}` === nodeKey) return node;
  }
  return null;
}

/** Reads `INFO <section>` fields (`key:value` lines) into a map. */
export function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return out;
}

/** Why the store cannot serve now, or null when it can: answers PING, and a cluster is ok with every slot covered. */
export async function storeProblem(redis: RedisClient): Promise<string | null> {
  if (redis.status !== 'ready') return `not connected (${redis.status})`;
  if (!(redis instanceof Cluster)) {
    await redis.ping();
    return null;
  }
  const nodes = redis.nodes('master');
  if (nodes.length === 0) return 'no cluster primary known';
  const info = parseInfo(String(await nodes[0]!.cluster('INFO')));
  if (info.get('cluster_state') !== 'ok') return `cluster state ${info.get('cluster_state') ?? 'unknown'}`;
  const ok = Number(info.get('cluster_slots_ok'));
  if (ok !== 16384) return `${16384 - (Number.isFinite(ok) ? ok : 0)} slots not served`;
  let covered = 0;
  for (let s = 0; s < 16384; s++) if (redis.slots[s]?.[0] !== undefined) covered++;
  if (covered !== 16384) return `${16384 - covered} slots unknown to this client`;
  await Promise.all(nodes.map((n) => n.ping()));
  return null;
}

/** How many replicas each primary has connected (INFO replication), by `host:port`. */
export async function replicaCounts(redis: RedisClient): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  await Promise.all(
    primaries(redis).map(async (node) => {
      const info = parseInfo(await node.info('replication'));
      out.set(`${node.options.host ?? '?'}:${node.options.port ?? '?'}`, Number(info.get('connected_slaves') ?? 0));
    }),
  );
  return out;
}

/**
 * Start-up check for durable acknowledgement: every primary must have at least `n` replicas
 * connected, else `WAIT n` could never succeed. Returns a readable problem or null.
 */
export async function replicasProblem(redis: RedisClient, n: number, label: string): Promise<string | null> {
  if (n <= 0) return null;
  const counts = await replicaCounts(redis);
  const short = [...counts].filter(([, c]) => c < n);
  if (short.length === 0) return null;
  return `${label}: REDIS_WAIT_REPLICAS=${n}, but ${short.map(([node, c]) => `${node} has ${c} replica${c === 1 ? '' : 's'}`).join(', ')}`;
}

export { describeTopology };
