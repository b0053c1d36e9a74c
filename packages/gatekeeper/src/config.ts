/**
 * The gatekeeper's configuration: every environment variable of docs/CONTRACT.md that this tier
 * reads, validated once with zod into a frozen Config. A bad value is a ConfigError that lists every
 * problem in plain words; main.ts prints it and exits 1 (PROTOCOL.md §7: refuse to start).
 * Error messages never echo a secret or a URL (a URL may hold a password).
 */
import { DEFAULTS, MAX_DIFFICULTY } from '@zax/protocol';
import { z } from 'zod';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface Config {
  /** @default 8080 */
  readonly port: number;
  /** @default '0.0.0.0' */
  readonly host: string;
  /** Base URL of the core, without a trailing slash. @default 'http://127.0.0.1:8081' */
  readonly coreUrl: string;
  /** @default REDIS_URL */
  readonly edgeRedisUrl: string;
  /** @default REDIS_PREFIX + 'edge:' */
  readonly edgeRedisPrefix: string;
  readonly internalSecret: string;
  /** Base proof-of-work difficulty, 0..255. @default 0 */
  readonly difficulty: number;
  /** @default 65 */
  readonly difficultyGraceSec: number;
  /** Handshake lifetime from the first /start_session. @default 300 */
  readonly tokenTtlSec: number;
  /** @default 1048576 */
  readonly maxCommandBodyBytes: number;
  /** @default 4096 */
  readonly maxHandshakeBodyBytes: number;
  /** @default 5 */
  readonly busyRetryAfterSec: number;
  /** @default 3000 */
  readonly coreTimeoutMs: number;
  /** @default 1000 */
  readonly redisCommandTimeoutMs: number;
  /** @default 'info' */
  readonly logLevel: LogLevel;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** An unset variable and an empty one both mean "use the default". */
const opt = z
  .string()
  .optional()
  .transform((s) => (s === undefined || s === '' ? undefined : s));

const int = (def: number, min: number, max: number) =>
  opt.transform((s, ctx): number => {
    if (s === undefined) return def;
    const n = /^\d+$/.test(s) ? Number(s) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `must be a whole number from ${min} to ${max}, got "${s}"` });
      return z.NEVER;
    }
    return n;
  });

const url = (protocols: readonly string[]) =>
  opt.transform((s, ctx): string | undefined => {
    if (s === undefined) return undefined;
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'is not a valid URL' });
      return z.NEVER;
    }
    if (!protocols.includes(u.protocol)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `must start with ${protocols.map((p) => `${p}//`).join(' or ')}` });
      return z.NEVER;
    }
    return s;
  });

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Largest `/prove` body (382 bytes) plus a trailing CRLF: a smaller handshake limit breaks /prove. */
const MIN_HANDSHAKE_BODY_BYTES = 384;

const schema = z.object({
  PORT: int(8080, 0, 65535),
  HOST: opt.transform((s) => s ?? '0.0.0.0'),
  CORE_URL: url(['http:']).transform((s) => (s ?? 'http://127.0.0.1:8081').replace(/\/+$/, '')),
  REDIS_URL: url(['redis:', 'rediss:']),
  EDGE_REDIS_URL: url(['redis:', 'rediss:']),
  REDIS_PREFIX: opt.transform((s) => s ?? 'zax:'),
  EDGE_REDIS_PREFIX: opt,
  INTERNAL_SECRET: z
    .string({ required_error: 'is required (at least 16 characters)' })
    .min(16, 'must be at least 16 characters'),
  DIFFICULTY: int(DEFAULTS.difficulty, 0, MAX_DIFFICULTY),
  DIFFICULTY_GRACE_SEC: int(DEFAULTS.difficultyGraceSec, 0, 86_400),
  TOKEN_TTL_SEC: int(DEFAULTS.tokenTtlSec, 1, 86_400),
  MAX_COMMAND_BODY_BYTES: int(DEFAULTS.maxCommandBodyBytes, 1, 2 ** 31 - 1),
  MAX_HANDSHAKE_BODY_BYTES: int(DEFAULTS.maxHandshakeBodyBytes, MIN_HANDSHAKE_BODY_BYTES, 1_048_576),
  // Read only to check MAX_COMMAND_BODY_BYTES against it (the core owns the chunk limit).
  MAX_CHUNK_SIZE: int(DEFAULTS.maxChunkSize, 1, 2 ** 31 - 1),
  BUSY_RETRY_AFTER_SEC: int(DEFAULTS.busyRetryAfterSec, 1, 86_400),
  CORE_TIMEOUT_MS: int(3000, 1, 60_000),
  REDIS_COMMAND_TIMEOUT_MS: int(1000, 1, 60_000),
  LOG_LEVEL: opt.transform((s, ctx): LogLevel => {
    if (s === undefined) return 'info';
    if ((LOG_LEVELS as readonly string[]).includes(s)) return s as LogLevel;
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `must be one of ${LOG_LEVELS.join(', ')}` });
    return z.NEVER;
  }),
});

/** Validates the environment into a frozen Config, or throws a ConfigError listing every problem. */
export function loadConfig(env: Readonly<Record<string, string | undefined>>): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.') || 'environment'}: ${i.message}`));
  }
  const e = parsed.data;
  const problems: string[] = [];
  const edgeRedisUrl = e.EDGE_REDIS_URL ?? e.REDIS_URL;
  if (edgeRedisUrl === undefined) problems.push('EDGE_REDIS_URL: is required (or set REDIS_URL)');
  const minCommandBody = 4 * Math.ceil(e.MAX_CHUNK_SIZE / 3) + 4096;
  if (e.MAX_COMMAND_BODY_BYTES < minCommandBody) {
    problems.push(`MAX_COMMAND_BODY_BYTES: must be at least 4·⌈MAX_CHUNK_SIZE/3⌉ + 4096 = ${minCommandBody}`);
  }
  if (problems.length > 0 || edgeRedisUrl === undefined) throw new ConfigError(problems);
  return Object.freeze({
    port: e.PORT,
    host: e.HOST,
    coreUrl: e.CORE_URL,
    edgeRedisUrl,
    edgeRedisPrefix: e.EDGE_REDIS_PREFIX ?? `${e.REDIS_PREFIX}edge:`,
    internalSecret: e.INTERNAL_SECRET,
    difficulty: e.DIFFICULTY,
    difficultyGraceSec: e.DIFFICULTY_GRACE_SEC,
    tokenTtlSec: e.TOKEN_TTL_SEC,
    maxCommandBodyBytes: e.MAX_COMMAND_BODY_BYTES,
    maxHandshakeBodyBytes: e.MAX_HANDSHAKE_BODY_BYTES,
    busyRetryAfterSec: e.BUSY_RETRY_AFTER_SEC,
    coreTimeoutMs: e.CORE_TIMEOUT_MS,
    redisCommandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL,
  });
}
