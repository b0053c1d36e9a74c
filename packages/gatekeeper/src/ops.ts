/**
 * Health and metrics routes. Readiness is the edge store only: with the core down the gatekeeper
 * still answers 503s. A cluster that is down or has slots no primary serves is not ready.
 */
import { RelayError } from '@zax/protocol';
import { sendOk, storeProblem, timed } from '@zax/service';
import type { RouteHandler } from './routes.js';

export const livez: RouteHandler = async (_edge, _req, res) => {
  sendOk(res, 'ok');
};

export const readyz: RouteHandler = async (edge, _req, res) => {
  let problem: string | null;
  try {
    problem = await timed(edge.metrics.redis('ping'), () => storeProblem(edge.redis));
  } catch (err) {
    problem = err instanceof Error ? err.message : 'edge store unavailable';
  }
  if (problem !== null) throw new RelayError('busy', `not ready: ${problem.slice(0, 120)}`);
  sendOk(res, 'ok');
};

export const metricsRoute: RouteHandler = async (edge, _req, res) => {
  const text = await edge.metrics.registry.metrics();
  res.writeHead(200, { 'content-type': edge.metrics.registry.contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
};
