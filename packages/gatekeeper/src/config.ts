/**
 * The gatekeeper's configuration: every environment variable of docs/CONTRACT.md that this tier
 * reads, validated once with zod into a frozen Config. A bad value is a ConfigError that lists every
 * problem in plain words; main.ts prints it and exits 1 (docs/PROTOCOL.md §7: refuse to start).
 * Error messages never echo a secret or a URL (a URL may hold a password).
 */
import { isIP } from 'node:net';
import { DEFAULTS, MAX_DIFFICULTY } from '@zax/protocol';
import { z } from 'zod';
import { ConfigError, bool, hasTopology, intParser, logLevel, num, oneOf, optional as opt, parseEnv, parseTopology, type Env, type EnvValues, type LogLevel, type RedisTopology } from '@zax/service';

export { ConfigError };

export interface Config {
  /** @default 8080 */
  readonly port: number;
  /** @default '0.0.0.0' */
  readonly host: string;
  /** Base URL of the core, without a trailing slash. @default 'http://127.0.0.1:8081' */
  readonly coreUrl: string;
  /**
   * The edge store (@zax/service topology.ts): `EDGE_REDIS_URL`, `EDGE_REDIS_CLUSTER_NODES` or
   * `EDGE_REDIS_SENTINELS` + `EDGE_REDIS_SENTINEL_NAME` (with `EDGE_REDIS_USERNAME`, `…_PASSWORD`,
   * `…_SENTINEL_PASSWORD`, `…_TLS`); without any of them, the core store's `REDIS_*` settings.
   */
  readonly edgeRedis: RedisTopology;
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
  /** @default 10 (`REDIS_STARTUP_WAIT_SEC`): how long start-up waits for a cluster or sentinel edge store to answer. */
  readonly redisStartupWaitSec: number;
  /** @default 'info' */
  readonly logLevel: LogLevel;

  /** Token-bucket size for /start_session + /verify_session per client; 0 = unlimited. @default 120 */
  readonly handshakeBurstPerIp: number;
  /** Refill of that bucket, tokens per minute. @default 120 */
  readonly handshakeRatePerIpPerMin: number;
  /** Token-bucket size for /prove + /command per client; 0 = unlimited. @default 600 */
  readonly requestBurstPerIp: number;
  /** Refill of that bucket, tokens per minute. @default 1200 */
  readonly requestRatePerIpPerMin: number;
  /** Concurrent API requests before 503; 0 = unlimited. @default 1024 */
  readonly maxInFlightRequests: number;
  /** Request-body bytes in flight in this process before 503 (busy). @default 268435456 (256 MiB) */
  readonly maxBodyBytesInFlight: number;
  /** Request-body bytes in flight from one client address before 429. @default 16777216 (16 MiB) */
  readonly maxBodyBytesInFlightPerIp: number;
  /** A body slower than this on average, once the grace is over, is cut off with 408. @default 16384 */
  readonly bodyMinBytesPerSec: number;
  /** Grace before the minimum body rate applies. @default 2000 */
  readonly bodyGraceMs: number;
  /** A body with no byte for this long is cut off with 408. @default 5000 */
  readonly bodyIdleTimeoutMs: number;
  /** Core answers held whole for slow clients, bytes; past it answers stream. @default 268435456 */
  readonly maxResponseBytesHeld: number;
  /** A client that accepts no byte of its response for this long is dropped. @default 10000 */
  readonly writeTimeoutMs: number;
  /** Serve /metrics on PORT when ADMIN_PORT is unset (throttled like a request). @default false */
  readonly metricsOnPublicPort: boolean;
  /** Peers whose forwarding header is believed (CIDRs). @default [] */
  readonly trustedProxies: readonly Cidr[];
  /** Which header a trusted proxy writes. @default 'x-forwarded-for' */
  readonly trustedProxyHeader: 'x-forwarded-for' | 'forwarded';
  /** IPv6 clients are grouped by this prefix length. @default 64 */
  readonly ipv6PrefixLength: number;

  /** Adaptive difficulty period in minutes; 0 = off (static DIFFICULTY). @default 0 */
  readonly difficultyPeriodMin: number;
  /** @default 100 */
  readonly difficultyMinRequests: number;
  /** @default 2 */
  readonly difficultyOverloadFactor: number;
  /** @default 1 */
  readonly difficultyStep: number;
  /** Highest difficulty the controller sets. @default 20 */
  readonly difficultyMax: number;
  /** Core p99 latency above this raises the difficulty. @default 1000 */
  readonly difficultyLatencyP99Ms: number;
  /** Core event-loop utilisation above this raises the difficulty. @default 0.85 */
  readonly difficultyEventLoopUtilization: number;
  /** Core Redis used/maxmemory above this raises the difficulty. @default 0.8 */
  readonly difficultyMemoryRatio: number;
  /** The core-driven raise is released only when every signal is below threshold × this. @default 0.75 */
  readonly difficultyReleaseRatio: number;
  /** Lifetime of the controller lease in the edge Redis; renewed at a third of it. @default 10000 */
  readonly difficultyLeaseMs: number;
  /** How long a replica uses the difficulty it read from the edge Redis. @default 1000 */
  readonly difficultyCacheMs: number;

  /** `/livez` `/readyz` `/metrics` on this port too; `/metrics` only here. @default null (none) */
  readonly adminPort: number | null;
  /** Client addresses in logs. @default false */
  readonly logClientIps: boolean;

  /**
   * PEM certificate chain and key for TLS on `PORT` (`TLS_CERT_FILE`, `TLS_KEY_FILE`: both or
   * neither). Read at start, and again on SIGHUP or when either file changes. @default null (plain HTTP)
   */
  readonly tlsCertFile: string | null;
  readonly tlsKeyFile: string | null;
  /** Poll period of the watch on those two files; 0 = reload on SIGHUP only. @default 1000 */
  readonly tlsWatchIntervalMs: number;
  /** `Strict-Transport-Security: max-age=…` on responses to HTTPS requests; 0 = no header. @default 31536000 */
  readonly hstsMaxAgeSec: number;
  /**
   * Production mode: API requests over plain HTTP are refused (403) unless they come from loopback
   * or from a trusted proxy that says the client used HTTPS. Health and metrics are exempt. @default false
   */
  readonly requireHttps: boolean;
  /** Extra CA (PEM file) trusted for an `https://` CORE_URL, on top of the system roots. @default null */
  readonly coreCaFile: string | null;
  /** The relay self-test page at /dashboard (dashboard.ts) on the public port. @default false */
  readonly dashboard: boolean;
}

/** A parsed CIDR: `address` is canonical, `prefix` its length. */
export interface Cidr {
  readonly family: 'ipv4' | 'ipv6';
  readonly address: string;
  readonly prefix: number;
}

/** Whole numbers are worded with their range and the value given. */
const int = intParser('range');

/** "a.b.c.d/n", "v6::/n" or a bare address (a /32 or /128), comma-separated. */
const cidrs = opt.transform((s, ctx): readonly Cidr[] => {
  if (s === undefined) return Object.freeze([]);
  const out: Cidr[] = [];
  for (const raw of s.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const slash = item.indexOf('/');
    const address = slash === -1 ? item : item.slice(0, slash);
    const v = isIP(address);
    const max = v === 4 ? 32 : 128;
    const prefixText = slash === -1 ? String(max) : item.slice(slash + 1);
    const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
    if (v === 0 || !(prefix >= 0 && prefix <= max)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${item}" is not an address or CIDR (e.g. 10.0.0.0/8, fd00::/8)` });
      return z.NEVER;
    }
    out.push(Object.freeze({ family: v === 4 ? 'ipv4' : 'ipv6', address, prefix }));
  }
  return Object.freeze(out);
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

/** Largest `/prove` body (382 bytes) plus a trailing CRLF: a smaller handshake limit breaks /prove. */
const MIN_HANDSHAKE_BODY_BYTES = 384;

const ENV_SHAPE = {
  PORT: int(8080, 0, 65535),
  HOST: opt.transform((s) => s ?? '0.0.0.0'),
  CORE_URL: url(['http:', 'https:']).transform((s) => (s ?? 'http://127.0.0.1:8081').replace(/\/+$/, '')),
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
  REDIS_STARTUP_WAIT_SEC: int(10, 1, 600),
  HANDSHAKE_BURST_PER_IP: int(120, 0, 1_000_000),
  HANDSHAKE_RATE_PER_IP_PER_MIN: int(120, 1, 60_000_000),
  REQUEST_BURST_PER_IP: int(600, 0, 1_000_000),
  REQUEST_RATE_PER_IP_PER_MIN: int(1200, 1, 60_000_000),
  MAX_IN_FLIGHT_REQUESTS: int(1024, 0, 1_000_000),
  MAX_BODY_BYTES_IN_FLIGHT: int(256 * 1024 * 1024, 1, 2 ** 40),
  MAX_BODY_BYTES_IN_FLIGHT_PER_IP: int(16 * 1024 * 1024, 1, 2 ** 40),
  BODY_MIN_BYTES_PER_SEC: int(16_384, 1, 2 ** 31 - 1),
  BODY_GRACE_MS: int(2000, 0, 600_000),
  BODY_IDLE_TIMEOUT_MS: int(5000, 100, 600_000),
  MAX_RESPONSE_BYTES_HELD: int(256 * 1024 * 1024, 0, 2 ** 40),
  WRITE_TIMEOUT_MS: int(10_000, 100, 600_000),
  METRICS_ON_PUBLIC_PORT: bool(false),
  TRUSTED_PROXIES: cidrs,
  TRUSTED_PROXY_HEADER: oneOf(['x-forwarded-for', 'forwarded'] as const, 'x-forwarded-for', (s) => s.toLowerCase()),
  IPV6_PREFIX_LENGTH: int(64, 1, 128),
  DIFFICULTY_PERIOD_MIN: num(0, 0, 1440),
  DIFFICULTY_MIN_REQUESTS: int(100, 1, 1_000_000_000),
  DIFFICULTY_OVERLOAD_FACTOR: num(2, 1, 1000, true),
  DIFFICULTY_STEP: num(1, 0, MAX_DIFFICULTY, true),
  DIFFICULTY_MAX: int(20, 0, MAX_DIFFICULTY),
  DIFFICULTY_LATENCY_P99_MS: num(1000, 0, 3_600_000, true),
  DIFFICULTY_EVENT_LOOP_UTILIZATION: num(0.85, 0, 1, true),
  DIFFICULTY_MEMORY_RATIO: num(0.8, 0, 1, true),
  DIFFICULTY_RELEASE_RATIO: num(0.75, 0, 1),
  DIFFICULTY_LEASE_MS: int(10_000, 300, 600_000),
  DIFFICULTY_CACHE_MS: int(1000, 0, 60_000),
  ADMIN_PORT: opt.transform((s, ctx): number | null => {
    if (s === undefined) return null;
    const n = /^\d+$/.test(s) ? Number(s) : NaN;
    if (!(n >= 0 && n <= 65535)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `must be a whole number from 0 to 65535, got "${s}"` });
      return z.NEVER;
    }
    return n;
  }),
  LOG_CLIENT_IPS: bool(false),
  TLS_CERT_FILE: opt,
  TLS_KEY_FILE: opt,
  TLS_WATCH_INTERVAL_MS: int(1000, 0, 3_600_000),
  // Up to two years (the HSTS preload list asks for at least one).
  HSTS_MAX_AGE_SEC: int(31_536_000, 0, 63_072_000),
  REQUIRE_HTTPS: bool(false),
  CORE_CA_FILE: opt,
  DASHBOARD: bool(false),
  LOG_LEVEL: logLevel,
};

/** Validates the environment into a frozen Config, or throws a ConfigError listing every problem. */
export function loadConfig(env: Env): Config {
  const storeProblems: string[] = [];
  const edgeRedis = parseTopology(env, hasTopology(env, 'EDGE_') ? 'EDGE_' : '', storeProblems);
  if (edgeRedis === null && storeProblems.length === 0) {
    storeProblems.push('EDGE_REDIS_URL: is required (or REDIS_URL, or a cluster or sentinel topology: EDGE_REDIS_CLUSTER_NODES, EDGE_REDIS_SENTINELS, …)');
  }
  const parsed = parseEnv(ENV_SHAPE, env);
  if (parsed.problems.length > 0) throw new ConfigError([...parsed.problems, ...storeProblems]);
  const e = parsed.values as EnvValues<typeof ENV_SHAPE>;
  const problems: string[] = [...storeProblems];
  const minCommandBody = 4 * Math.ceil(e.MAX_CHUNK_SIZE / 3) + 4096;
  if (e.MAX_COMMAND_BODY_BYTES < minCommandBody) {
    problems.push(`MAX_COMMAND_BODY_BYTES: must be at least 4·⌈MAX_CHUNK_SIZE/3⌉ + 4096 = ${minCommandBody}`);
  }
  // A budget below the largest body would refuse every upload of that size.
  if (e.MAX_BODY_BYTES_IN_FLIGHT_PER_IP < e.MAX_COMMAND_BODY_BYTES) {
    problems.push(`MAX_BODY_BYTES_IN_FLIGHT_PER_IP: must be at least MAX_COMMAND_BODY_BYTES (${e.MAX_COMMAND_BODY_BYTES})`);
  }
  if (e.MAX_BODY_BYTES_IN_FLIGHT < e.MAX_BODY_BYTES_IN_FLIGHT_PER_IP) {
    problems.push(`MAX_BODY_BYTES_IN_FLIGHT: must be at least MAX_BODY_BYTES_IN_FLIGHT_PER_IP (${e.MAX_BODY_BYTES_IN_FLIGHT_PER_IP})`);
  }
  if (e.DIFFICULTY_PERIOD_MIN > 0 && e.DIFFICULTY_MAX < e.DIFFICULTY) {
    problems.push(`DIFFICULTY_MAX: must be at least DIFFICULTY (${e.DIFFICULTY}) when adaptive difficulty is on`);
  }
  if (e.ADMIN_PORT !== null && e.ADMIN_PORT !== 0 && e.ADMIN_PORT === e.PORT) {
    problems.push('ADMIN_PORT: must differ from PORT');
  }
  if ((e.TLS_CERT_FILE === undefined) !== (e.TLS_KEY_FILE === undefined)) {
    problems.push(`${e.TLS_CERT_FILE === undefined ? 'TLS_CERT_FILE' : 'TLS_KEY_FILE'}: must be set together with ${e.TLS_CERT_FILE === undefined ? 'TLS_KEY_FILE' : 'TLS_CERT_FILE'}`);
  }
  // An extra CA with a plain-HTTP core is a half-done switch to TLS: the secret would still travel
  // in the clear. Refuse it rather than guess.
  if (e.CORE_CA_FILE !== undefined && new URL(e.CORE_URL).protocol !== 'https:') {
    problems.push('CORE_CA_FILE: is only used with an https:// CORE_URL');
  }
  if (problems.length > 0 || edgeRedis === null) throw new ConfigError(problems);
  return Object.freeze({
    port: e.PORT,
    host: e.HOST,
    coreUrl: e.CORE_URL,
    edgeRedis,
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
    redisStartupWaitSec: e.REDIS_STARTUP_WAIT_SEC,
    logLevel: e.LOG_LEVEL,
    handshakeBurstPerIp: e.HANDSHAKE_BURST_PER_IP,
    handshakeRatePerIpPerMin: e.HANDSHAKE_RATE_PER_IP_PER_MIN,
    requestBurstPerIp: e.REQUEST_BURST_PER_IP,
    requestRatePerIpPerMin: e.REQUEST_RATE_PER_IP_PER_MIN,
    maxInFlightRequests: e.MAX_IN_FLIGHT_REQUESTS,
    maxBodyBytesInFlight: e.MAX_BODY_BYTES_IN_FLIGHT,
    maxBodyBytesInFlightPerIp: e.MAX_BODY_BYTES_IN_FLIGHT_PER_IP,
    bodyMinBytesPerSec: e.BODY_MIN_BYTES_PER_SEC,
    bodyGraceMs: e.BODY_GRACE_MS,
    bodyIdleTimeoutMs: e.BODY_IDLE_TIMEOUT_MS,
    maxResponseBytesHeld: e.MAX_RESPONSE_BYTES_HELD,
    writeTimeoutMs: e.WRITE_TIMEOUT_MS,
    metricsOnPublicPort: e.METRICS_ON_PUBLIC_PORT,
    trustedProxies: e.TRUSTED_PROXIES,
    trustedProxyHeader: e.TRUSTED_PROXY_HEADER,
    ipv6PrefixLength: e.IPV6_PREFIX_LENGTH,
    difficultyPeriodMin: e.DIFFICULTY_PERIOD_MIN,
    difficultyMinRequests: e.DIFFICULTY_MIN_REQUESTS,
    difficultyOverloadFactor: e.DIFFICULTY_OVERLOAD_FACTOR,
    difficultyStep: e.DIFFICULTY_STEP,
    difficultyMax: e.DIFFICULTY_MAX,
    difficultyLatencyP99Ms: e.DIFFICULTY_LATENCY_P99_MS,
    difficultyEventLoopUtilization: e.DIFFICULTY_EVENT_LOOP_UTILIZATION,
    difficultyMemoryRatio: e.DIFFICULTY_MEMORY_RATIO,
    difficultyReleaseRatio: e.DIFFICULTY_RELEASE_RATIO,
    difficultyLeaseMs: e.DIFFICULTY_LEASE_MS,
    difficultyCacheMs: e.DIFFICULTY_CACHE_MS,
    adminPort: e.ADMIN_PORT,
    logClientIps: e.LOG_CLIENT_IPS,
    tlsCertFile: e.TLS_CERT_FILE ?? null,
    tlsKeyFile: e.TLS_KEY_FILE ?? null,
    tlsWatchIntervalMs: e.TLS_WATCH_INTERVAL_MS,
    hstsMaxAgeSec: e.HSTS_MAX_AGE_SEC,
    requireHttps: e.REQUIRE_HTTPS,
    coreCaFile: e.CORE_CA_FILE ?? null,
    dashboard: e.DASHBOARD,
  });
}
