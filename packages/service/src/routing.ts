/**
 * Route tables and the one error path, shared by both tiers.
 *
 * Each tier declares its routes once, in a table: path, metric label, methods and handler, plus the
 * tier's own per-route fields (throttle budget, body limit, secret). Lookup, method checks (405 with
 * the route's `Allow`), CORS preflight and the metric label of any request all derive from the table.
 *
 * `errorPath` is the one place where an error becomes a response: every refusal is a row of the
 * protocol's error table (`ERRORS`), and the status it writes is the one it returns, so metrics
 * record exactly what the client got.
 */
import { ERRORS, RelayError, isRelayError, normalizePath, type ErrorCode } from '@zax/protocol';
import { sendError, sendPreflight, type ResponseSink } from './http.js';
import { everyInterval } from './log.js';
import { isStoreUnavailable, type StoreUnavailableError } from './store-call.js';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** What every row of a route table has. */
export interface RouteSpec {
  readonly path: string;
  /** The `route` label of metrics and logs. */
  readonly label: string;
  /** Accepted methods; GET implies HEAD. */
  readonly methods: readonly ('GET' | 'POST')[];
  /** OPTIONS is a CORS preflight (the public API), instead of a 405. */
  readonly preflight?: boolean;
}

export type Match<R> =
  | { readonly kind: 'route'; readonly route: R }
  | { readonly kind: 'preflight'; readonly route: R }
  | { readonly kind: 'wrongMethod'; readonly route: R }
  | { readonly kind: 'notFound' };

/** The label of a path that is no route: raw paths never reach metrics or logs. */
export const OTHER_ROUTE = 'other';

export interface RouteTable<R extends RouteSpec> {
  readonly routes: readonly R[];
  /** The route a normalized path names, or undefined. */
  get(path: string): R | undefined;
  match(method: string, path: string): Match<R>;
  /**
   * The row that serves this request. A preflight is answered here (null); no row is a 404 and a
   * method the row does not take a 405 with its `Allow`, thrown for the error path.
   */
  resolve(method: string, path: string, res: ResponseSink): R | null;
  /** The metric label of a normalized path: its route's, or OTHER_ROUTE. */
  labelOf(path: string): string;
}

export function routeTable<R extends RouteSpec>(routes: readonly R[]): RouteTable<R> {
  const byPath = new Map<string, R>(routes.map((r) => [r.path, r]));
  if (byPath.size !== routes.length) throw new Error('route table: a path is declared twice');
  return {
    routes,
    get: (path) => byPath.get(path),
    match(method, path) {
      const route = byPath.get(path);
      if (route === undefined) return { kind: 'notFound' };
      if (accepts(route, method)) return { kind: 'route', route };
      if (method === 'OPTIONS' && route.preflight === true) return { kind: 'preflight', route };
      return { kind: 'wrongMethod', route };
    },
    labelOf: (path) => byPath.get(path)?.label ?? OTHER_ROUTE,
    resolve(method, path, res) {
      const match = this.match(method, path);
      switch (match.kind) {
        case 'notFound':
          throw new RelayError('notFound', 'no such route');
        case 'wrongMethod':
          throw wrongMethod(match.route);
        case 'preflight':
          sendPreflight(res);
          return null;
        case 'route':
          return match.route;
      }
    },
  };
}

const accepts = (route: RouteSpec, method: string): boolean =>
  route.methods.includes(method as 'GET' | 'POST') || (method === 'HEAD' && route.methods.includes('GET'));

/** The `Allow` header of a route. */
export function allowOf(route: RouteSpec): string {
  const methods: string[] = [...route.methods];
  if (route.methods.includes('GET')) methods.push('HEAD');
  if (route.preflight === true) methods.push('OPTIONS');
  return methods.join(', ');
}

/** The refusal of a method a route does not take: 405 with its `Allow`. */
export const wrongMethod = (route: RouteSpec): RelayError =>
  new RelayError('methodNotAllowed', `${route.label}: method not allowed`, undefined, { allow: allowOf(route) });

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
export const pathOf = (req: IncomingMessage): string => normalizePath(originForm(req.url ?? '/'));

/** The logger surface the error path needs (pino fits). */
export interface ErrorLog {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ErrorPolicy {
  /** BUSY_RETRY_AFTER_SEC: `Retry-After` of a refusal that does not say its own. */
  readonly retryAfterSec: number;
  /**
   * What an error of no known kind is answered with: `internal` (500, the core: a fault of ours) or
   * `busy` (503, the gatekeeper: its only faults are unavailable dependencies).
   */
  readonly unexpected: 'internal' | 'busy';
  readonly log: ErrorLog;
}

/** The row of the error table an error is answered with. Pure: no logging. */
export function errorCodeOf(err: unknown, policy: Pick<ErrorPolicy, 'unexpected'>): ErrorCode {
  if (isRelayError(err)) return err.code;
  return policy.unexpected;
}

export type ErrorPath = (req: IncomingMessage, res: ServerResponse, err: unknown) => number;

/**
 * The one error path of a tier: writes the response for `err` (a row of ERRORS, with the error's own
 * `Retry-After` and headers where it has them) and returns the status written. A response already
 * under way, or a client gone mid-body, is cut off instead.
 */
export function errorPath(policy: ErrorPolicy): ErrorPath {
  const { log } = policy;
  // During an outage every request fails the same way: the first is logged, then one a second.
  const storeUnavailable = everyInterval(1000, (suppressed, err: StoreUnavailableError) =>
    log.warn({ op: err.op, err: err.message, suppressed }, 'store unavailable'),
  );
  return (req, res, err) => {
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return res.statusCode;
    }
    if (!isRelayError(err) && req.destroyed && !req.complete) {
      res.destroy();
      return res.statusCode;
    }
    const code = errorCodeOf(err, policy);
    if (isStoreUnavailable(err)) {
      storeUnavailable(err);
    } else if (isRelayError(err)) {
      log.debug({ code, why: err.logMessage }, 'request refused');
    } else {
      // A fault of ours. Only the name and message are logged: store errors carry command
      // arguments, which may be tokens.
      log.error(
        { errName: err instanceof Error ? err.name : typeof err, errMessage: err instanceof Error ? err.message.slice(0, 200) : String(err).slice(0, 200) },
        'unexpected error',
      );
    }
    const retryAfterSec = (isRelayError(err) ? err.retryAfterSec : undefined) ?? policy.retryAfterSec;
    sendError(res, code, retryAfterSec, isRelayError(err) ? err.headers : undefined);
    return ERRORS[code].status;
  };
}

/** What `serve` reports of every finished request. */
export type RequestDone = (req: IncomingMessage, res: ServerResponse, path: string, seconds: number) => void;

/**
 * A node:http listener around an async handler: aborted requests and broken sockets never become
 * uncaught errors, a thrown error goes down the error path, and every request is reported once to
 * `done` (metrics, the debug log) with the status the client got.
 */
export function serve(
  handle: (req: IncomingMessage, res: ServerResponse, path: string) => Promise<void>,
  fail: ErrorPath,
  done: RequestDone,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    req.on('error', noop);
    res.on('error', noop);
    const startedMs = performance.now();
    const path = pathOf(req);
    handle(req, res, path)
      .catch((err: unknown) => {
        try {
          fail(req, res, err);
        } catch {
          res.destroy();
        }
      })
      .finally(() => done(req, res, path, (performance.now() - startedMs) / 1000));
  };
}

const noop = (): void => {};
