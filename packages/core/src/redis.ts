/**
 * The core's Redis connection: ioredis set up for request paths (no offline queue, a command
 * timeout, endless reconnect with backoff, no silent re-sends) and every Lua script of `../lua/`
 * registered with `defineCommand` (ioredis falls back from EVALSHA to EVAL after a Redis restart).
 */
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import type { Log } from './log.js';

/** Script name → file and fixed key count (undefined: the caller passes the key count first). */
const SCRIPTS = {
  zaxMint: { file: 'mint.lua', keys: 2 },
  zaxConsume: { file: 'consume.lua', keys: 2 },
  zaxSessionSet: { file: 'session_set.lua', keys: 3 },
  zaxSessionOpen: { file: 'session_open.lua', keys: 2 },
  zaxUpload: { file: 'mailbox_upload.lua', keys: 4 },
  zaxCount: { file: 'mailbox_count.lua', keys: 3 },
  zaxDownload: { file: 'mailbox_download.lua', keys: 3 },
  zaxDelete: { file: 'mailbox_delete.lua', keys: undefined },
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
 * ioredis with the core's scripts as commands, each also as `<name>Buffer`, whose bulk replies are
 * Buffers (binary chunks). Replies are checked by the store wrappers.
 */
export type CoreRedis = Redis & { [K in ScriptName]: ScriptFn } & { [K in ScriptName as `${K}Buffer`]: ScriptFn };

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

export interface RedisOptions {
  /** Per-command timeout, so an unresponsive Redis becomes a prompt 503. */
  commandTimeoutMs: number;
  /** Where connection events go; nothing is logged without it. */
  log?: Log;
  /** Longest wait between reconnect attempts. @default 1000 */
  maxReconnectDelayMs?: number;
}

/**
 * Creates the client and registers the scripts without waiting for the connection. Commands fail
 * at once (→ 503) while it is not ready; it keeps reconnecting for as long as it lives.
 */
export function createRedis(url: string, opts: RedisOptions): CoreRedis {
  const maxDelay = opts.maxReconnectDelayMs ?? 1000;
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    commandTimeout: opts.commandTimeoutMs,
    connectTimeout: Math.max(opts.commandTimeoutMs, 1000),
    // Fail commands caught by a disconnect instead of re-sending them: a script may already have run.
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 10), maxDelay),
    lazyConnect: false,
    // Commands issued while a batch is on the wire go out together in one write (one syscall per
    // batch instead of per command): under concurrent load the core is bound by those writes.
    enableAutoPipelining: true,
  });
  for (const [name, s] of Object.entries(SCRIPTS)) {
    redis.defineCommand(name, s.keys === undefined ? { lua: loadLua(s.file) } : { numberOfKeys: s.keys, lua: loadLua(s.file) });
  }
  let down = false;
  redis.on('error', (err: Error) => {
    if (!down) opts.log?.warn({ err: err.message }, 'redis error');
    down = true;
  });
  redis.on('ready', () => {
    if (down) opts.log?.info({}, 'redis ready again');
    down = false;
  });
  return redis as CoreRedis;
}

/** Resolves once the client is ready (connected and, for a password URL, authenticated). */
export function waitReady(redis: Redis, timeoutMs = Infinity): Promise<void> {
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

/** createRedis, then waits until it is ready (retrying without limit). */
export async function connectRedis(url: string, opts: RedisOptions): Promise<CoreRedis> {
  const redis = createRedis(url, opts);
  await waitReady(redis);
  return redis;
}
