/**
 * The edge-Redis connection: fail fast instead of queueing while Redis is away (so requests turn
 * into a prompt 503), reconnect forever, and register the Lua scripts with `defineCommand` (which
 * falls back from EVALSHA to EVAL after a Redis restart). The typed wrappers live in
 * handshake/store.ts.
 */
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { everyInterval, type Logger } from './log.js';

/** The edge Redis client with the gatekeeper's scripts registered. Arguments are strings. */
export interface EdgeRedis extends Redis {
  /** lua/start-session.lua */
  zaxGkStartSession(key: string, nowMs: string, ct: string, rt: string, expiresAtMs: string, keyTtlMs: string): Promise<string>;
  /** lua/load-handshake.lua */
  zaxGkLoadHandshake(key: string, nowMs: string): Promise<[string, string, string, string] | null>;
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

/** Each script's file and number of KEYS. */
const SCRIPTS = {
  zaxGkStartSession: ['start-session.lua', 1],
  zaxGkLoadHandshake: ['load-handshake.lua', 1],
  zaxGkSetSessionPk: ['set-session-pk.lua', 1],
  zaxGkThrottle: ['throttle.lua', 1],
  zaxGkDifficultyCount: ['difficulty-count.lua', 1],
  zaxGkDifficultyLease: ['difficulty-lease.lua', 1],
  zaxGkDifficultyRelease: ['difficulty-release.lua', 1],
  zaxGkDifficultyWrite: ['difficulty-write.lua', 2],
} as const satisfies Record<Exclude<keyof EdgeRedis, keyof Redis>, readonly [string, number]>;

const lua = (file: string): string => readFileSync(new URL(`../lua/${file}`, import.meta.url), 'utf8');

export interface ConnectRedisOptions {
  /** Per-command timeout; a command past it fails (→ 503). */
  commandTimeoutMs: number;
  log?: Logger;
  /** Shown in CLIENT LIST. @default 'zax-gatekeeper' */
  connectionName?: string;
}

export function connectRedis(url: string, opts: ConnectRedisOptions): EdgeRedis {
  const redis = new Redis(url, {
    connectionName: opts.connectionName ?? 'zax-gatekeeper',
    enableOfflineQueue: false,
    commandTimeout: opts.commandTimeoutMs,
    connectTimeout: Math.max(opts.commandTimeoutMs, 1000),
    maxRetriesPerRequest: 0,
    // Endless reconnect with a short, capped back-off.
    retryStrategy: (times) => Math.min(50 * times, 1000),
    // Commands issued while a batch is on the wire go out together in one write (fewer syscalls).
    enableAutoPipelining: true,
  });
  for (const [name, [file, numberOfKeys]] of Object.entries(SCRIPTS)) redis.defineCommand(name, { numberOfKeys, lua: lua(file) });
  const warn = everyInterval(5000, (skipped) =>
    opts.log?.warn({ skipped }, 'edge redis connection error'),
  );
  // Without a listener ioredis prints every connection error; the message may name the host.
  redis.on('error', () => warn());
  redis.on('ready', () => opts.log?.info('edge redis ready'));
  return redis as EdgeRedis;
}

/** Resolves once the client is ready (or rejects after `timeoutMs`). For tests and start-up. */
export function redisReady(redis: Redis, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new Error('edge redis not ready in time'));
    }, timeoutMs);
    const onReady = (): void => {
      clearTimeout(timer);
      resolve();
    };
    redis.once('ready', onReady);
  });
}
