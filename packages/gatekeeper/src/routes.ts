/**
 * The gatekeeper's routes, declared once: path, metric label, methods, throttle budget, body limit,
 * whether plain HTTP from the network may reach it under REQUIRE_HTTPS, and the handler. Routing,
 * guards (guards.ts), metric labels and logs all derive from these rows.
 */
import type { RouteSpec } from '@zax/service';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from './config.js';
import { dashboardHandlers, type DashboardPage } from './dashboard.js';
import type { Edge } from './edge.js';
import { forwardRoute } from './forward.js';
import { startSessionRoute, verifySessionRoute } from './handshake/routes.js';
import type { Budget } from './metrics.js';
import { livez, metricsRoute, readyz } from './ops.js';

export type RouteHandler = (edge: Edge, req: IncomingMessage, res: ServerResponse, body: Buffer, route: GatekeeperRoute) => Promise<void>;

export interface GatekeeperRoute extends RouteSpec {
  readonly label: RouteLabel;
  /** The throttle budget a request takes a token of; null: not throttled. */
  readonly budget: Budget | null;
  /** The body limit (413 above it); null: the route reads no body and is not counted in flight. */
  readonly bodyLimit: ((config: Config) => number) | null;
  /** Served over plain HTTP from the network even in production mode (REQUIRE_HTTPS). */
  readonly plainHttp: boolean;
  readonly handle: RouteHandler;
}

const handshakeBody = (c: Config): number => c.maxHandshakeBodyBytes;
const commandBody = (c: Config): number => c.maxCommandBodyBytes;

/** The protocol's API (docs/PROTOCOL.md §2.1): POST, with CORS preflight. */
export const API_ROUTES = [
  { path: '/start_session', label: 'start_session', methods: ['POST'], preflight: true, budget: 'handshake', bodyLimit: handshakeBody, plainHttp: false, handle: startSessionRoute },
  { path: '/verify_session', label: 'verify_session', methods: ['POST'], preflight: true, budget: 'handshake', bodyLimit: handshakeBody, plainHttp: false, handle: verifySessionRoute },
  { path: '/prove', label: 'prove', methods: ['POST'], preflight: true, budget: 'request', bodyLimit: handshakeBody, plainHttp: false, handle: forwardRoute },
  { path: '/command', label: 'command', methods: ['POST'], preflight: true, budget: 'request', bodyLimit: commandBody, plainHttp: false, handle: forwardRoute },
] as const satisfies readonly GatekeeperRouteRow[];

/**
 * Health and metrics: never throttled, counted in flight or refused for plain HTTP. /metrics is on
 * the admin port (ADMIN_PORT), or on the public port with METRICS_ON_PUBLIC_PORT, then throttled
 * like a request (PUBLIC_METRICS).
 */
export const OPS_ROUTES = [
  { path: '/livez', label: 'livez', methods: ['GET'], budget: null, bodyLimit: null, plainHttp: true, handle: livez },
  { path: '/readyz', label: 'readyz', methods: ['GET'], budget: null, bodyLimit: null, plainHttp: true, handle: readyz },
  { path: '/metrics', label: 'metrics', methods: ['GET'], budget: null, bodyLimit: null, plainHttp: true, handle: metricsRoute },
] as const satisfies readonly GatekeeperRouteRow[];

/** /metrics on the public port: takes a token of the request budget. */
export const PUBLIC_METRICS: GatekeeperRoute = { ...OPS_ROUTES[2], budget: 'request' };

/** The label of every route of the self-test page. */
export const DASHBOARD_LABEL = 'dashboard';

/**
 * The self-test page (DASHBOARD=1, dashboard.ts), from memory: GET (and HEAD) only, no body, not
 * throttled or counted in flight (a page load is four small answers with no store or core call).
 * Not `plainHttp`: under REQUIRE_HTTPS it is refused over plain HTTP from the network like the API
 * it drives, which would refuse its requests anyway. `/dashboard/` is routed as `/dashboard`.
 */
export function dashboardRoutes(page: DashboardPage): readonly GatekeeperRoute[] {
  const h = dashboardHandlers(page);
  const row = (path: string, handle: RouteHandler): GatekeeperRoute => ({ path, label: DASHBOARD_LABEL, methods: ['GET'], budget: null, bodyLimit: null, plainHttp: false, handle });
  return [row('/dashboard', h.page), row('/dashboard/dashboard.js', h.script), row('/dashboard/dashboard.css', h.style), row('/dashboard/status.json', h.status)];
}

/** The `route` label values of metrics: every row's, and `other` for any other path. */
export const ROUTE_LABELS = [...API_ROUTES.map((r) => r.label), ...OPS_ROUTES.map((r) => r.label), DASHBOARD_LABEL, 'other'] as const;
export type RouteLabel = (typeof API_ROUTES)[number]['label'] | (typeof OPS_ROUTES)[number]['label'] | typeof DASHBOARD_LABEL | 'other';

/** A row before its label is narrowed (the label type derives from the rows). */
type GatekeeperRouteRow = Omit<GatekeeperRoute, 'label'> & { readonly label: string };
