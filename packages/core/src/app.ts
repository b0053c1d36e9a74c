/**
 * The core's HTTP application (node:http, no framework): health and metrics routes, the
 * internal-secret gate, `/internal/sessions`, `/internal/load`, and the proxied `/prove` and
 * `/command`. `createApp` builds it from its dependencies without listening, so tests mount it on
 * their own server with a fake clock. It owns the replica's load meter (load.ts) and metrics
 * (metrics.ts); the request path only adds numbers to them.
 *
 * `/livez` and `/readyz` need no secret, on the main port and on the admin port (`adminHandler`,
 * CORE_ADMIN_PORT). `/metrics` needs none either (docs/DESIGN.md: every core route except health and
 * metrics needs the secret; the core is on a private network): it is served on the admin port when
 * CORE_ADMIN_PORT is set, and then not on the main port; otherwise on the main port.
 *
 * `fail` is the one place that turns errors into responses: RelayError → its status and texts,
 * a store failure → 503 with Retry-After, anything else → 500 I and a log line.
 */
import { hash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  BodyTooLargeError,
  COMMON_HEADERS,
  CONSUMED_HANDSHAKE_HEADER,
  INTERNAL_LOAD_PATH,
  INTERNAL_SECRET_HEADER,
  INTERNAL_SESSIONS_PATH,
  TEXT_CONTENT_TYPE,
  isRelayError,
  normalizePath,
  readBody,
  routeApi,
  sendError,
  sendOk,
  sendPreflight,
  type Clock,
  type Crypto,
  type LoadReport,
} from '@zax/protocol';
import { runCommand, type CommandDeps } from './command.js';
import { createResponseGate, type ResponseGate } from './commands/download-gate.js';
import type { Config } from './config.js';
import { createFileSeed } from './file-seed.js';
import { mintSession, type MintDeps } from './internal-sessions.js';
import { createKeys } from './keys.js';
import { createLoadMeter, loadReport, loadTiming, type LoadMeter, type LoadTiming } from './load.js';
import { everyInterval, type Logger as Log } from '@zax/service';
import { createMetrics, errorStatus, type CoreMetrics, type RouteLabel } from './metrics.js';
import { prove, type ProveDeps, type ProveResult } from './prove.js';
import type { CoreRedis } from './redis.js';
import { storeProblem, type Durability } from '@zax/service';
import { createStoreGuard } from './store-guard.js';
import { StoreUnavailableError, createStores, isStoreUnavailable, storeCall } from './store/index.js';
import { createLoadStore, type LoadStore } from './store/load.js';

export interface AppDeps {
  readonly config: Config;
  readonly redis: CoreRedis;
  readonly clock: Clock;
  readonly crypto: Crypto;
  readonly log: Log;
  /** @default createMetrics() (without process metrics; main.ts turns those on) */
  readonly metrics?: CoreMetrics;
  /** This replica's id in the load figures. @default random */
  readonly replicaId?: string;
  /** Durable writes (REDIS_WAIT_REPLICAS > 0): main.ts builds it; without it writes do not wait. */
  readonly durable?: Durability<CoreRedis>;
  /** The maintenance jobs' health (jobs.ts), for /readyz: stale jobs are named there. @default none */
  readonly jobHealth?: () => readonly { readonly job: string; readonly stale: boolean }[];
}

export interface App {
  /** A node:http request listener. */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** The admin port's listener (CORE_ADMIN_PORT): `/livez`, `/readyz`, `/metrics`; 404 for anything else. */
  readonly adminHandler: (req: IncomingMessage, res: ServerResponse) => void;
  readonly metrics: CoreMetrics;
  /** This replica's load meter (its background loop runs from createApp to close). */
  readonly load: LoadMeter;
  readonly loadStore: LoadStore;
  readonly loadTiming: LoadTiming;
  /** The answer bytes and downloads in flight (commands/download-gate.ts). */
  readonly answers: ResponseGate;
  /** What `GET /internal/load` serves. */
  loadReport(): Promise<LoadReport>;
  /** Stops taking requests (503 from now on), resolves once in-flight requests have finished and the last load counts are flushed. */
  close(): Promise<void>;
}

const LIVEZ = '/livez';
const READYZ = '/readyz';
const METRICS = '/metrics';

/** The metrics and log label of a path: the known routes, or "other" (raw paths are never logged). */
function routeLabel(path: string): RouteLabel {
  switch (path) {
    case '/prove':
      return 'prove';
    case '/command':
      return 'command';
    case INTERNAL_SESSIONS_PATH:
      return 'internal_sessions';
    case INTERNAL_LOAD_PATH:
      return 'internal_load';
    case LIVEZ:
      return 'livez';
    case READYZ:
      return 'readyz';
    case METRICS:
      return 'metrics';
    default:
      return 'other';
  }
}

/** Routes whose durations make up the replica's latency p99 (the API work, not health or metrics). */
const TIMED: ReadonlySet<RouteLabel> = new Set<RouteLabel>(['prove', 'command', 'internal_sessions']);

/** One-shot SHA-256 (no Hash object per request). */
const digest = (s: string): Buffer => hash('sha256', s, 'buffer');

export function createApp(deps: AppDeps): App {
  const { config, redis, clock, crypto, log } = deps;
  const metrics = deps.metrics ?? createMetrics();
  const keys = createKeys(config.redisPrefix);
  const stores = createStores(redis, keys, config, metrics, deps.durable);
  const fileSeed = createFileSeed({ configured: config.fileSeed, redis, key: keys.fileSeed, randomBytes: crypto.randomBytes });
  const storeGuard = createStoreGuard(redis, { ratio: config.storeHighWaterRatio, retryAfterSec: config.busyRetryAfterSec, log, observer: metrics, clock });
  const timing = loadTiming(config.loadPeriodSec);
  const loadStore = createLoadStore(redis, keys, metrics);
  const meter = createLoadMeter({ store: loadStore, clock, timing, log, ...(deps.replicaId !== undefined ? { replicaId: deps.replicaId } : {}) });
  meter.start();
  metrics.localLoad(() => meter.local());
  const reportDeps = { store: loadStore, timing, clock, memory: () => storeGuard.memory() };
  // Built once: the request path passes these along instead of allocating them per request.
  const mintDeps: MintDeps = { stores, crypto, clock, log };
  const proveDeps: ProveDeps = { config, stores, crypto, clock, log };
  const commandDeps: CommandDeps = { config, stores, crypto, clock, log, fileSeed, storeGuard, metrics };
  const answers = createResponseGate({
    perHpk: config.maxDownloadsPerHpk,
    budgetBytes: config.maxResponseBytesInFlight,
    busyRetryAfterSec: config.busyRetryAfterSec,
    perHpkBytesPerSec: config.downloadBytesPerHpkPerSec,
  });
  const secretDigests = [config.internalSecret, config.internalSecretPrevious].filter((s): s is string => s !== null).map(digest);

  /** Constant-time against every accepted secret (digests make the lengths equal). */
  function secretOk(header: string | string[] | undefined): boolean {
    if (typeof header !== 'string') return false;
    const got = digest(header);
    let ok = false;
    for (const d of secretDigests) ok = timingSafeEqual(got, d) || ok;
    return ok;
  }

  function sendPlain(res: ServerResponse, status: number, body: string, extra: Record<string, string> = {}): void {
    res.writeHead(status, { ...COMMON_HEADERS, ...extra, 'content-type': TEXT_CONTENT_TYPE, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  function sendJson(res: ServerResponse, status: number, value: unknown): void {
    const body = JSON.stringify(value);
    res.writeHead(status, { 'cache-control': 'no-store', 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  // During an outage every request fails the same way: log the first, then at most one a second.
  const warnStoreUnavailable = everyInterval(1000, (suppressed, op: string, message: string) => {
    log.warn({ op, err: message, suppressed }, 'store unavailable');
  });

  function fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    if (isRelayError(err)) {
      log.debug({ code: err.code, why: err.logMessage }, 'request refused');
      sendError(res, err.code, err.retryAfterSec ?? config.busyRetryAfterSec);
    } else if (err instanceof BodyTooLargeError) {
      sendError(res, 'tooLarge', config.busyRetryAfterSec);
    } else if (isStoreUnavailable(err)) {
      warnStoreUnavailable(err.op, err.message);
      sendError(res, 'busy', config.busyRetryAfterSec);
    } else if (req.destroyed && !req.complete) {
      // The client went away while sending its body: nobody is left to answer.
      res.destroy();
    } else {
      log.error({ err: err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : String(err) }, 'internal error');
      sendError(res, 'internal', config.busyRetryAfterSec);
    }
  }

  async function serveMetrics(res: ServerResponse): Promise<void> {
    // The deployment's load figures (gauges) as /internal/load would serve them now; a Redis
    // failure leaves the last values and never fails the scrape.
    try {
      metrics.load(await loadReport(reportDeps));
    } catch {
      // keep the previous figures
    }
    let text: string;
    try {
      text = await metrics.registry.metrics();
    } catch (e) {
      // In a worker group the text is the primary's aggregate over every worker: a worker that does
      // not answer in time makes the scrape unavailable for now, not a fault of the core.
      log.warn({ err: e instanceof Error ? e.message : String(e) }, 'metrics unavailable');
      sendError(res, 'busy', config.busyRetryAfterSec);
      return;
    }
    res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  /** Whether `path` is /livez, /readyz or (where served) /metrics. */
  const isOps = (path: string, withMetrics: boolean): boolean => path === LIVEZ || path === READYZ || (withMetrics && path === METRICS);

  /** Answers a path for which `isOps` holds. */
  async function handleOps(path: string, res: ServerResponse): Promise<void> {
    if (path === LIVEZ) return sendPlain(res, 200, 'ok');
    if (path === READYZ) {
      // A cluster that is down or has slots no primary serves is not ready (nor is a lost primary).
      const problem = await storeCall('ping', () => storeProblem(redis), metrics);
      if (problem !== null) throw new StoreUnavailableError('ping', new Error(problem));
      // A stale job is named but keeps the core ready: the schedules are shared by every replica,
      // so failing readiness would take them all out together for a fault that traffic does not
      // cause and that the jobs heal themselves (packages/core/README.md "Maintenance jobs").
      const stale = deps.jobHealth?.().filter((j) => j.stale).map((j) => j.job) ?? [];
      return sendPlain(res, 200, stale.length === 0 ? 'ok' : `ok; stale jobs: ${stale.join(' ')}`);
    }
    return serveMetrics(res);
  }

  const metricsOnMain = config.adminPort === null;

  async function handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const url = req.url ?? '/';
    const method = req.method ?? '';

    if (isOps(path, metricsOnMain)) return handleOps(path, res);

    if (!secretOk(req.headers[INTERNAL_SECRET_HEADER])) {
      req.resume();
      res.writeHead(403, { ...COMMON_HEADERS, 'content-length': 0 });
      res.end();
      return;
    }

    if (path === INTERNAL_SESSIONS_PATH) {
      if (method !== 'POST') {
        res.writeHead(405, { ...COMMON_HEADERS, allow: 'POST', 'content-length': 0 });
        res.end();
        return;
      }
      const reply = await mintSession(mintDeps, await readBody(req, config.maxHandshakeBodyBytes));
      if (reply.status === 200) {
        meter.mint(clock.nowMs());
        metrics.mint('ok');
      } else {
        metrics.mint('proven');
      }
      return sendJson(res, reply.status, reply.body);
    }

    if (path === INTERNAL_LOAD_PATH) {
      req.resume();
      if (method !== 'GET' && method !== 'HEAD') {
        res.writeHead(405, { ...COMMON_HEADERS, allow: 'GET, HEAD', 'content-length': 0 });
        res.end();
        return;
      }
      const report = await loadReport(reportDeps);
      metrics.load(report);
      return sendJson(res, 200, report);
    }

    const route = routeApi(method, url);
    switch (route.kind) {
      case 'notFound':
        return sendError(res, 'notFound', config.busyRetryAfterSec);
      case 'wrongMethod':
        return sendError(res, 'methodNotAllowed', config.busyRetryAfterSec);
      case 'preflight':
        return sendPreflight(res);
      case 'api':
        break;
    }
    switch (route.path) {
      case '/prove': {
        meter.command(clock.nowMs());
        const body = await readBody(req, config.maxHandshakeBodyBytes);
        let result: ProveResult;
        try {
          // latin1: one char per byte, so line lengths are byte lengths and nothing is lost.
          result = await prove(proveDeps, body.toString('latin1'));
        } catch (e) {
          metrics.proof(errorStatus(e) >= 500 ? 'error' : 'failed');
          throw e;
        }
        metrics.proof('ok');
        res.setHeader(CONSUMED_HANDSHAKE_HEADER, result.consumedHandshake);
        return sendOk(res, result.body);
      }
      case '/command': {
        meter.command(clock.nowMs());
        const body = await readBody(req, config.maxCommandBodyBytes);
        // This request's share of the answer bounds, released when `res` closes (DEVIATION D19).
        const gate = answers.request(res);
        const out = await runCommand(commandDeps, body.toString('latin1'), gate);
        gate.answer(Buffer.byteLength(out));
        return sendOk(res, out);
      }
      case '/start_session':
      case '/verify_session':
        // Answered by the gatekeeper; never forwarded to the core.
        req.resume();
        return sendError(res, 'notFound', config.busyRetryAfterSec);
    }
  }

  let inFlight = 0;
  let closing = false;
  const drained: (() => void)[] = [];

  /** Wraps a route handler: in-flight accounting for close(), errors, metrics, the debug log. */
  const serve =
    (inner: (req: IncomingMessage, res: ServerResponse, path: string) => Promise<void>) =>
    (req: IncomingMessage, res: ServerResponse): void => {
      const started = performance.now();
      const path = normalizePath(req.url ?? '/');
      const route = routeLabel(path);
      if (closing) {
        req.resume();
        res.setHeader('connection', 'close');
        sendError(res, 'busy', config.busyRetryAfterSec);
        metrics.request(route, res.statusCode, (performance.now() - started) / 1000);
        return;
      }
      inFlight++;
      inner(req, res, path)
        .catch((err: unknown) => fail(req, res, err))
        .catch((err: unknown) => {
          log.error({ err: err instanceof Error ? err.message : String(err) }, 'error while answering an error');
          res.destroy();
        })
        .finally(() => {
          const ms = performance.now() - started;
          metrics.request(route, res.statusCode, ms / 1000);
          if (TIMED.has(route)) meter.latency(ms);
          log.debug({ method: req.method, route, status: res.statusCode, ms: Math.round(ms) }, 'request');
          inFlight--;
          if (inFlight === 0) drained.splice(0).forEach((f) => f());
        });
    };

  const handler = serve(handle);
  const adminHandler = serve(async (req, res, path) => {
    req.resume();
    if (isOps(path, true)) return handleOps(path, res);
    sendError(res, 'notFound', config.busyRetryAfterSec);
  });

  let stopped: Promise<void> | null = null;
  return {
    handler,
    adminHandler,
    metrics,
    load: meter,
    loadStore,
    loadTiming: timing,
    answers,
    loadReport: () => loadReport(reportDeps),
    close() {
      closing = true;
      const idle = inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => drained.push(resolve));
      return (stopped ??= idle.then(() => meter.stop()));
    },
  };
}
