/**
 * Health, metrics and the load report. `/readyz` is the store: a cluster that is down or has slots
 * no primary serves is not ready (nor is a lost primary). A stale job is named but keeps the core
 * ready: the schedules are shared by every replica, so failing readiness would take them all out
 * together for a fault that traffic does not cause and that the jobs heal themselves
 * (packages/core/README.md "Maintenance jobs").
 */
import { RelayError } from '@zax/protocol';
import { sendOk, storeProblem } from '@zax/service';
import type { ServerResponse } from 'node:http';
import { loadReport } from './load.js';
import type { RouteHandler } from './routes.js';
import { StoreUnavailableError, storeCall } from './store/index.js';

export const livez: RouteHandler = async (_core, _req, res) => sendOk(res, 'ok');

export const readyz: RouteHandler = async (core, _req, res) => {
  const problem = await storeCall('ping', () => storeProblem(core.redis), core.metrics);
  if (problem !== null) throw new StoreUnavailableError('ping', new Error(problem));
  const stale = core.jobHealth().filter((j) => j.stale).map((j) => j.job);
  sendOk(res, stale.length === 0 ? 'ok' : `ok; stale jobs: ${stale.join(' ')}`);
};

/** GET /internal/load: the deployment's load (docs/CONTRACT.md), also kept in the load gauges. */
export const loadRoute: RouteHandler = async (core, _req, res) => {
  const report = await loadReport(core.report);
  core.metrics.load(report);
  sendJson(res, 200, report);
};

export const metricsRoute: RouteHandler = async (core, _req, res) => {
  // The deployment's load figures (gauges) as /internal/load would serve them now; a Redis
  // failure leaves the last values and never fails the scrape.
  try {
    core.metrics.load(await loadReport(core.report));
  } catch {
    // keep the previous figures
  }
  let text: string;
  try {
    text = await core.metrics.registry.metrics();
  } catch (e) {
    // In a worker group the text is the primary's aggregate over every worker: a worker that does
    // not answer in time makes the scrape unavailable for now, not a fault of the core.
    core.log.warn({ err: e instanceof Error ? e.message : String(e) }, 'metrics unavailable');
    throw new RelayError('busy', 'metrics unavailable');
  }
  res.writeHead(200, { 'content-type': core.metrics.registry.contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
};

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'cache-control': 'no-store', 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
