/**
 * Admission of a request to its route, in the order of docs/PROTOCOL.md §6.3: overload (503,
 * MAX_IN_FLIGHT_REQUESTS) and per-client throttling (429), both before the body is read; then the
 * body's size (413, DEVIATION D11) and the body budgets (503 for the process, 429 for the address,
 * 408 for a body too slow). What a route takes is declared in its row of the route table (routes.ts).
 */
import { RelayError } from '@zax/protocol';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Edge } from './edge.js';
import { BodyRefused, SMALL_BODY_BYTES, declaredLength, readBodyBounded, type Refusal } from './limits.js';
import type { GatekeeperRoute } from './routes.js';

const EMPTY = Buffer.alloc(0);

/**
 * After refusing a body, the connection is half-closed at once (the rest of the body is read and
 * dropped, never kept) and destroyed after this long at most. Closing outright with unread bytes
 * would reset the connection and could lose the answer on its way to the client.
 */
const LINGER_MS = 1000;

/**
 * Runs the route's guards. Resolves with the body (empty for a route that reads none), or null when
 * the request was answered or dropped here; throws a RelayError for a refusal the error path writes.
 */
export async function admit(edge: Edge, route: GatekeeperRoute, req: IncomingMessage, res: ServerResponse): Promise<Buffer | null> {
  const limit = route.bodyLimit?.(edge.config) ?? null;
  if (limit !== null) holdInFlight(edge, req, res, limit);
  const client = route.budget === null ? '' : edge.identify(req);
  if (route.budget !== null) await throttle(edge, route, client, req, limit);
  return limit === null ? EMPTY : readBody(edge, req, res, limit, client);
}

/** §6.3 overload: a slot of MAX_IN_FLIGHT_REQUESTS, given back when the response closes. */
function holdInFlight(edge: Edge, req: IncomingMessage, res: ServerResponse, limit: number): void {
  const max = edge.config.maxInFlightRequests;
  if (max > 0 && edge.inFlight >= max) {
    edge.metrics.overloaded();
    discardRest(req, limit);
    throw new RelayError('busy', 'too many requests in flight');
  }
  edge.inFlight++;
  res.once('close', () => {
    edge.inFlight--;
  });
}

async function throttle(edge: Edge, route: GatekeeperRoute, client: string, req: IncomingMessage, limit: number | null): Promise<void> {
  const budget = route.budget!;
  const waitSec = await edge.takeToken(budget, client);
  if (waitSec === 0) return;
  if (edge.log.isLevelEnabled('debug')) edge.log.debug(edge.config.logClientIps ? { budget, client } : { budget }, 'throttled');
  if (limit !== null) discardRest(req, limit);
  throw new RelayError('throttled', `throttled (${route.label})`, waitSec);
}

/**
 * Body size (413), then the body budgets: a declared length is reserved before any of it is read;
 * a chunked body reserves what arrives. Given back once, when the response closes.
 */
async function readBody(edge: Edge, req: IncomingMessage, res: ServerResponse, limit: number, client: string): Promise<Buffer | null> {
  const declared = declaredLength(req);
  if (declared !== null && declared > limit) {
    discardRest(req, limit);
    throw new RelayError('tooLarge', `content-length ${declared} > ${limit}`);
  }
  const reservation = edge.bodies.open(client);
  res.once('close', reservation.release);
  if (declared !== null) {
    const headroom = declared <= SMALL_BODY_BYTES ? Math.floor(edge.config.maxBodyBytesInFlight / 8) : 0;
    const refused = reservation.grow(declared, headroom);
    if (refused !== null) return refuseBody(edge, req, res, refused);
  }
  try {
    return await readBodyBounded(req, limit, reservation, declared === null, edge.watch);
  } catch (err) {
    if (err instanceof BodyRefused) {
      if (err.reason !== 'aborted') return refuseBody(edge, req, res, err.reason);
      // The client went away mid-body: there is no one to answer.
      res.destroy();
      return null;
    }
    discardRest(req, limit);
    throw err;
  }
}

/**
 * A body refused by a budget (503 for the process, 429 for the address) or cut off as too slow
 * (408): answered at once, the connection half-closed and then destroyed (LINGER_MS); nothing of
 * the body is kept.
 */
function refuseBody(edge: Edge, req: IncomingMessage, res: ServerResponse, reason: Refusal | 'slow'): null {
  edge.metrics.bodyRefused(reason);
  const socket = req.socket;
  if (res.headersSent || res.destroyed) {
    socket.destroy();
    return null;
  }
  res.once('finish', () => {
    socket.end();
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  });
  const refusal =
    reason === 'slow'
      ? new RelayError('bodyTimeout', 'body too slow')
      : reason === 'process'
        ? new RelayError('busy', 'body budget (process)')
        : new RelayError('throttled', 'body budget (address)', 1);
  edge.fail(req, res, refusal);
  return null;
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
