/**
 * Admission of a request to its route, in the order of docs/PROTOCOL.md §6.3: overload (503,
 * MAX_IN_FLIGHT_REQUESTS) and per-client throttling (429), both before the body is read; then the
 * body under its limits (limits.ts: 413, the body budgets, the body rate). What a route takes is
 * declared in its row of the route table (routes.ts).
 */
import { RelayError } from '@zax/protocol';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Edge } from './edge.js';
import { discardRest, readBody } from './limits.js';
import type { Budget } from './metrics.js';
import type { GatekeeperRoute } from './routes.js';

const EMPTY = Buffer.alloc(0);

/**
 * Runs the route's guards. Resolves with the body (empty for a route that reads none), or null when
 * the request was answered or dropped here; throws a RelayError for a refusal the error path writes.
 */
export async function admit(edge: Edge, route: GatekeeperRoute, req: IncomingMessage, res: ServerResponse): Promise<Buffer | null> {
  const limit = route.bodyLimit?.(edge.config) ?? null;
  const client = route.budget === null ? '' : edge.identify(req);
  try {
    if (limit !== null) holdInFlight(edge, res);
    if (route.budget !== null) await throttle(edge, route.budget, client);
  } catch (refusal) {
    // Refused before the body is read: the body is dropped, the connection kept.
    if (limit !== null) discardRest(req, limit);
    throw refusal;
  }
  return limit === null ? EMPTY : readBody(edge, req, res, limit, client);
}

/** §6.3 overload: a slot of MAX_IN_FLIGHT_REQUESTS, given back when the response closes. */
function holdInFlight(edge: Edge, res: ServerResponse): void {
  const max = edge.config.maxInFlightRequests;
  if (max > 0 && edge.inFlight >= max) {
    edge.metrics.overloaded();
    throw new RelayError('busy', 'too many requests in flight');
  }
  edge.inFlight++;
  res.once('close', () => {
    edge.inFlight--;
  });
}

/** Per-client throttling (429): a token of the route's budget. */
async function throttle(edge: Edge, budget: Budget, client: string): Promise<void> {
  const waitSec = await edge.takeToken(budget, client);
  if (waitSec === 0) return;
  if (edge.log.isLevelEnabled('debug')) edge.log.debug(edge.config.logClientIps ? { budget, client } : { budget }, 'throttled');
  throw new RelayError('throttled', `throttled (${budget})`, waitSec);
}
