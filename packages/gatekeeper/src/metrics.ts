/**
 * The gatekeeper's Prometheus metrics (prom-client), all named `zax_gatekeeper_*` in one registry
 * per app (no global registry: tests run several apps in one process). Labels hold only fixed,
 * low-cardinality values (route names, status codes, budget names, reasons): never an hpk, an IP,
 * a token or a nonce (docs/DESIGN.md "Conventions"). Hot-path children are resolved once and cached, so recording a
 * request allocates nothing.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { createRegistry, eventLoopUtilizationGauge, redisLatency, tlsLoadMetrics, type LatencySink } from '@zax/service';
import { ROUTE_LABELS, type RouteLabel } from './routes.js';

export const METRIC_PREFIX = 'zax_gatekeeper_';

export type { RouteLabel };

export type Budget = 'handshake' | 'request';

/** Why a request body was not read whole (limits.ts). */
export type BodyRefusal = 'process' | 'address' | 'slow';

/** Why a /verify_session failed. */
export type VerifyFailure = 'malformed' | 'unknown_handshake' | 'wrong_answer' | 'proven' | 'unavailable';

/** Edge-Redis operations whose latency is measured. */
export const REDIS_OPS = [
  'throttle',
  'start_session',
  'read_handshake',
  'set_session_pk',
  'delete_handshake',
  'difficulty_read',
  'difficulty_count',
  'difficulty_counts_read',
  'difficulty_lease',
  'difficulty_write',
  'ping',
] as const;
export type RedisOp = (typeof REDIS_OPS)[number];

export interface MetricsOptions {
  /** Process metrics (CPU, memory, event-loop lag, GC) under the same prefix. @default false */
  collectDefault?: boolean;
}

export interface GatekeeperMetrics {
  readonly registry: Registry;
  /** Records one finished request. */
  request(route: RouteLabel, status: number, seconds: number): void;
  handshakeStarted(): void;
  handshakeVerified(): void;
  handshakeFailed(reason: VerifyFailure): void;
  powFailure(): void;
  sessionMinted(): void;
  throttled(budget: Budget): void;
  overloaded(): void;
  proxied(route: 'prove' | 'command', status: number): void;
  /** A timer sink for one Redis operation (resolve once, call per operation). */
  redis(op: RedisOp): LatencySink;
  /** In-flight API requests, read at scrape time. */
  inFlight(read: () => number): void;
  /** The difficulty this replica announces, read at scrape time. */
  difficulty(read: () => number): void;
  /** Request-body bytes reserved and response bytes held whole, read at scrape time. */
  bytesInFlight(readBody: () => number, readResponse: () => number): void;
  /** A request body refused by a budget (503 process, 429 address) or cut off as too slow (408). */
  bodyRefused(reason: BodyRefusal): void;
  /** A client dropped for accepting no byte of its response within WRITE_TIMEOUT_MS. */
  writeTimeout(): void;
  /** DIFFICULTY_MAX while adaptive difficulty is on, 0 while the difficulty is fixed ("pinned at max" alerts). */
  difficultyMax(max: number): void;
  /** 1 while this replica holds the difficulty-controller lease. */
  setLeader(leader: boolean): void;
  difficultyEvaluated(): void;
  coreLoadPoll(outcome: 'ok' | 'unavailable'): void;
  /** The core's figures from the last successful poll (leader only). */
  coreLoad(latencyP99Ms: number, eventLoopUtilization: number, memoryRatio: number): void;
  /** An API request refused for coming over plain HTTP (REQUIRE_HTTPS). */
  insecureRefused(): void;
  /** A TLS certificate load (start-up or reload) and the end of validity of the certificate in use. */
  tlsLoad(outcome: 'ok' | 'failed', validToMs: number): void;
}

export function createMetrics(opts: MetricsOptions = {}): GatekeeperMetrics {
  const registry = createRegistry(METRIC_PREFIX, opts.collectDefault === true);
  if (opts.collectDefault === true) eventLoopUtilizationGauge(registry, METRIC_PREFIX);
  const registers = [registry];

  const duration = new Histogram({
    name: `${METRIC_PREFIX}http_request_duration_seconds`,
    help: 'Time from request to response headers, by route and status',
    labelNames: ['route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  const started = new Counter({ name: `${METRIC_PREFIX}handshakes_started_total`, help: 'Successful /start_session calls', registers });
  const verified = new Counter({ name: `${METRIC_PREFIX}handshakes_verified_total`, help: 'Successful /verify_session calls', registers });
  const failed = new Counter({
    name: `${METRIC_PREFIX}handshakes_failed_total`,
    help: 'Failed /verify_session calls, by reason',
    labelNames: ['reason'] as const,
    registers,
  });
  const pow = new Counter({ name: `${METRIC_PREFIX}pow_failures_total`, help: 'Handshake answers that met none of the accepted difficulties', registers });
  const minted = new Counter({ name: `${METRIC_PREFIX}sessions_minted_total`, help: 'Relay session key pairs minted by the core for a verify', registers });
  const throttled = new Counter({
    name: `${METRIC_PREFIX}throttled_requests_total`,
    help: 'Requests answered 429 by the per-client token buckets, by budget',
    labelNames: ['budget'] as const,
    registers,
  });
  const overloaded = new Counter({
    name: `${METRIC_PREFIX}overloaded_requests_total`,
    help: 'Requests answered 503 because MAX_IN_FLIGHT_REQUESTS were in flight',
    registers,
  });
  const proxied = new Counter({
    name: `${METRIC_PREFIX}proxied_requests_total`,
    help: '/prove and /command requests forwarded to the core, by route and the status returned',
    labelNames: ['route', 'status'] as const,
    registers,
  });
  const latency = redisLatency(registry, METRIC_PREFIX, 'Edge Redis round trips, by operation (failures included)');
  let readInFlight = (): number => 0;
  new Gauge({
    name: `${METRIC_PREFIX}in_flight_requests`,
    help: 'API requests being handled',
    registers,
    collect() {
      this.set(readInFlight());
    },
  });
  let readBodyBytes = (): number => 0;
  let readResponseBytes = (): number => 0;
  new Gauge({
    name: `${METRIC_PREFIX}body_bytes_in_flight`,
    help: 'Request-body bytes reserved against MAX_BODY_BYTES_IN_FLIGHT',
    registers,
    collect() {
      this.set(readBodyBytes());
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}response_bytes_held`,
    help: 'Core answers held whole for clients, bytes (bounded by MAX_RESPONSE_BYTES_HELD)',
    registers,
    collect() {
      this.set(readResponseBytes());
    },
  });
  const bodyRefused = new Counter({
    name: `${METRIC_PREFIX}body_refused_total`,
    help: 'Request bodies refused by a budget (process: 503, address: 429) or cut off as too slow (slow: 408)',
    labelNames: ['reason'] as const,
    registers,
  });
  const bodyRefusedChildren: Record<BodyRefusal, Counter.Internal> = {
    process: bodyRefused.labels('process'),
    address: bodyRefused.labels('address'),
    slow: bodyRefused.labels('slow'),
  };
  const writeTimeouts = new Counter({
    name: `${METRIC_PREFIX}write_timeouts_total`,
    help: 'Clients dropped for accepting no byte of their response within WRITE_TIMEOUT_MS',
    registers,
  });
  let readDifficulty = (): number => 0;
  new Gauge({
    name: `${METRIC_PREFIX}difficulty`,
    help: 'Proof-of-work difficulty this replica announces',
    registers,
    collect() {
      this.set(readDifficulty());
    },
  });
  const difficultyMax = new Gauge({ name: `${METRIC_PREFIX}difficulty_max`, help: 'DIFFICULTY_MAX, the highest difficulty the controller may announce; 0 while adaptive difficulty is off', registers });
  const leader = new Gauge({ name: `${METRIC_PREFIX}difficulty_leader`, help: '1 while this replica holds the difficulty-controller lease', registers });
  const evaluations = new Counter({ name: `${METRIC_PREFIX}difficulty_evaluations_total`, help: 'Difficulty periods evaluated by this replica as leader', registers });
  const polls = new Counter({
    name: `${METRIC_PREFIX}core_load_polls_total`,
    help: 'GET /internal/load polls of the core, by outcome',
    labelNames: ['outcome'] as const,
    registers,
  });
  const coreP99 = new Gauge({ name: `${METRIC_PREFIX}core_latency_p99_seconds`, help: "The core's worst p99 request latency at the last poll", registers });
  const coreElu = new Gauge({ name: `${METRIC_PREFIX}core_event_loop_utilization`, help: "The core's worst event-loop utilisation at the last poll", registers });
  const coreMem = new Gauge({ name: `${METRIC_PREFIX}core_redis_memory_ratio`, help: "Core Redis used/max memory at the last poll (0 without a limit)", registers });

  const insecure = new Counter({
    name: `${METRIC_PREFIX}insecure_requests_refused_total`,
    help: 'API requests refused with 403 for coming over plain HTTP (REQUIRE_HTTPS)',
    registers,
  });
  const tlsLoad = tlsLoadMetrics(registry, METRIC_PREFIX);

  // Children resolved once: the hot path then only adds numbers.
  const durationChildren = new Map<number, Histogram.Internal<'route' | 'status'>>();
  const routeIndex = new Map<RouteLabel, number>(ROUTE_LABELS.map((r, i) => [r, i]));
  const failedChildren = new Map<VerifyFailure, Counter.Internal>();
  const throttledChildren: Record<Budget, Counter.Internal> = {
    handshake: throttled.labels('handshake'),
    request: throttled.labels('request'),
  };
  const proxiedChildren = new Map<number, Counter.Internal>();
  const pollChildren = { ok: polls.labels('ok'), unavailable: polls.labels('unavailable') };

  return {
    registry,
    request(route, status, seconds) {
      const key = routeIndex.get(route)! * 1000 + status;
      let child = durationChildren.get(key);
      if (child === undefined) durationChildren.set(key, (child = duration.labels(route, String(status))));
      child.observe(seconds);
    },
    handshakeStarted: () => started.inc(),
    handshakeVerified: () => verified.inc(),
    handshakeFailed(reason) {
      let child = failedChildren.get(reason);
      if (child === undefined) failedChildren.set(reason, (child = failed.labels(reason)));
      child.inc();
    },
    powFailure: () => pow.inc(),
    sessionMinted: () => minted.inc(),
    throttled: (budget) => throttledChildren[budget].inc(),
    overloaded: () => overloaded.inc(),
    proxied(route, status) {
      const key = (route === 'prove' ? 0 : 1000) + status;
      let child = proxiedChildren.get(key);
      if (child === undefined) proxiedChildren.set(key, (child = proxied.labels(route, String(status))));
      child.inc();
    },
    redis: (op) => latency.sink(op),
    inFlight(read) {
      readInFlight = read;
    },
    difficulty(read) {
      readDifficulty = read;
    },
    bytesInFlight(body, response) {
      readBodyBytes = body;
      readResponseBytes = response;
    },
    bodyRefused: (reason) => bodyRefusedChildren[reason].inc(),
    writeTimeout: () => writeTimeouts.inc(),
    difficultyMax: (max) => difficultyMax.set(max),
    setLeader: (l) => leader.set(l ? 1 : 0),
    difficultyEvaluated: () => evaluations.inc(),
    coreLoadPoll: (outcome) => pollChildren[outcome].inc(),
    coreLoad(latencyP99Ms, elu, memoryRatio) {
      coreP99.set(latencyP99Ms / 1000);
      coreElu.set(elu);
      coreMem.set(memoryRatio);
    },
    insecureRefused: () => insecure.inc(),
    tlsLoad,
  };
}
