/**
 * The core's configuration: zod schemas over the environment (docs/CONTRACT.md), parsed once at
 * start-up into a frozen `Config`. This is the only parser of environment variables; an invalid
 * environment is a `ConfigError` carrying a readable list of every problem.
 */
import { DEFAULTS } from '@zax/protocol';
import { z } from 'zod';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Config {
  /** @default 8081 (`CORE_PORT`; 0 = any free port) */
  readonly port: number;
  /** @default "127.0.0.1" (`CORE_HOST`) */
  readonly host: string;
  /** `REDIS_URL`, required. */
  readonly redisUrl: string;
  /** @default "zax:" (`REDIS_PREFIX`) — every key the core writes starts with it. */
  readonly redisPrefix: string;
  /** `INTERNAL_SECRET`, required, ≥ 16 chars. */
  readonly internalSecret: string;
  /** `INTERNAL_SECRET_PREVIOUS`: a second accepted secret during rotation, or null. */
  readonly internalSecretPrevious: string | null;
  /** @default 1200 */
  readonly sessionTtlSec: number;
  /** @default 60 */
  readonly nonceWindowSec: number;
  /** @default 600, ≥ 2 × nonceWindowSec */
  readonly nonceCacheSec: number;
  /** @default 432000 */
  readonly messageTtlSec: number;
  /** @default 604800 */
  readonly fileTtlSec: number;
  /** @default 262144 */
  readonly maxMessageBytes: number;
  /** @default 10000 */
  readonly mailboxQuota: number;
  /** @default 33554432 */
  readonly mailboxQuotaBytes: number;
  /** @default 3600 */
  readonly mailboxFullRetryAfterSec: number;
  /** @default 512000 */
  readonly maxChunkSize: number;
  /** @default 1073741823 */
  readonly maxFileSize: number;
  /** @default 1048576, ≥ 4·⌈maxChunkSize/3⌉ + 4096 */
  readonly maxCommandBodyBytes: number;
  /** @default 4096 */
  readonly maxHandshakeBodyBytes: number;
  /** @default 5 */
  readonly busyRetryAfterSec: number;
  /** @default 1000 */
  readonly redisCommandTimeoutMs: number;
  /** @default "info" */
  readonly logLevel: LogLevel;
  /**
   * Whether the file commands run. The file store is not implemented yet, so this is always false
   * (file commands answer 405, PROTOCOL.md §4.4 step 9) and there is no variable for it.
   */
  readonly fileStoreEnabled: boolean;
}

/** Largest mailbox quota accepted: keeps every index the Lua scripts compute exact. */
const MAX_MAILBOX_QUOTA = 1_000_000_000;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** An unset or empty variable takes its default (or stays undefined when it has none). */
const orDefault = (def: string | undefined) => (v: unknown): unknown => (v === undefined || v === '' ? def : v);

function int(def: number, min: number, max = Number.MAX_SAFE_INTEGER) {
  return z.preprocess(
    orDefault(String(def)),
    z
      .string()
      .regex(/^[0-9]{1,16}$/, 'must be a non-negative decimal integer')
      .transform((s) => Number(s))
      .pipe(z.number().int().min(min, `must be ≥ ${min}`).max(max, `must be ≤ ${max}`)),
  );
}

const str = (def: string) => z.preprocess(orDefault(def), z.string());
const required = (what: z.ZodString) => z.preprocess(orDefault(undefined), what);

/** One schema per variable, so every bad variable is reported, not only the first failing group. */
const ENV_SHAPE = {
  CORE_PORT: int(8081, 0, 65535),
  CORE_HOST: str('127.0.0.1'),
  REDIS_URL: required(z.string({ required_error: 'is required' }).regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')),
  REDIS_PREFIX: str('zax:').pipe(z.string().regex(/^[^{}\s]*$/, 'must not contain braces or whitespace (keys use {hash tags})')),
  INTERNAL_SECRET: required(z.string({ required_error: 'is required' }).min(16, 'must be at least 16 characters')),
  INTERNAL_SECRET_PREVIOUS: z.preprocess(orDefault(undefined), z.string().min(16, 'must be at least 16 characters').optional()),
  SESSION_TTL_SEC: int(DEFAULTS.sessionTtlSec, 1),
  NONCE_WINDOW_SEC: int(DEFAULTS.nonceWindowSec, 0),
  NONCE_CACHE_SEC: int(DEFAULTS.nonceCacheSec, 1),
  MESSAGE_TTL_SEC: int(DEFAULTS.messageTtlSec, 1),
  FILE_TTL_SEC: int(DEFAULTS.fileTtlSec, 1),
  MAX_MESSAGE_BYTES: int(DEFAULTS.maxMessageBytes, 1),
  MAILBOX_QUOTA: int(DEFAULTS.mailboxQuota, 1, MAX_MAILBOX_QUOTA),
  MAILBOX_QUOTA_BYTES: int(DEFAULTS.mailboxQuotaBytes, 1),
  MAILBOX_FULL_RETRY_AFTER_SEC: int(DEFAULTS.mailboxFullRetryAfterSec, 1),
  MAX_CHUNK_SIZE: int(DEFAULTS.maxChunkSize, 1),
  MAX_FILE_SIZE: int(DEFAULTS.maxFileSize, 1),
  MAX_COMMAND_BODY_BYTES: int(DEFAULTS.maxCommandBodyBytes, 1),
  MAX_HANDSHAKE_BODY_BYTES: int(DEFAULTS.maxHandshakeBodyBytes, 1),
  BUSY_RETRY_AFTER_SEC: int(DEFAULTS.busyRetryAfterSec, 1),
  REDIS_COMMAND_TIMEOUT_MS: int(1000, 1),
  LOG_LEVEL: z.preprocess(orDefault('info'), z.enum(LOG_LEVELS)),
};

type EnvShape = typeof ENV_SHAPE;
type ParsedEnv = { [K in keyof EnvShape]: z.output<EnvShape[K]> };

/** Constraints between variables, checked on whichever of their values parsed. */
function crossProblems(e: Partial<ParsedEnv>): string[] {
  const out: string[] = [];
  if (e.NONCE_CACHE_SEC !== undefined && e.NONCE_WINDOW_SEC !== undefined && e.NONCE_CACHE_SEC < 2 * e.NONCE_WINDOW_SEC) {
    out.push('NONCE_CACHE_SEC: must be ≥ 2 × NONCE_WINDOW_SEC');
  }
  if (e.MAX_CHUNK_SIZE !== undefined && e.MAX_COMMAND_BODY_BYTES !== undefined) {
    const min = 4 * Math.ceil(e.MAX_CHUNK_SIZE / 3) + 4096;
    if (e.MAX_COMMAND_BODY_BYTES < min) out.push(`MAX_COMMAND_BODY_BYTES: must be ≥ 4·⌈MAX_CHUNK_SIZE/3⌉ + 4096 = ${min}`);
  }
  return out;
}

/** Env is any string map; only the variables above are read. */
export type Env = Readonly<Record<string, string | undefined>>;

/** Parses and validates the environment. Throws ConfigError listing every problem. */
export function loadConfig(env: Env): Config {
  const parsed: Partial<Record<keyof EnvShape, unknown>> = {};
  const problems: string[] = [];
  for (const [name, schema] of Object.entries(ENV_SHAPE) as [keyof EnvShape, z.ZodTypeAny][]) {
    const r = schema.safeParse(env[name]);
    if (r.success) parsed[name] = r.data;
    else problems.push(...r.error.issues.map((i) => `${name}: ${i.message}`));
  }
  problems.push(...crossProblems(parsed as Partial<ParsedEnv>));
  if (problems.length > 0) throw new ConfigError(problems);
  const e = parsed as ParsedEnv;
  return Object.freeze({
    port: e.CORE_PORT,
    host: e.CORE_HOST,
    redisUrl: e.REDIS_URL,
    redisPrefix: e.REDIS_PREFIX,
    internalSecret: e.INTERNAL_SECRET,
    internalSecretPrevious: e.INTERNAL_SECRET_PREVIOUS ?? null,
    sessionTtlSec: e.SESSION_TTL_SEC,
    nonceWindowSec: e.NONCE_WINDOW_SEC,
    nonceCacheSec: e.NONCE_CACHE_SEC,
    messageTtlSec: e.MESSAGE_TTL_SEC,
    fileTtlSec: e.FILE_TTL_SEC,
    maxMessageBytes: e.MAX_MESSAGE_BYTES,
    mailboxQuota: e.MAILBOX_QUOTA,
    mailboxQuotaBytes: e.MAILBOX_QUOTA_BYTES,
    mailboxFullRetryAfterSec: e.MAILBOX_FULL_RETRY_AFTER_SEC,
    maxChunkSize: e.MAX_CHUNK_SIZE,
    maxFileSize: e.MAX_FILE_SIZE,
    maxCommandBodyBytes: e.MAX_COMMAND_BODY_BYTES,
    maxHandshakeBodyBytes: e.MAX_HANDSHAKE_BODY_BYTES,
    busyRetryAfterSec: e.BUSY_RETRY_AFTER_SEC,
    redisCommandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL,
    fileStoreEnabled: false,
  });
}
