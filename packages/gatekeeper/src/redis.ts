/**
 * The edge store's connection: the shared connection module (@zax/service: any topology, fail fast
 * while the store is away so requests turn into a prompt 503, reconnect forever) with the
 * gatekeeper's Lua scripts registered. The typed wrappers live in handshake/store.ts.
 */
import { createRedisClient, scriptRegistry, waitReady, type Logger, type RedisClient, type RedisTopology, type ScriptFile } from '@zax/service';

/** The edge store client (any topology) with the gatekeeper's scripts registered. Arguments are strings. */
export type EdgeRedis = RedisClient & EdgeScripts;

export interface EdgeScripts {
  /** lua/start-session.lua */
  zaxGkStartSession(key: string, nowMs: string, ct: string, rt: string, expiresAtMs: string, keyTtlMs: string): Promise<string>;
  /** lua/read-handshake.lua */
  zaxGkReadHandshake(key: string, nowMs: string): Promise<[string, string, string, string] | null>;
  /** lua/set-session-pk.lua */
  zaxGkSetSessionPk(key: string, relayToken: string, pk: string, nowMs: string): Promise<number>;
  /** lua/throttle.lua: 0 = token taken, else ms until one is available */
  zaxGkThrottle(key: string, nowMs: string, burst: string, ratePerMin: string, keyTtlMs: string): Promise<number>;
  /** lua/difficulty-count.lua */
  zaxGkDifficultyCount(key: string, add: string, keyTtlMs: string): Promise<number>;
  /** lua/difficulty-lease.lua */
  zaxGkDifficultyLease(leaseKey: string, owner: string, leaseMs: string): Promise<number>;
  /** lua/difficulty-release.lua */
  zaxGkDifficultyRelease(leaseKey: string, owner: string): Promise<number>;
  /** lua/difficulty-write.lua */
  zaxGkDifficultyWrite(
    leaseKey: string,
    stateKey: string,
    owner: string,
    period: string,
    difficulty: string,
    boost: string,
    changes: string,
    nowMs: string,
    keyTtlMs: string,
  ): Promise<number>;
}

/** The gatekeeper's scripts (lua/): command name → file and fixed key count. */
const SCRIPTS = {
  zaxGkStartSession: { file: 'start-session.lua', keys: 1 },
  zaxGkReadHandshake: { file: 'read-handshake.lua', keys: 1 },
  zaxGkSetSessionPk: { file: 'set-session-pk.lua', keys: 1 },
  zaxGkThrottle: { file: 'throttle.lua', keys: 1 },
  zaxGkDifficultyCount: { file: 'difficulty-count.lua', keys: 1 },
  zaxGkDifficultyLease: { file: 'difficulty-lease.lua', keys: 1 },
  zaxGkDifficultyRelease: { file: 'difficulty-release.lua', keys: 1 },
  zaxGkDifficultyWrite: { file: 'difficulty-write.lua', keys: 2 },
} as const satisfies Record<keyof EdgeScripts, ScriptFile>;

const edgeScripts = scriptRegistry(new URL('../lua/', import.meta.url), SCRIPTS);

export interface ConnectRedisOptions {
  /** Per-command timeout; a command past it fails (→ 503). */
  commandTimeoutMs: number;
  log?: Logger;
  /** Shown in CLIENT LIST. @default 'zax-gatekeeper' */
  connectionName?: string;
}

/**
 * The edge store's client for a topology (a URL string is a single server), connecting in the
 * background: commands fail at once (→ 503) until it is ready.
 */
export function connectRedis(target: RedisTopology | string, opts: ConnectRedisOptions): EdgeRedis {
  const log = opts.log;
  return createRedisClient(target, {
    commandTimeoutMs: opts.commandTimeoutMs,
    connectionName: opts.connectionName ?? 'zax-gatekeeper',
    scripts: edgeScripts(),
    label: 'edge redis',
    ...(log !== undefined ? { log: { warn: (o: object, m: string) => log.warn(o, m), info: (o: object, m: string) => log.info(o, m) } } : {}),
  }) as EdgeRedis;
}

/** Resolves once the client is ready (or rejects after `timeoutMs`). For tests and start-up. */
export function redisReady(redis: RedisClient, timeoutMs = 10_000): Promise<void> {
  return waitReady(redis, timeoutMs).catch(() => {
    throw new Error('edge redis not ready in time');
  });
}
