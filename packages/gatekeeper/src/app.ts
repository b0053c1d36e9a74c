/**
 * The gatekeeper's request handlers (node:http, no framework): health and metrics, routing
 * (docs/PROTOCOL.md §2.1), then in the order of §6.3 overload (503, MAX_IN_FLIGHT_REQUESTS) and per-client
 * throttling (429), then body limits (413, DEVIATION D11), the two handshake endpoints answered here,
 * and /prove and /command forwarded to the core. The one place that turns errors into responses: a
 * RelayError becomes its status and fixed texts; anything else is logged and answered 503, never 500
 * (the gatekeeper's only faults are unavailable dependencies), and nothing a client sends can throw
 * past here. Health and metrics are never throttled or counted as in flight.
 *
 * HTTPS (transport.ts): responses to HTTPS requests carry HSTS (HSTS_MAX_AGE_SEC); in production
 * mode (REQUIRE_HTTPS) an API request over plain HTTP from the network is refused with 403 before
 * routing, health and metrics excepted. The app does not care whether TLS is terminated by main.ts
 * or by a trusted proxy; it reads `socket.encrypted` and the proxy's header.
 */
import { storeProblem, timed, type Logger } from '@zax/service';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  API_PATHS,
  COMMON_HEADERS,
  BodyTooLargeError,
  RelayError,
  isRelayError,
  normalizePath,
  routeApi,
  sendError,
  sendOk,
  sendPreflight,
  type ApiPath,
  type Clock,
} from '@zax/protocol';
import { clientIdentity } from './client-ip.js';
import type { Config } from './config.js';
import { createCoreClient } from './core-client.js';
import { adaptiveDifficulty, type DifficultyController } from './difficulty-adaptive.js';
import { difficultyStore } from './difficulty-store.js';
import { staticDifficulty, type DifficultyPolicy, type DifficultyProvider } from './difficulty.js';
import { forward, type ForwardDeps } from './forward.js';
import type { HandshakeDeps } from './handshake/deps.js';
import { startSession } from './handshake/start-session.js';
import { handshakeStore } from './handshake/store.js';
import { VerifyError, verifySession } from './handshake/verify-session.js';
import { edgeKeys } from './keys.js';
import { BodyRefused, BodyWatch, ByteBudget, SMALL_BODY_BYTES, declaredLength, readBodyBounded, type Refusal } from './limits.js';
import { createMetrics, type Budget, type GatekeeperMetrics, type RouteLabel, type VerifyFailure } from './metrics.js';
import type { EdgeRedis } from './redis.js';
import { createThrottle } from './throttle.js';
import { transportOf } from './transport.js';

export interface AppDeps {
  readonly config: Config;
  /** From connectRedis: the caller owns it and closes it. */
  readonly redis: EdgeRedis;
  readonly clock: Clock;
  /** CSPRNG (`randomBytes` from @zax/protocol); tests inject relay tokens. */
  readonly random: (n: number) => Uint8Array;
  readonly log: Logger;
  /**
   * @default staticDifficulty(config.difficulty), or with DIFFICULTY_PERIOD_MIN > 0 the adaptive
   * provider, whose controller the app starts and stops
   */
  readonly difficulty?: DifficultyProvider;
  /** @default createMetrics() (without process metrics; main.ts turns those on) */
  readonly metrics?: GatekeeperMetrics;
  /**
   * PEM of an extra CA for an `https://` CORE_URL (the contents of CORE_CA_FILE, read by main.ts),
   * trusted on top of the system roots. @default none
   */
  readonly coreCa?: string | Buffer;
}

export interface App {
  /** The public port: API, /livez, /readyz, and /metrics only with METRICS_ON_PUBLIC_PORT and no ADMIN_PORT. */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** The admin port (ADMIN_PORT): /livez, /readyz, /metrics; 404 for anything else. */
  readonly adminHandler: (req: IncomingMessage, res: ServerResponse) => void;
  readonly metrics: GatekeeperMetrics;
  /** The adaptive controller, when the app runs one. */
  readonly controller: DifficultyController | null;
  /** Stops the controller and releases what the app owns (the core agent). Does not close `redis`. */
  close(): Promise<void>;
}

const noop = (): void => {};

/**
 * After refusing a body, the connection is half-closed at once (the rest of the body is read and
 * dropped, never kept) and destroyed after this long at most. Closing outright with unread bytes
 * would reset the connection and could lose the answer on its way to the client.
 */
const LINGER_MS = 1000;

/**
 * An absolute-form request target (`POST http://host/command`, RFC 9112 §3.2.2) as its origin form
 * (`/command`); anything else unchanged. A target that does not parse stays as it is (and is a 404).
 */
export function originForm(url: string): string {
  if (url.startsWith('/') || !/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return url;
  try {
    const u = new URL(url);
    return `${u.pathname}${u.search}`;
  } catch {
    return url;
  }
}

/** The request's path as routing, metrics and logs see it: origin form, normalized. */
const pathOf = (req: IncomingMessage): string => normalizePath(originForm(req.url ?? '/'));

const LOGGED_PATHS: ReadonlySet<string> = new Set([...API_PATHS, '/livez', '/readyz', '/metrics']);

const ROUTE_OF: Readonly<Record<ApiPath, RouteLabel & ('start_session' | 'verify_session' | 'prove' | 'command')>> = {
  '/start_session': 'start_session',
  '/verify_session': 'verify_session',
  '/prove': 'prove',
  '/command': 'command',
};

/** The policy settings of the adaptive rule, from the config. */
export function difficultyPolicy(config: Config): DifficultyPolicy {
  return {
    base: config.difficulty,
    minRequests: config.difficultyMinRequests,
    factor: config.difficultyOverloadFactor,
    step: config.difficultyStep,
    max: config.difficultyMax,
    latencyP99Ms: config.difficultyLatencyP99Ms,
    eventLoopUtilization: config.difficultyEventLoopUtilization,
    memoryRatio: config.difficultyMemoryRatio,
    releaseRatio: config.difficultyReleaseRatio,
  };
}

export function createApp(deps: AppDeps): App {
  const { config, redis, log } = deps;
  const metrics = deps.metrics ?? createMetrics();
  const keys = edgeKeys(config.edgeRedisPrefix);
  const observe = metrics.redis.bind(metrics);
  const store = handshakeStore(redis, keys, observe);
  const core = createCoreClient({
    coreUrl: config.coreUrl,
    internalSecret: config.internalSecret,
    timeoutMs: config.coreTimeoutMs,
    log,
    ...(deps.coreCa !== undefined ? { ca: deps.coreCa } : {}),
  });

  let difficulty = deps.difficulty;
  let controller: DifficultyController | null = null;
  if (difficulty === undefined && config.difficultyPeriodMin > 0) {
    const adaptive = adaptiveDifficulty({
      store: difficultyStore(redis, keys, observe),
      clock: deps.clock,
      policy: difficultyPolicy(config),
      periodMs: Math.max(1, Math.round(config.difficultyPeriodMin * 60_000)),
      graceMs: config.difficultyGraceSec * 1000,
      cacheMs: config.difficultyCacheMs,
      leaseMs: config.difficultyLeaseMs,
      loadReport: () => core.load(),
      log,
      metrics,
    });
    difficulty = adaptive.provider;
    controller = adaptive.controller;
    controller.start();
  }
  difficulty ??= staticDifficulty(config.difficulty);
  const provider = difficulty;
  metrics.difficulty(() => provider.last?.() ?? config.difficulty);

  const hs: HandshakeDeps = {
    config,
    store,
    clock: deps.clock,
    random: deps.random,
    difficulty: provider,
    core,
    log,
    metrics,
  };

  const throttle = createThrottle(
    redis,
    keys,
    {
      handshake: { burst: config.handshakeBurstPerIp, ratePerMin: config.handshakeRatePerIpPerMin },
      request: { burst: config.requestBurstPerIp, ratePerMin: config.requestRatePerIpPerMin },
    },
    metrics.redis('throttle'),
  );
  const identify = clientIdentity(config);
  const transport = transportOf(config);
  const hsts = config.hstsMaxAgeSec > 0 ? `max-age=${config.hstsMaxAgeSec}` : null;
  const pingTimer = metrics.redis('ping');

  const bodyLimit: Readonly<Record<ApiPath, number>> = {
    '/start_session': config.maxHandshakeBodyBytes,
    '/verify_session': config.maxHandshakeBodyBytes,
    '/prove': config.maxHandshakeBodyBytes,
    '/command': config.maxCommandBodyBytes,
  };
  const budgetOf: Readonly<Record<ApiPath, Budget>> = {
    '/start_session': 'handshake',
    '/verify_session': 'handshake',
    '/prove': 'request',
    '/command': 'request',
  };

  let inFlight = 0;
  metrics.inFlight(() => inFlight);
  const bodies = new ByteBudget(config.maxBodyBytesInFlight, config.maxBodyBytesInFlightPerIp);
  const held = new ByteBudget(config.maxResponseBytesHeld, config.maxResponseBytesHeld);
  const smallHeadroom = Math.floor(config.maxBodyBytesInFlight / 8);
  metrics.bytesInFlight(() => bodies.inFlight, () => held.inFlight);
  const watch = new BodyWatch({
    minBytesPerSec: config.bodyMinBytesPerSec,
    graceMs: config.bodyGraceMs,
    idleTimeoutMs: config.bodyIdleTimeoutMs,
  });
  const armWriteTimeout = (res: ServerResponse): void => {
    res.setTimeout(config.writeTimeoutMs, () => {
      metrics.writeTimeout();
      res.destroy();
    });
  };
  const fwd: ForwardDeps = { core, store, log, held, armWriteTimeout };

  /**
   * A body refused by a budget (503 for the process, 429 for the address) or cut off as too slow
   * (408): answered at once, the connection half-closed and then destroyed (LINGER_MS); nothing of
   * the body is kept.
   */
  function refuseBody(req: IncomingMessage, res: ServerResponse, reason: Refusal | 'slow'): void {
    metrics.bodyRefused(reason);
    const socket = req.socket;
    if (res.headersSent || res.destroyed) {
      socket.destroy();
      return;
    }
    res.once('finish', () => {
      socket.end();
      setTimeout(() => socket.destroy(), LINGER_MS).unref();
    });
    if (reason === 'slow') {
      res.writeHead(408, { ...COMMON_HEADERS, 'content-length': 0 });
      res.end();
    } else if (reason === 'process') {
      sendError(res, 'busy', config.busyRetryAfterSec);
    } else {
      sendError(res, 'throttled', 1);
    }
  }
  function release(): void {
    inFlight--;
  }

  /**
   * Reads and drops the rest of a body that will not be used (after a 413, 429 or 503), up to a
   * bound; past it the socket goes. Keeps the connection usable for the client's next request.
   */
  function discardRest(req: IncomingMessage, limit: number): void {
    const bound = 2 * limit + 65_536;
    let dropped = 0;
    req.on('data', (chunk: Buffer) => {
      dropped += chunk.length;
      if (dropped > bound) req.socket.destroy();
    });
    req.resume();
  }

  const nowMs = (): number => Math.floor(deps.clock.nowMs());

  /** Takes a token of `budget` for `client`: 0, or the seconds until it has one (counted as throttled). */
  async function takeToken(budget: Budget, client: string): Promise<number> {
    if (!throttle.limited(budget)) return 0;
    const waitSec = await throttle.take(budget, client, nowMs());
    if (waitSec > 0) metrics.throttled(budget);
    return waitSec;
  }

  async function handleApi(path: ApiPath, req: IncomingMessage, res: ServerResponse): Promise<void> {
    // §6.3 step 2: overload, then throttling; both before the body is read.
    if (config.maxInFlightRequests > 0 && inFlight >= config.maxInFlightRequests) {
      metrics.overloaded();
      discardRest(req, bodyLimit[path]);
      throw new RelayError('busy', 'too many requests in flight');
    }
    inFlight++;
    res.on('close', release);

    const budget = budgetOf[path];
    const client = identify(req);
    const waitSec = await takeToken(budget, client);
    if (waitSec > 0) {
      if (log.isLevelEnabled('debug')) log.debug(config.logClientIps ? { budget, client } : { budget }, 'throttled');
      discardRest(req, bodyLimit[path]);
      throw new RelayError('throttled', `throttled (${budget})`, waitSec);
    }

    // Body size (413), then the body budgets: a declared length is reserved before any of it is
    // read; a chunked body reserves what arrives. Given back once, when the response closes.
    const declared = declaredLength(req);
    if (declared !== null && declared > bodyLimit[path]) {
      discardRest(req, bodyLimit[path]);
      throw new RelayError('tooLarge', `content-length ${declared} > ${bodyLimit[path]}`);
    }
    const reservation = bodies.open(client);
    res.once('close', reservation.release);
    if (declared !== null) {
      const refused = reservation.grow(declared, declared <= SMALL_BODY_BYTES ? smallHeadroom : 0);
      if (refused !== null) return refuseBody(req, res, refused);
    }
    let body: Buffer;
    try {
      body = await readBodyBounded(req, bodyLimit[path], reservation, declared === null, watch);
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        discardRest(req, bodyLimit[path]);
        throw new RelayError('tooLarge', err.message);
      }
      if (err instanceof BodyRefused && err.reason !== 'aborted') return refuseBody(req, res, err.reason);
      // The client went away mid-body: there is no one to answer.
      res.destroy();
      return;
    }
    switch (path) {
      case '/start_session': {
        const answer = await startSession(hs, body);
        sendOk(res, answer);
        metrics.handshakeStarted();
        provider.recordHandshake?.(nowMs());
        return;
      }
      case '/verify_session': {
        let answer: string;
        try {
          answer = await verifySession(hs, body);
        } catch (err) {
          metrics.handshakeFailed(verifyFailure(err));
          throw err;
        }
        sendOk(res, answer);
        metrics.handshakeVerified();
        provider.recordHandshake?.(nowMs());
        return;
      }
      case '/prove':
      case '/command': {
        const route = ROUTE_OF[path] as 'prove' | 'command';
        let status: number;
        try {
          status = await forward(fwd, path, body, res);
        } catch (err) {
          metrics.proxied(route, isRelayError(err) ? (err.code === 'busy' ? 503 : 500) : 503);
          throw err;
        }
        metrics.proxied(route, status);
        return;
      }
    }
  }

  async function ready(res: ServerResponse): Promise<void> {
    // Readiness is the edge store only: with the core down the gatekeeper still answers 503s. A
    // cluster that is down or has slots no primary serves is not ready.
    try {
      const problem = await timed(pingTimer, () => storeProblem(redis));
      if (problem !== null) throw new Error(problem);
      sendOk(res, 'ok');
    } catch {
      sendError(res, 'busy', config.busyRetryAfterSec);
    }
  }

  async function serveMetrics(res: ServerResponse): Promise<void> {
    const text = await metrics.registry.metrics();
    res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  /**
   * /livez, /readyz and (where served) /metrics; true when the request was one of them. `throttled`:
   * /metrics on the public port (METRICS_ON_PUBLIC_PORT) takes a token of the request budget.
   */
  async function handleOps(req: IncomingMessage, p: string, method: string, res: ServerResponse, withMetrics: boolean, throttled: boolean): Promise<boolean> {
    if (method !== 'GET' && method !== 'HEAD') return false;
    if (p === '/livez') {
      sendOk(res, 'ok');
      return true;
    }
    if (p === '/readyz') {
      await ready(res);
      return true;
    }
    if (p === '/metrics' && withMetrics) {
      const waitSec = throttled ? await takeToken('request', identify(req)) : 0;
      if (waitSec > 0) throw new RelayError('throttled', 'throttled (metrics)', waitSec);
      await serveMetrics(res);
      return true;
    }
    return false;
  }

  // Off the public port unless the operator asks for it (and then throttled like a request).
  const metricsOnMain = config.adminPort === null && config.metricsOnPublicPort;

  /**
   * REQUIRE_HTTPS refusal: 403 with an empty body, the common headers and a short reason, and the
   * connection closed. Not a redirect: the request (tokens, a session box) has already crossed the
   * network in the clear, POST redirects are followed inconsistently, and a silently followed
   * redirect would hide a misconfigured client instead of failing it. Not 426 Upgrade Required: that
   * asks for an in-connection upgrade (RFC 2817) which no client here performs. 403 is final and not
   * retried by glow.ts or @zax/client.
   */
  function refuseInsecure(res: ServerResponse): void {
    metrics.insecureRefused();
    res.writeHead(403, { ...COMMON_HEADERS, 'content-length': 0, 'x-error-details': 'HTTPS required', connection: 'close' });
    res.end();
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = originForm(req.url ?? '/');
    const method = req.method ?? '';
    const via = transport(req);
    // HSTS only where the client's own connection was HTTPS (RFC 6797 §7.2: never over plain HTTP).
    if (hsts !== null && (via === 'tls' || via === 'proxied-https')) res.setHeader('strict-transport-security', hsts);
    if (await handleOps(req, normalizePath(url), method, res, metricsOnMain, true)) return;
    // Production mode: everything but health and metrics (answered above) needs HTTPS.
    if (config.requireHttps && via === 'insecure') return refuseInsecure(res);
    const route = routeApi(method, url);
    switch (route.kind) {
      case 'notFound':
        return sendError(res, 'notFound', 0);
      case 'wrongMethod':
        return sendError(res, 'methodNotAllowed', 0);
      case 'preflight':
        return sendPreflight(res);
      case 'api':
        return handleApi(route.path, req, res);
    }
  }

  function fail(res: ServerResponse, err: unknown): void {
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    if (isRelayError(err)) {
      if (err.code === 'busy') log.debug({ reason: err.logMessage }, 'busy');
      sendError(res, err.code, err.retryAfterSec ?? config.busyRetryAfterSec);
      return;
    }
    // A fault of ours. Only the name and message are logged: ioredis errors carry command
    // arguments, which may be tokens.
    log.error(
      { errName: err instanceof Error ? err.name : typeof err, errMessage: err instanceof Error ? err.message.slice(0, 200) : '' },
      'unexpected error',
    );
    sendError(res, 'busy', config.busyRetryAfterSec);
  }

  const routeLabel = (p: string): RouteLabel => {
    switch (p) {
      case '/start_session':
        return 'start_session';
      case '/verify_session':
        return 'verify_session';
      case '/prove':
        return 'prove';
      case '/command':
        return 'command';
      case '/livez':
        return 'livez';
      case '/readyz':
        return 'readyz';
      case '/metrics':
        return 'metrics';
      default:
        return 'other';
    }
  };

  const serve =
    (inner: (req: IncomingMessage, res: ServerResponse) => Promise<void>) =>
    (req: IncomingMessage, res: ServerResponse): void => {
      // Aborted requests and broken sockets must never become uncaught 'error' events.
      req.on('error', noop);
      res.on('error', noop);
      const startedMs = performance.now();
      inner(req, res)
        .catch((err: unknown) => {
          try {
            fail(res, err);
          } catch {
            res.destroy();
          }
        })
        .finally(() => {
          const p = pathOf(req);
          const seconds = (performance.now() - startedMs) / 1000;
          metrics.request(routeLabel(p), res.statusCode, seconds);
          if (log.isLevelEnabled('debug')) {
            // Only known paths are logged: anything else a client typed stays out of the log.
            log.debug(
              { method: req.method, path: LOGGED_PATHS.has(p) ? p : 'other', status: res.statusCode, ms: Math.round(seconds * 1000) },
              'request',
            );
          }
        });
    };

  const handler = serve(handle);
  const adminHandler = serve(async (req, res) => {
    if (!(await handleOps(req, pathOf(req), req.method ?? '', res, true, false))) sendError(res, 'notFound', 0);
  });

  return {
    handler,
    adminHandler,
    metrics,
    controller,
    close: async () => {
      await controller?.stop();
      watch.close();
      core.close();
    },
  };
}

function verifyFailure(err: unknown): VerifyFailure {
  if (err instanceof VerifyError) return err.reason;
  if (isRelayError(err) && (err.code === 'framing' || err.code === 'invalid')) return 'malformed';
  return 'unavailable';
}
