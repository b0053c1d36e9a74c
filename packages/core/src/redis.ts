/**
 * The core's store connection: the shared connection module (@zax/service: any topology, set up
 * for request paths) with every Lua script of `../lua/` registered.
 */
import { createRedisClient, readLua, scriptRegistry, waitReady, type Logger, type RedisClient, type RedisTopology, type ScriptFile } from '@zax/service';

/** The core's scripts (lua/): command name → file and fixed key count. */
const SCRIPTS = {
  zaxMint: { file: 'mint.lua', keys: 2 },
  zaxConsume: { file: 'consume.lua', keys: 2 },
  zaxSessionSet: { file: 'session-set.lua', keys: 3 },
  zaxSessionOpen: { file: 'session-open.lua', keys: 2 },
  zaxUpload: { file: 'mailbox-upload.lua', keys: 3 },
  zaxCount: { file: 'mailbox-count.lua', keys: 3 },
  zaxDownload: { file: 'mailbox-download.lua', keys: 3 },
  zaxDelete: { file: 'mailbox-delete.lua', keys: 3 },
  zaxFileStart: { file: 'file-start.lua', keys: 6 },
  zaxFileDownload: { file: 'file-download.lua', keys: 3 },
  zaxFileDelete: { file: 'file-delete.lua', keys: 6 },
  zaxFileReap: { file: 'file-reap.lua', keys: 6 },
  zaxFileReconcile: { file: 'file-reconcile.lua', keys: 2 },
  zaxLoadFlush: { file: 'load-flush.lua', keys: undefined },
  zaxLoadSummary: { file: 'load-summary.lua', keys: 1 },
} as const satisfies Record<string, ScriptFile>;

export type ScriptName = keyof typeof SCRIPTS;
/** A script argument; a Buffer is sent as raw bytes (file chunks). */
export type RedisArg = string | number | Buffer;
type ScriptFn = (...args: RedisArg[]) => Promise<unknown>;

/**
 * A store client (single server, cluster or sentinel primary) with the core's scripts as commands,
 * each also as `<name>Buffer`, whose bulk replies are Buffers (binary chunks). Replies are checked
 * by the store wrappers.
 */
export type CoreRedis = RedisClient & { [K in ScriptName]: ScriptFn } & { [K in ScriptName as `${K}Buffer`]: ScriptFn };

/** This package's lua/ folder (the same from `src/` and `dist/`). */
const LUA_DIR = new URL('../lua/', import.meta.url);

/** Reads one of the core's scripts, inlining its includes. */
export const loadLua = (file: string): string => readLua(LUA_DIR, file);

const coreScripts = scriptRegistry(LUA_DIR, SCRIPTS);

export interface RedisOptions {
  /** Per-command timeout, so an unresponsive Redis becomes a prompt 503. */
  commandTimeoutMs: number;
  /** Where connection events go; nothing is logged without it. */
  log?: Logger;
  /** Longest wait between reconnect attempts. @default 1000 */
  maxReconnectDelayMs?: number;
  /** Shown in CLIENT LIST. @default 'zax-core' */
  connectionName?: string;
}

/**
 * Creates the client for a topology (a URL string is a single server) and registers the scripts
 * without waiting for the connection. Commands fail at once (→ 503) while it is not ready; it
 * keeps reconnecting for as long as it lives.
 */
export function createRedis(target: RedisTopology | string, opts: RedisOptions): CoreRedis {
  return createRedisClient(target, {
    commandTimeoutMs: opts.commandTimeoutMs,
    connectionName: opts.connectionName ?? 'zax-core',
    scripts: coreScripts(),
    label: 'redis',
    ...(opts.log !== undefined ? { log: opts.log } : {}),
    ...(opts.maxReconnectDelayMs !== undefined ? { maxReconnectDelayMs: opts.maxReconnectDelayMs } : {}),
  }) as CoreRedis;
}

export { waitReady };

/** createRedis, then waits until it is ready (retrying without limit). */
export async function connectRedis(target: RedisTopology | string, opts: RedisOptions): Promise<CoreRedis> {
  const redis = createRedis(target, opts);
  await waitReady(redis);
  return redis;
}
