/**
 * Several core worker processes (CORE_WORKERS > 1) with node:cluster. The primary serves nothing
 * itself: it forks the workers, which all listen on CORE_PORT (and CORE_ADMIN_PORT) through the
 * cluster's shared handles (round-robin on Linux, Node's default), and supervises them:
 *
 * - Each worker is a full replica (main.ts `serve`): its own Redis connections, load meter replica
 *   id (so /internal/load counts N replicas), BullMQ worker and metrics registry. The job schedules
 *   are upserted by id, so the deployment keeps one schedule per job whatever N is (jobs.ts).
 * - Readiness: every worker reports its ports over IPC once it listens; the primary logs
 *   "listening" (once, with the port) when all N have. A worker that dies before that is a failed
 *   start: the primary stops the others and exits 1, like a single process that cannot listen.
 * - A worker that dies later is forked again after a backoff (`restartDelayMs`), reset once a
 *   worker of that slot has stayed up for `STABLE_MS`, so a crash loop does not spin.
 * - SIGTERM, SIGINT, or the launcher's IPC channel closing: the primary sends SIGTERM to every
 *   worker (each drains like a single process does), waits for them, logs "stopped", exits 0.
 * - Metrics: a worker asked for `/metrics` (on whichever port it serves it) asks the primary, which
 *   collects `getMetricsAsJSON()` from every listening worker and its own registry (process metrics,
 *   `workers`, `worker_restarts_total`) and answers with prom-client's
 *   `AggregatorRegistry.aggregate` of them: a scrape sees the whole process group.
 *
 * The IPC is a few small JSON messages tagged `zax`; cluster's and prom-client's own messages are
 * left alone (prom-client's `clusterMetrics()` is not used: it waits for workers that are still
 * starting, and a scrape would time out while one restarts).
 */
import cluster, { type Worker } from 'node:cluster';
import { freePort } from '@zax/service';
import { AggregatorRegistry, Counter, Gauge, Registry, collectDefaultMetrics, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { Config } from './config.js';
import type { Logger } from '@zax/service';
import { METRIC_PREFIX } from './metrics.js';

/** First restart delay; doubled for every further quick failure of the same slot. */
export const RESTART_BASE_MS = 250;
/** Longest restart delay. */
export const RESTART_MAX_MS = 30_000;
/** A worker that lived this long resets its slot's failure count. */
export const STABLE_MS = 30_000;
/** How long the primary waits for the workers' metrics before the scrape fails. */
const COLLECT_TIMEOUT_MS = 4000;
/** How long a worker waits for the primary's aggregation. */
const EXPOSITION_TIMEOUT_MS = 5000;
/** Longest shutdown of the workers (each drains for at most ~16 s) before they are killed. */
const STOP_TIMEOUT_MS = 25_000;

/** Delay before the `failures`-th quick restart in a row (1-based): 250 ms, 500 ms, 1 s, … 30 s. */
export function restartDelayMs(failures: number): number {
  return Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** Math.max(0, Math.min(failures - 1, 20)));
}

// ---- IPC messages ----
type Metrics = MetricObjectWithValues<MetricValue<string>>[];
type ToPrimary =
  | { zax: 'listening'; port: number; adminPort: number | null }
  | { zax: 'exposition?'; id: number }
  | { zax: 'collected'; id: number; metrics?: Metrics; error?: string };
type ToWorker = { zax: 'exposition'; id: number; text?: string; error?: string } | { zax: 'collect'; id: number };

const isZax = (m: unknown): m is { zax: string } => typeof m === 'object' && m !== null && typeof (m as { zax?: unknown }).zax === 'string';

// =============================================================================================
// Worker side
// =============================================================================================

/** A worker's link to the primary (main.ts, when `cluster.isWorker`). */
export interface WorkerLink {
  /** Tells the primary this worker serves, on these ports. */
  listening(port: number, adminPort: number | null): void;
  /** Answers the primary's collections with `registry`'s own metrics. */
  serveMetrics(registry: Registry): void;
  /** The process group's metrics text, from the primary (the registry's `exposition`). */
  exposition(): Promise<string>;
}

export function workerLink(): WorkerLink {
  const send = (m: ToPrimary): void => {
    if (process.connected) process.send?.(m);
  };
  let nextId = 0;
  const waiting = new Map<number, { resolve: (text: string) => void; reject: (e: Error) => void }>();
  let registry: Registry | null = null;
  process.on('message', (m: unknown) => {
    if (!isZax(m)) return;
    const msg = m as ToWorker;
    if (msg.zax === 'exposition') {
      const w = waiting.get(msg.id);
      if (w === undefined) return;
      waiting.delete(msg.id);
      if (msg.text !== undefined) w.resolve(msg.text);
      else w.reject(new Error(`metrics: ${msg.error ?? 'no answer'}`));
    } else if (msg.zax === 'collect') {
      const reg = registry;
      if (reg === null) return send({ zax: 'collected', id: msg.id, metrics: [] });
      reg.getMetricsAsJSON().then(
        (metrics) => send({ zax: 'collected', id: msg.id, metrics: metrics as Metrics }),
        (e: unknown) => send({ zax: 'collected', id: msg.id, error: e instanceof Error ? e.message : String(e) }),
      );
    }
  });
  return {
    listening: (port, adminPort) => send({ zax: 'listening', port, adminPort }),
    serveMetrics(reg) {
      registry = reg;
    },
    exposition() {
      const id = nextId++;
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error('metrics: the primary did not answer in time'));
        }, EXPOSITION_TIMEOUT_MS);
        waiting.set(id, {
          resolve: (t) => {
            clearTimeout(timer);
            resolve(t);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
        send({ zax: 'exposition?', id });
      });
    },
  };
}

// =============================================================================================
// Primary side
// =============================================================================================

/** A free TCP port on `host` (for CORE_ADMIN_PORT=0: every worker must get the same one). */
interface Slot {
  readonly index: number;
  worker: Worker | null;
  listening: boolean;
  startedMs: number;
  failures: number;
  timer: NodeJS.Timeout | null;
}

/**
 * Runs the primary: forks `config.workers` workers of this same script and supervises them until a
 * stop signal; then exits the process (0, or 1 when the workers could not start).
 */
export async function runPrimary(config: Config, log: Logger): Promise<void> {
  const n = config.workers;
  // Both servers of a worker listening on port 0 would share one cluster handle (same key): a port
  // 0 for the admin server is chosen here, once, and given to every worker. CORE_PORT 0 is left to
  // the cluster, which gives every worker the same port.
  const env: Record<string, string> = {};
  if (config.adminPort === 0) env.CORE_ADMIN_PORT = String(await freePort(config.host));

  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  const slots: Slot[] = Array.from({ length: n }, (_, index) => ({ index, worker: null, listening: false, startedMs: 0, failures: 0, timer: null }));
  new Gauge({
    name: `${METRIC_PREFIX}workers`,
    help: 'Core worker processes serving (CORE_WORKERS > 1)',
    registers: [registry],
    collect() {
      this.set(slots.filter((s) => s.listening).length);
    },
  });
  const restarts = new Counter({
    name: `${METRIC_PREFIX}worker_restarts_total`,
    help: 'Core worker processes forked again after one exited',
    registers: [registry],
  });

  let ready = false;
  let stopping = false;
  let port = config.port;
  let adminPort: number | null = null;

  // ---- metrics: collect from every listening worker, aggregate ----
  let nextCollect = 0;
  const collections = new Map<number, { waiting: Set<number>; results: Metrics[]; done: (err: Error | null) => void }>();
  const finishIfComplete = (id: number): void => {
    const c = collections.get(id);
    if (c !== undefined && c.waiting.size === 0) c.done(null);
  };
  async function aggregated(): Promise<string> {
    const id = nextCollect++;
    const targets = slots.filter((s) => s.listening && s.worker?.isConnected() === true).map((s) => s.worker!);
    const results: Metrics[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => c.done(new Error('workers did not answer in time')), COLLECT_TIMEOUT_MS);
      const c = {
        waiting: new Set(targets.map((w) => w.id)),
        results,
        done(err: Error | null) {
          clearTimeout(timer);
          collections.delete(id);
          if (err === null) resolve();
          else reject(err);
        },
      };
      collections.set(id, c);
      for (const w of targets) w.send({ zax: 'collect', id } satisfies ToWorker);
      finishIfComplete(id);
    });
    results.push((await registry.getMetricsAsJSON()) as Metrics);
    return AggregatorRegistry.aggregate(results).metrics();
  }

  // ---- workers ----
  const onMessage = (slot: Slot, worker: Worker, m: unknown): void => {
    if (!isZax(m)) return;
    const msg = m as ToPrimary;
    switch (msg.zax) {
      case 'listening': {
        if (slot.worker !== worker) return;
        slot.listening = true;
        port = msg.port;
        adminPort = msg.adminPort;
        if (ready) {
          log.info({ slot: slot.index, pid: worker.process.pid }, 'worker listening again');
          return;
        }
        if (slots.every((s) => s.listening)) {
          ready = true;
          if (adminPort !== null) log.info({ adminPort, host: config.host }, 'admin listening');
          log.info(
            { port, host: config.host, metricsOn: config.adminPort === null ? 'port' : 'adminPort', loadPeriodSec: config.loadPeriodSec, workers: n },
            'listening',
          );
        }
        return;
      }
      case 'exposition?':
        aggregated().then(
          (text) => worker.isConnected() && worker.send({ zax: 'exposition', id: msg.id, text } satisfies ToWorker),
          (e: unknown) => worker.isConnected() && worker.send({ zax: 'exposition', id: msg.id, error: e instanceof Error ? e.message : String(e) } satisfies ToWorker),
        );
        return;
      case 'collected': {
        const c = collections.get(msg.id);
        if (c === undefined) return;
        if (msg.error !== undefined) return c.done(new Error(`a worker failed to collect: ${msg.error}`));
        c.results.push(msg.metrics ?? []);
        c.waiting.delete(worker.id);
        finishIfComplete(msg.id);
        return;
      }
    }
  };

  const fork = (slot: Slot): void => {
    slot.timer = null;
    slot.listening = false;
    slot.startedMs = performance.now();
    const worker = cluster.fork(env);
    slot.worker = worker;
    worker.on('message', (m: unknown) => onMessage(slot, worker, m));
    worker.on('error', () => undefined); // a send to a worker that just died; its exit follows
    worker.once('exit', (code, signal) => onExit(slot, worker, code, signal));
    log.info({ slot: slot.index, pid: worker.process.pid }, 'worker started');
  };

  const onExit = (slot: Slot, worker: Worker, code: number | null, signal: string | null): void => {
    if (slot.worker !== worker) return;
    slot.worker = null;
    slot.listening = false;
    for (const [id, c] of collections) if (c.waiting.delete(worker.id)) finishIfComplete(id);
    if (stopping) {
      if (slots.every((s) => s.worker === null)) finish(exitCode);
      return;
    }
    if (!ready) {
      log.error({ slot: slot.index, pid: worker.process.pid, code, signal }, 'worker exited before the core was ready; stopping');
      exitCode = 1;
      stop('start-up failed');
      return;
    }
    const lived = performance.now() - slot.startedMs;
    slot.failures = lived >= STABLE_MS ? 1 : slot.failures + 1;
    const delay = restartDelayMs(slot.failures);
    log.warn({ slot: slot.index, pid: worker.process.pid, code, signal, restartInMs: delay }, 'worker exited; restarting it');
    restarts.inc();
    slot.timer = setTimeout(() => fork(slot), delay);
  };

  let exitCode = 0;
  const finish = (code: number): void => {
    log.info({}, 'stopped');
    process.exit(code);
  };
  const stop = (reason: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: reason }, 'shutting down');
    for (const s of slots) {
      if (s.timer !== null) clearTimeout(s.timer);
      s.timer = null;
      s.worker?.process.kill('SIGTERM');
    }
    const force = setTimeout(() => {
      log.warn({}, 'workers did not stop in time; killing them');
      for (const s of slots) s.worker?.process.kill('SIGKILL');
    }, STOP_TIMEOUT_MS);
    force.unref();
    if (slots.every((s) => s.worker === null)) finish(exitCode);
  };

  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // Started by `pnpm start` with an IPC channel: if the launcher dies, the workers drain.
  if (process.connected) process.on('disconnect', () => stop('launcher gone'));

  log.info({ workers: n }, 'starting worker processes');
  for (const s of slots) fork(s);
}
