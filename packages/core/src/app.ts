/**
 * The core's HTTP application (node:http, no framework), composed of named pieces:
 *
 * - the route tables (routes.ts): the main port's API and internal routes, health, and /metrics
 *   unless CORE_ADMIN_PORT is set; the admin port's health and metrics;
 * - the secret guard: every route but health and metrics needs the internal secret (docs/DESIGN.md;
 *   the core is on a private network); without it any other path, known or not, is 403;
 * - the body reader, as the route's row declares its limit;
 * - the handlers: prove.ts, command.ts, internal-sessions.ts, ops.ts;
 * - the one error path (@zax/service `errorPath`): a RelayError becomes its row of the error table,
 *   a store failure 503 with Retry-After, anything else 500 I and a log line.
 *
 * `createApp` builds it from its dependencies without listening, so tests mount it on their own
 * server with a fake clock. It owns the replica's load meter (load.ts) and metrics (metrics.ts),
 * whose census gauges read the last census (census.ts) at scrape time; the request path only adds
 * numbers to them.
 */
import { INTERNAL_SECRET_HEADER, RelayError, type Clock, type Crypto, type LoadReport } from '@zax/protocol';
import { readBody, routeTable, serve, type Durability, type Logger, type RouteTable } from '@zax/service';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readCensus } from './census.js';
import type { ResponseGate } from './commands/download-gate.js';
import type { Config } from './config.js';
import { createCore, type Core } from './context.js';
import { createKeys } from './keys.js';
import { loadReport, type LoadMeter, type LoadTiming } from './load.js';
import { createMetrics, type CoreMetrics } from './metrics.js';
import type { CoreRedis } from './redis.js';
import { API_ROUTES, OPS_ROUTES, type CoreRoute, type RouteLabel } from './routes.js';
import type { LoadStore } from './store/load.js';

export interface AppDeps {
  readonly config: Config;
  readonly redis: CoreRedis;
  readonly clock: Clock;
  readonly crypto: Crypto;
  readonly log: Logger;
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

export function createApp(deps: AppDeps): App {
  const metrics = deps.metrics ?? createMetrics();
  const core = createCore({ ...deps, metrics });
  const { config, meter } = core;
  meter.start();
  metrics.localLoad(() => meter.local());
  const keys = createKeys(config.redisPrefix);
  metrics.censusSource(() => readCensus(core.redis, keys, metrics));
  const mainRoutes = routeTable<CoreRoute>([...API_ROUTES, ...(config.adminPort === null ? OPS_ROUTES : OPS_ROUTES.slice(0, 2))]);
  const adminRoutes = routeTable<CoreRoute>(OPS_ROUTES);

  let inFlight = 0;
  let closing = false;
  const drained: (() => void)[] = [];

  /** Every request: in-flight accounting for close(), its duration (metrics, p99), a debug line. */
  const done =
    (table: RouteTable<CoreRoute>) =>
    (req: IncomingMessage, res: ServerResponse, path: string, seconds: number): void => {
      const route = table.get(path);
      const label: RouteLabel = route?.label ?? 'other';
      metrics.request(label, res.statusCode, seconds);
      if (route?.timed === true) meter.latency(seconds * 1000);
      core.log.debug({ method: req.method, route: label, status: res.statusCode, ms: Math.round(seconds * 1000) }, 'request');
      inFlight--;
      if (inFlight === 0) drained.splice(0).forEach((f) => f());
    };
  const listener = (table: RouteTable<CoreRoute>) =>
    serve(
      async (req, res, path) => {
        inFlight++;
        if (closing) {
          req.resume();
          throw new RelayError('busy', 'closing', undefined, { connection: 'close' });
        }
        return dispatch(core, table, req, res, path);
      },
      core.fail,
      done(table),
    );

  let stopped: Promise<void> | null = null;
  return {
    handler: listener(mainRoutes),
    adminHandler: listener(adminRoutes),
    metrics,
    load: meter,
    loadStore: core.loadStore,
    loadTiming: core.timing,
    answers: core.answers,
    loadReport: () => loadReport(core.report),
    close() {
      closing = true;
      const idle = inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => drained.push(resolve));
      return (stopped ??= idle.then(() => meter.stop()));
    },
  };
}

/** The secret guard, then the request's row: its body read under its limit, and its handler. */
async function dispatch(core: Core, table: RouteTable<CoreRoute>, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const row = table.get(path);
  if (row?.secret !== false && !core.secretOk(req.headers[INTERNAL_SECRET_HEADER])) {
    req.resume();
    throw new RelayError('forbidden', 'no valid internal secret');
  }
  if (row?.bodyLimit == null) req.resume();
  const route = table.resolve(req.method ?? '', path, res);
  if (route === null) return;
  const body = route.bodyLimit === null ? EMPTY : await readBody(req, route.bodyLimit(core.config));
  return route.handle(core, req, res, body);
}

const EMPTY = Buffer.alloc(0);
