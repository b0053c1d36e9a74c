/**
 * The gatekeeper's HTTP application (node:http, no framework), composed of named pieces:
 *
 * - the route tables (routes.ts): the public port's API, health, (METRICS_ON_PUBLIC_PORT)
 *   metrics and (DASHBOARD) the self-test page; the admin port's health and metrics;
 * - the transport rule (transport.ts): HSTS on HTTPS responses (HSTS_MAX_AGE_SEC), and in production
 *   mode (REQUIRE_HTTPS) 403 for a route not marked `plainHttp` reached over plain HTTP from the
 *   network. The app does not care whether TLS is terminated by main.ts or by a trusted proxy;
 * - the guards (guards.ts): in flight, throttle, body limits, as the route's row declares;
 * - the handlers: handshake/routes.ts, forward.ts (/prove, /command to the core), ops.ts;
 * - the one error path (@zax/service `errorPath`): a RelayError becomes its row of the error table;
 *   anything else is logged and answered 503, never 500 (the gatekeeper's only faults are
 *   unavailable dependencies). Nothing a client sends can throw past it.
 *
 * `createApp` builds it from its dependencies without listening (main.ts listens), so tests mount
 * it on their own server, and an express application can mount it at a path prefix.
 */
import { RelayError, type Clock } from '@zax/protocol';
import { routeTable, serve, type Logger, type RouteTable } from '@zax/service';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from './config.js';
import type { DifficultyController } from './difficulty-adaptive.js';
import type { DifficultyProvider } from './difficulty.js';
import { createEdge, type Edge } from './edge.js';
import { admit } from './guards.js';
import { createMetrics, type GatekeeperMetrics } from './metrics.js';
import type { EdgeRedis } from './redis.js';
import { loadDashboard, type DashboardPage } from './dashboard.js';
import { API_ROUTES, dashboardRoutes, OPS_ROUTES, PUBLIC_METRICS, type GatekeeperRoute, type RouteLabel } from './routes.js';

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
  /**
   * The self-test page, served when config.dashboard is on (main.ts and mount.ts load it before
   * connecting anything). @default loadDashboard() when config.dashboard (a ConfigError if not built)
   */
  readonly dashboard?: DashboardPage;
}

export interface App {
  /** The public port: API, /livez, /readyz, /metrics only with METRICS_ON_PUBLIC_PORT and no ADMIN_PORT, /dashboard only with DASHBOARD. */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** The admin port (ADMIN_PORT): /livez, /readyz, /metrics; 404 for anything else. */
  readonly adminHandler: (req: IncomingMessage, res: ServerResponse) => void;
  readonly metrics: GatekeeperMetrics;
  /** The adaptive controller, when the app runs one. */
  readonly controller: DifficultyController | null;
  /** Stops the controller and releases what the app owns (the core agent). Does not close `redis`. */
  close(): Promise<void>;
}

export function createApp(deps: AppDeps): App {
  const metrics = deps.metrics ?? createMetrics();
  const dashboard = deps.config.dashboard ? (deps.dashboard ?? loadDashboard()) : null;
  const edge = createEdge({ ...deps, metrics });
  const { config } = edge;
  // /metrics is off the public port unless the operator asks for it (and then throttled).
  const metricsOnMain = config.adminPort === null && config.metricsOnPublicPort;
  const publicRoutes = routeTable<GatekeeperRoute>([...API_ROUTES, OPS_ROUTES[0], OPS_ROUTES[1], ...(metricsOnMain ? [PUBLIC_METRICS] : []), ...(dashboard !== null ? dashboardRoutes(dashboard) : [])]);
  const adminRoutes = routeTable<GatekeeperRoute>(OPS_ROUTES);
  const hsts = config.hstsMaxAgeSec > 0 ? `max-age=${config.hstsMaxAgeSec}` : null;

  const handler = serve(
    async (req, res, path) => {
      const via = edge.transport(req);
      // HSTS only where the client's own connection was HTTPS (RFC 6797 §7.2: never over plain HTTP).
      if (hsts !== null && (via === 'tls' || via === 'proxied-https')) res.setHeader('strict-transport-security', hsts);
      const route = publicRoutes.get(path);
      if (config.requireHttps && via === 'insecure' && route?.plainHttp !== true) return refuseInsecure(edge);
      return dispatch(edge, publicRoutes, req, res, path);
    },
    edge.fail,
    requestDone(edge, publicRoutes),
  );
  const adminHandler = serve((req, res, path) => dispatch(edge, adminRoutes, req, res, path), edge.fail, requestDone(edge, adminRoutes));

  return { handler, adminHandler, metrics, controller: edge.controller, close: () => edge.close() };
}

/** Finds the request's row, runs its guards and its handler. */
async function dispatch(edge: Edge, table: RouteTable<GatekeeperRoute>, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const route = table.resolve(req.method ?? '', path, res);
  if (route === null) return;
  const body = await admit(edge, route, req, res);
  if (body !== null) await route.handle(edge, req, res, body, route);
}

/**
 * REQUIRE_HTTPS refusal: 403 with an empty body and a short reason, and the connection closed. Not
 * a redirect: the request (tokens, a session box) has already crossed the network in the clear,
 * POST redirects are followed inconsistently, and a silently followed redirect would hide a
 * misconfigured client instead of failing it. Not 426 Upgrade Required: that asks for an
 * in-connection upgrade (RFC 2817) which no client here performs. 403 is final and not retried by
 * glow.ts or @zax/client.
 */
function refuseInsecure(edge: Edge): never {
  edge.metrics.insecureRefused();
  throw new RelayError('httpsRequired', 'plain HTTP from the network', undefined, { connection: 'close' });
}

/** Every request: its duration under its route label and status, and (debug) a log line. */
function requestDone(edge: Edge, table: RouteTable<GatekeeperRoute>) {
  return (req: IncomingMessage, res: ServerResponse, path: string, seconds: number): void => {
    const label = table.labelOf(path) as RouteLabel;
    edge.metrics.request(label, res.statusCode, seconds);
    if (edge.log.isLevelEnabled('debug')) {
      // Only route labels are logged: a path a client typed stays out of the log.
      edge.log.debug({ method: req.method, route: label, status: res.statusCode, ms: Math.round(seconds * 1000) }, 'request');
    }
  };
}
