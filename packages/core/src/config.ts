/**
 * The core's configuration: zod schemas over the environment (docs/CONTRACT.md), parsed once at
 * start-up into a frozen `Config`. This is the only parser of environment variables; an invalid
 * environment is a `ConfigError` carrying a readable list of every problem.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { DEFAULTS } from '@zax/protocol';
import { ConfigError, intParser, bool, logLevel, optional, parseEnv, parseTopology, type Env, type EnvValues, type LogLevel, type RedisTopology } from '@zax/service';
import { z } from 'zod';

export { ConfigError, type Env };

export interface Config {
  /** @default 8081 (`CORE_PORT`; 0 = any free port) */
  readonly port: number;
  /** @default "127.0.0.1" (`CORE_HOST`) */
  readonly host: string;
  /**
   * The core store (@zax/service topology.ts): `REDIS_URL`, `REDIS_CLUSTER_NODES` or
   * `REDIS_SENTINELS` + `REDIS_SENTINEL_NAME` (exactly one is required), with `REDIS_USERNAME`,
   * `REDIS_PASSWORD`, `REDIS_SENTINEL_PASSWORD`, `REDIS_TLS` for the latter two.
   */
  readonly redis: RedisTopology;
  /**
   * @default 0 (`REDIS_WAIT_REPLICAS`): uploads, file chunks and deletes are answered only once
   * Redis WAIT confirms this many replicas of the primary (0 = once the primary has them).
   */
  readonly redisWaitReplicas: number;
  /** @default 500 (`REDIS_WAIT_TIMEOUT_MS`): longest WAIT; past it the write is answered 503 + Retry-After. */
  readonly redisWaitTimeoutMs: number;
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
  /**
   * @default 10 (`REDIS_STARTUP_WAIT_SEC`): how long start-up waits for a cluster or sentinel store
   * to answer (and for REDIS_WAIT_REPLICAS replicas) before it exits with the reason.
   */
  readonly redisStartupWaitSec: number;
  /** @default "info" */
  readonly logLevel: LogLevel;
  /** @default true (`FILE_STORE_ENABLED`); false → file commands answer 405 (docs/PROTOCOL.md §4.4 step 9). */
  readonly fileStoreEnabled: boolean;
  /** @default 1073741824 (`MAX_FILE_BYTES_TOTAL`): chunk bytes the relay stores at most, relay-wide. */
  readonly maxFileBytesTotal: number;
  /**
   * @default 0.9 (`STORE_HIGH_WATER_RATIO`, 0 < r ≤ 1): above r × Redis `maxmemory`, writes get 503.
   * No effect while Redis has no `maxmemory`.
   */
  readonly storeHighWaterRatio: number;
  /**
   * The uploadID seed (`FILE_SEED`, or the contents of the file `FILE_SEED_FILE` without one
   * trailing line break), or null: then one is generated once and kept in core Redis.
   */
  readonly fileSeed: string | null;
  /** @default 60 (`FILE_SWEEP_INTERVAL_SEC`): period of the job that removes expired files. */
  readonly fileSweepIntervalSec: number;
  /**
   * @default 60 (`CENSUS_INTERVAL_SEC`, 1..86400): period of the census job that counts the
   * mailboxes, messages and files stored for the gauges (src/census.ts).
   */
  readonly censusIntervalSec: number;
  /**
   * @default 60 (`LOAD_PERIOD_SEC`, 1..3600): the period over which the load served on
   * `GET /internal/load` is counted (src/load.ts). Set it to the gatekeeper's
   * DIFFICULTY_PERIOD_MIN × 60 (or a divisor of it): both count in epoch-aligned periods.
   */
  readonly loadPeriodSec: number;
  /**
   * `CORE_ADMIN_PORT`: a second, plain-HTTP server on CORE_HOST answering `/livez`, `/readyz` and
   * `/metrics`; `/metrics` then leaves CORE_PORT. null (unset) = everything on CORE_PORT. 0 = any free port.
   */
  readonly adminPort: number | null;
  /**
   * `CORE_WORKERS`: how many worker processes serve CORE_PORT (node:cluster, cluster.ts). 1 = no
   * cluster: this process serves. @default "auto" = `autoWorkers(os.availableParallelism())`:
   * 1 up to 2 CPUs, else half of them (README "Worker processes").
   */
  readonly workers: number;
  // --- Answer bounds (commands/download-gate.ts, DEVIATION D19) ---
  /**
   * @default 4194304 (`MAX_DOWNLOAD_BYTES`): most data bytes (UTF-8 length of `data`) of the messages
   * in one `download` answer; the answer still holds its first message when that one alone has more.
   */
  readonly maxDownloadBytes: number;
  /** @default 2 (`MAX_DOWNLOADS_PER_HPK`): `download` commands in flight per hpk in this process; one more → 429. */
  readonly maxDownloadsPerHpk: number;
  /**
   * @default 8388608 (`MAX_DOWNLOAD_BYTES_PER_HPK_PER_SEC`): the rate at which one hpk's `download`
   * answer bytes are allowed in this process (a token bucket of one second's worth); above it → 429.
   * 0 = no limit.
   */
  readonly downloadBytesPerHpkPerSec: number;
  /**
   * @default 67108864 (`CORE_MAX_RESPONSE_BYTES_IN_FLIGHT`): answer bytes in flight (being built or
   * written) in this process; a download that would pass it → 503. ≥ `downloadAnswerBound(…)`.
   */
  readonly maxResponseBytesInFlight: number;
  /**
   * @default 20000 (`CORE_WRITE_TIMEOUT_MS`): a connection on which nothing could be read or written
   * for this long is closed (a peer that stopped reading an answer no longer pins it).
   */
  readonly writeTimeoutMs: number;
  // --- end answer bounds ---
  // --- TLS on the core link (main.ts reads the files with @zax/service readTlsPair) ---
  /** `CORE_TLS_CERT_FILE` + `CORE_TLS_KEY_FILE` (both or neither): serve HTTPS on CORE_PORT. @default null */
  readonly tlsCertFile: string | null;
  readonly tlsKeyFile: string | null;
  // --- end TLS ---
}

/** Largest CORE_WORKERS accepted. */
export const MAX_WORKERS = 256;

/**
 * The `auto` worker count for `cpus` usable CPUs: 1 up to 2 CPUs, else ⌊cpus / 2⌋. A worker is one
 * busy thread; on one machine the gatekeeper, core Redis (single-threaded) and the kernel's network
 * work need the rest, and on 2 CPUs a second worker only competes with them.
 */
export function autoWorkers(cpus: number): number {
  return cpus <= 2 ? 1 : Math.min(MAX_WORKERS, Math.floor(cpus / 2));
}

/** JSON bytes of a download item besides its data (keys, time, b64 sender and nonce, kind, comma). */
const ITEM_OVERHEAD_BYTES = 160;
/** Items in one download at most (docs/PROTOCOL.md §5.3). */
const MAX_DOWNLOAD_ITEMS = 100;

/**
 * An estimate of the largest `download` answer (both lines, bytes) for these settings: at most
 * max(maxDownloadBytes, maxMessageBytes) data bytes in at most 100 items, boxed (16 bytes) and in
 * base64. Data whose JSON needs escapes (control characters, lone surrogates) can make it larger;
 * the gate counts the real size once the answer is built.
 */
export function downloadAnswerBound(maxDownloadBytes: number, maxMessageBytes: number): number {
  const json = Math.max(maxDownloadBytes, maxMessageBytes) + MAX_DOWNLOAD_ITEMS * ITEM_OVERHEAD_BYTES + 2;
  return 4 * Math.ceil((json + 16) / 3) + 34;
}

/**
 * The most data bytes a `download` page may carry so that its answer stays within `grantBytes`
 * (the inverse of `downloadAnswerBound`), at least 1: the page still holds its first message.
 */
export function downloadBytesWithin(grantBytes: number): number {
  return Math.max(1, Math.floor((grantBytes - 34) / 4) * 3 - 16 - MAX_DOWNLOAD_ITEMS * ITEM_OVERHEAD_BYTES - 2);
}

/** Largest mailbox quota accepted: keeps every index the Lua scripts compute exact. */
const MAX_MAILBOX_QUOTA = 1_000_000_000;

/** Whole numbers are worded by the bound they break ("must be ≥ 1"). */
const int = intParser('bounds');

/** An unset or empty variable takes its default (or stays undefined when it has none). */
const orDefault = (def: string | undefined) => (v: unknown): unknown => (v === undefined || v === '' ? def : v);

const str = (def: string) => optional.transform((s) => s ?? def);

/** A ratio 0 < r ≤ 1 written as a plain decimal ("0.9", "1", ".75"). */
function ratio(def: number) {
  return z.preprocess(
    orDefault(String(def)),
    z
      .string()
      .regex(/^(?:[0-9]*\.[0-9]{1,12}|[0-9]{1,3})$/, 'must be a decimal number')
      .transform((s) => Number(s))
      .pipe(z.number().gt(0, 'must be > 0').max(1, 'must be ≤ 1')),
  );
}

/** A file seed: printable ASCII (it is hashed as ASCII bytes, docs/PROTOCOL.md §3.1), 1–1024 chars. */
const SEED_RE = /^[\x20-\x7e]{1,1024}$/;
const SEED_RULE = 'must be 1–1024 printable ASCII characters';
const required = (what: z.ZodString) => z.preprocess(orDefault(undefined), what);

/** One schema per variable, so every bad variable is reported, not only the first failing group. */
const ENV_SHAPE = {
  CORE_PORT: int(8081, 0, 65535),
  CORE_HOST: str('127.0.0.1'),
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
  REDIS_STARTUP_WAIT_SEC: int(10, 1, 600),
  REDIS_WAIT_REPLICAS: int(0, 0, 16),
  REDIS_WAIT_TIMEOUT_MS: int(500, 1, 60_000),
  LOG_LEVEL: logLevel,
  FILE_STORE_ENABLED: bool(DEFAULTS.fileStoreEnabled),
  MAX_FILE_BYTES_TOTAL: int(DEFAULTS.maxFileBytesTotal, 1),
  STORE_HIGH_WATER_RATIO: ratio(DEFAULTS.storeHighWaterRatio),
  FILE_SEED: z.preprocess(orDefault(undefined), z.string().regex(SEED_RE, SEED_RULE).optional()),
  FILE_SEED_FILE: optional,
  FILE_SWEEP_INTERVAL_SEC: int(60, 1, 86_400),
  CENSUS_INTERVAL_SEC: int(60, 1, 86_400),
  LOAD_PERIOD_SEC: int(60, 1, 3600),
  CORE_ADMIN_PORT: z.preprocess(
    orDefault(undefined),
    z
      .string()
      .regex(/^[0-9]{1,5}$/, 'must be a port number (0..65535)')
      .transform((s) => Number(s))
      .pipe(z.number().max(65535, 'must be ≤ 65535'))
      .optional(),
  ),
  CORE_WORKERS: z.preprocess(
    orDefault('auto'),
    z
      .string()
      .regex(/^(?:auto|[0-9]{1,6})$/, 'must be "auto" or a whole number ≥ 1')
      .transform((s, ctx): 'auto' | number => {
        if (s === 'auto') return 'auto';
        const n = Number(s);
        if (n >= 1 && n <= MAX_WORKERS) return n;
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: n < 1 ? 'must be ≥ 1 (or "auto")' : `must be ≤ ${MAX_WORKERS}` });
        return z.NEVER;
      }),
  ),
  // --- answer bounds ---
  MAX_DOWNLOAD_BYTES: int(4_194_304, 1),
  MAX_DOWNLOADS_PER_HPK: int(2, 1, 1000),
  MAX_DOWNLOAD_BYTES_PER_HPK_PER_SEC: int(8_388_608, 0),
  CORE_MAX_RESPONSE_BYTES_IN_FLIGHT: int(67_108_864, 1),
  CORE_WRITE_TIMEOUT_MS: int(20_000, 100, 3_600_000),
  // --- end answer bounds ---
  // --- TLS on the core link ---
  CORE_TLS_CERT_FILE: optional,
  CORE_TLS_KEY_FILE: optional,
  // --- end TLS ---
};

type ParsedEnv = EnvValues<typeof ENV_SHAPE>;

/** Constraints between variables, checked on whichever of their values parsed. */
function crossProblems(e: Partial<ParsedEnv>): string[] {
  const out: string[] = [];
  if (e.NONCE_CACHE_SEC !== undefined && e.NONCE_WINDOW_SEC !== undefined && e.NONCE_CACHE_SEC < 2 * e.NONCE_WINDOW_SEC) {
    out.push('NONCE_CACHE_SEC: must be ≥ 2 × NONCE_WINDOW_SEC');
  }
  if (e.CORE_ADMIN_PORT !== undefined && e.CORE_ADMIN_PORT !== 0 && e.CORE_ADMIN_PORT === e.CORE_PORT) {
    out.push('CORE_ADMIN_PORT: must differ from CORE_PORT');
  }
  if (e.MAX_CHUNK_SIZE !== undefined && e.MAX_COMMAND_BODY_BYTES !== undefined) {
    const min = 4 * Math.ceil(e.MAX_CHUNK_SIZE / 3) + 4096;
    if (e.MAX_COMMAND_BODY_BYTES < min) out.push(`MAX_COMMAND_BODY_BYTES: must be ≥ 4·⌈MAX_CHUNK_SIZE/3⌉ + 4096 = ${min}`);
  }
  // --- answer bounds ---
  if (e.MAX_DOWNLOAD_BYTES !== undefined && e.MAX_MESSAGE_BYTES !== undefined && e.CORE_MAX_RESPONSE_BYTES_IN_FLIGHT !== undefined) {
    const min = downloadAnswerBound(e.MAX_DOWNLOAD_BYTES, e.MAX_MESSAGE_BYTES);
    if (e.CORE_MAX_RESPONSE_BYTES_IN_FLIGHT < min) {
      out.push(`CORE_MAX_RESPONSE_BYTES_IN_FLIGHT: must hold one download answer, ≥ ${min} for MAX_DOWNLOAD_BYTES and MAX_MESSAGE_BYTES`);
    }
  }
  // --- end answer bounds ---
  // --- TLS on the core link ---
  if ((e.CORE_TLS_CERT_FILE === undefined) !== (e.CORE_TLS_KEY_FILE === undefined)) {
    out.push('CORE_TLS_CERT_FILE, CORE_TLS_KEY_FILE: set both or neither');
  }
  // --- end TLS ---
  return out;
}

export interface LoadOptions {
  /** Reads `FILE_SEED_FILE` (once, here at start-up). @default readFileSync(path, 'utf8') */
  readFile?: (path: string) => string;
  /** CPUs for `CORE_WORKERS=auto`. @default os.availableParallelism() */
  cpus?: () => number;
}

/** The seed from FILE_SEED or FILE_SEED_FILE (one trailing CRLF/LF of a mounted file dropped). */
function fileSeed(e: Partial<ParsedEnv>, readFile: (path: string) => string, problems: string[]): string | null {
  if (e.FILE_SEED !== undefined && e.FILE_SEED_FILE !== undefined) {
    problems.push('FILE_SEED, FILE_SEED_FILE: set at most one of them');
    return null;
  }
  if (e.FILE_SEED_FILE === undefined) return e.FILE_SEED ?? null;
  let text: string;
  try {
    text = readFile(e.FILE_SEED_FILE);
  } catch (err) {
    problems.push(`FILE_SEED_FILE: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    return null;
  }
  const seed = text.replace(/\r?\n$/, '');
  if (!SEED_RE.test(seed)) {
    problems.push(`FILE_SEED_FILE: its contents ${SEED_RULE}`);
    return null;
  }
  return seed;
}

/** Parses and validates the environment. Throws ConfigError listing every problem. */
export function loadConfig(env: Env, opts: LoadOptions = {}): Config {
  const { values: parsed, problems } = parseEnv(ENV_SHAPE, env);
  problems.push(...crossProblems(parsed));
  const seed = fileSeed(parsed, opts.readFile ?? ((path) => readFileSync(path, 'utf8')), problems);
  const topologyProblems: string[] = [];
  const redis = parseTopology(env, '', topologyProblems);
  if (redis === null && topologyProblems.length === 0) topologyProblems.push('REDIS_URL: is required (or REDIS_CLUSTER_NODES, or REDIS_SENTINELS with REDIS_SENTINEL_NAME)');
  problems.unshift(...topologyProblems);
  if (problems.length > 0 || redis === null) throw new ConfigError(problems);
  const e = parsed as ParsedEnv;
  return Object.freeze({
    port: e.CORE_PORT,
    host: e.CORE_HOST,
    redis,
    redisWaitReplicas: e.REDIS_WAIT_REPLICAS,
    redisWaitTimeoutMs: e.REDIS_WAIT_TIMEOUT_MS,
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
    redisStartupWaitSec: e.REDIS_STARTUP_WAIT_SEC,
    logLevel: e.LOG_LEVEL,
    fileStoreEnabled: e.FILE_STORE_ENABLED,
    maxFileBytesTotal: e.MAX_FILE_BYTES_TOTAL,
    storeHighWaterRatio: e.STORE_HIGH_WATER_RATIO,
    fileSeed: seed,
    fileSweepIntervalSec: e.FILE_SWEEP_INTERVAL_SEC,
    censusIntervalSec: e.CENSUS_INTERVAL_SEC,
    loadPeriodSec: e.LOAD_PERIOD_SEC,
    adminPort: e.CORE_ADMIN_PORT ?? null,
    workers: e.CORE_WORKERS === 'auto' ? autoWorkers((opts.cpus ?? availableParallelism)()) : e.CORE_WORKERS,
    maxDownloadBytes: e.MAX_DOWNLOAD_BYTES, // answer bounds
    maxDownloadsPerHpk: e.MAX_DOWNLOADS_PER_HPK, // answer bounds
    downloadBytesPerHpkPerSec: e.MAX_DOWNLOAD_BYTES_PER_HPK_PER_SEC, // answer bounds
    maxResponseBytesInFlight: e.CORE_MAX_RESPONSE_BYTES_IN_FLIGHT, // answer bounds
    writeTimeoutMs: e.CORE_WRITE_TIMEOUT_MS, // answer bounds
    tlsCertFile: e.CORE_TLS_CERT_FILE ?? null, // TLS on the core link
    tlsKeyFile: e.CORE_TLS_KEY_FILE ?? null, // TLS on the core link
  });
}
