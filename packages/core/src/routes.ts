/**
 * The core's routes, declared once: path, metric label, methods, whether the internal secret is
 * required, the body limit, whether its durations count toward the replica's latency p99, and the
 * handler. Routing, the secret guard, body reading, metric labels and logs derive from these rows.
 */
import { INTERNAL_LOAD_PATH, INTERNAL_SESSIONS_PATH } from '@zax/protocol';
import type { RouteSpec } from '@zax/service';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { commandRoute } from './command.js';
import type { Config } from './config.js';
import type { Core } from './context.js';
import { mintRoute } from './internal-sessions.js';
import { livez, loadRoute, metricsRoute, readyz } from './ops.js';
import { proveRoute } from './prove.js';

export type RouteHandler = (core: Core, req: IncomingMessage, res: ServerResponse, body: Buffer) => Promise<void>;

export interface CoreRoute extends RouteSpec {
  readonly label: RouteLabel;
  /** Needs the internal secret (every route but health and metrics: docs/DESIGN.md). */
  readonly secret: boolean;
  /** The body limit (413 above it); null: the route reads no body. */
  readonly bodyLimit: ((config: Config) => number) | null;
  /** Its durations make up the replica's latency p99 (the API work, not health or metrics). */
  readonly timed: boolean;
  readonly handle: RouteHandler;
}

const handshakeBody = (c: Config): number => c.maxHandshakeBodyBytes;
const commandBody = (c: Config): number => c.maxCommandBodyBytes;

/** What the gatekeeper forwards or asks: all behind the internal secret. */
export const API_ROUTES = [
  { path: '/prove', label: 'prove', methods: ['POST'], preflight: true, secret: true, bodyLimit: handshakeBody, timed: true, handle: proveRoute },
  { path: '/command', label: 'command', methods: ['POST'], preflight: true, secret: true, bodyLimit: commandBody, timed: true, handle: commandRoute },
  { path: INTERNAL_SESSIONS_PATH, label: 'internal_sessions', methods: ['POST'], secret: true, bodyLimit: handshakeBody, timed: true, handle: mintRoute },
  { path: INTERNAL_LOAD_PATH, label: 'internal_load', methods: ['GET'], secret: true, bodyLimit: null, timed: false, handle: loadRoute },
] as const satisfies readonly CoreRouteRow[];

/**
 * Health and metrics, without the secret. /metrics is on the admin port when CORE_ADMIN_PORT is
 * set, and then not on the main port.
 */
export const OPS_ROUTES = [
  { path: '/livez', label: 'livez', methods: ['GET'], secret: false, bodyLimit: null, timed: false, handle: livez },
  { path: '/readyz', label: 'readyz', methods: ['GET'], secret: false, bodyLimit: null, timed: false, handle: readyz },
  { path: '/metrics', label: 'metrics', methods: ['GET'], secret: false, bodyLimit: null, timed: false, handle: metricsRoute },
] as const satisfies readonly CoreRouteRow[];

/** The `route` label values of metrics: every row's, and `other` for any other path. */
export const ROUTE_LABELS = [...API_ROUTES.map((r) => r.label), ...OPS_ROUTES.map((r) => r.label), 'other'] as const;
export type RouteLabel = (typeof API_ROUTES)[number]['label'] | (typeof OPS_ROUTES)[number]['label'] | 'other';

type CoreRouteRow = Omit<CoreRoute, 'label'> & { readonly label: string };
