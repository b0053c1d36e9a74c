/**
 * The core's store connection: the shared connection module (@zax/service: any topology, set up
 * for request paths) with every Lua script of `../lua/` registered.
 */
import { readFileSync } from 'node:fs';
import { createRedisClient, waitReady, type RedisClient, type RedisTopology, type ScriptDef } from '@zax/service';
import type { Log } from './log.js';

/** Script name → file and fixed key count (undefined: the caller passes the key count first). */
const SCRIPTS = {
  zaxMint: { file: 'mint.lua', keys: 2 },
  zaxConsume: { file: 'consume.lua', keys: 2 },
  zaxSessionSet: { file: 'session_set.lua', keys: 3 },
  zaxSessionOpen: { file: 'session_open.lua', keys: 2 },
  zaxUpload: { file: 'mailbox_upload.lua', keys: 3 },
  zaxCount: { file: 'mailbox_count.lua', keys: 3 },
  zaxDownload: { file: 'mailbox_download.lua', keys: 3 },
  zaxDelete: { file: 'mailbox_delete.lua', keys: 3 },
  zaxFileStart: { file: 'file_start.lua', keys: 6 },
  zaxFileDownload: { file: 'file_download.lua', keys: 3 },
  zaxFileDelete: { file: 'file_delete.lua', keys: 6 },
  zaxFileReap: { file: 'file_reap.lua', keys: 6 },
  zaxFileReconcile: { file: 'file_reconcile.lua', keys: 2 },
  zaxLoadFlush: { file: 'load_flush.lua', keys: undefined },
  zaxLoadSummary: { file: 'load_summary.lua', keys: 1 },
} as const satisfies Record<string, { file: string; keys: number | undefined }>;

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

const INCLUDE_RE = /^-- @include ([a-z_]+)\s*$/m;

/** Reads a script relative to this package (works from `src/` and `dist/`), inlining includes. */
export function loadLua(file: string): string {
  let src = readFileSync(new URL(`../lua/${file}`, import.meta.url), 'utf8');
  for (let m = INCLUDE_RE.exec(src); m !== null; m = INCLUDE_RE.exec(src)) {
    const lib = readFileSync(new URL(`../lua/include/${m[1]}.lua`, import.meta.url), 'utf8');
    src = src.replace(m[0], lib);
  }
  return src;
}

let scriptDefs: Record<string, ScriptDef> | null = null;
/** The core's scripts, read once. */
function coreScripts(): Record<string, ScriptDef> {
  scriptDefs ??= Object.fromEntries(Object.entries(SCRIPTS).map(([name, s]) => [name, { lua: loadLua(s.file), keys: s.keys }]));
  return scriptDefs;
}

export interface RedisOptions {
  /** Per-command timeout, so an unresponsive Redis becomes a prompt 503. */
  commandTimeoutMs: number;
  /** Where connection events go; nothing is logged without it. */
  log?: Log;
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
