/**
 * The core's Prometheus metrics (prom-client), all named `zax_core_*`, in one registry per app (no
 * global registry: tests run several apps in one process). Labels hold only fixed, low-cardinality
 * values — route names, status codes, command names, store operation names, job names — never an
 * hpk, an IP, a token or a nonce (docs/DESIGN.md "Conventions"). Hot-path children are resolved once and cached, so
 * recording a request or a command allocates nothing. It is also the stores' observer
 * (store/observer.ts): Redis latency by operation, messages and file bytes stored, deleted, expired.
 *
 * Under node:cluster (CORE_WORKERS > 1, cluster.ts) every worker keeps its own registry; a scrape is
 * answered with prom-client's `AggregatorRegistry.aggregate` of all of them, which sums by default.
 * The gauges that are not sums say how they combine (`aggregator`): this replica's utilisation and
 * p99 take the worst worker (`max`, like /internal/load), and the deployment's load figures, which
 * every worker then reads afresh at collection (`loadSource`), are the same in each (`max`), as are
 * the census figures (`censusSource`: mailboxes, messages and files, read from the census record).
 */
import { COMMAND_NAMES, type CommandName, type LoadReport } from '@zax/protocol';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { createRegistry, redisLatency } from '@zax/service';
import type { Census } from './census.js';
import { ROUTE_LABELS, type RouteLabel } from './routes.js';
import type { FileChange, MessageChange, StoreObserver } from './store/observer.js';

export const METRIC_PREFIX = 'zax_core_';

export type { RouteLabel };

/** `failed`: the proof was refused (4xx); `error`: the relay could not check it (5xx). */
export type ProofOutcome = 'ok' | 'failed' | 'error';
/** `ok`: a key pair minted (or the same one returned again); `proven`: 409, the handshake was already used. */
export type MintOutcome = 'ok' | 'proven';
export type JobOutcome = 'completed' | 'failed';

export interface MetricsOptions {
  /** Process metrics (CPU, memory, event-loop lag, GC) under the same prefix. @default false */
  collectDefault?: boolean;
  /**
   * Cluster workers: what `registry.metrics()` serves (the whole process group's metrics, from the
   * primary). `getMetricsAsJSON()` stays this registry's own figures, which the primary collects.
   * @default the registry's own text
   */
  exposition?: () => Promise<string>;
}

/** A registry whose text exposition comes from elsewhere (the cluster primary's aggregation). */
class ExposedRegistry extends Registry {
  constructor(private readonly exposition: () => Promise<string>) {
    super();
  }
  override metrics(): Promise<string> {
    return this.exposition();
  }
}

export interface CoreMetrics extends StoreObserver {
  readonly registry: Registry;
  /** One finished request. */
  request(route: RouteLabel, status: number, seconds: number): void;
  /** One `/command` by name (`unknown` before the box is opened) and the status it was answered with. */
  command(cmd: CommandName | 'unknown', status: number): void;
  mint(outcome: MintOutcome): void;
  proof(outcome: ProofOutcome): void;
  /** A BullMQ job finished (from the worker's events). */
  job(name: string, outcome: JobOutcome): void;
  /** A job schedule was found missing (or its job stale) and upserted again (jobs.ts). */
  jobScheduleRestored(name: string): void;
  /** Per job, its last completed run (wall-clock ms, null if none seen) and staleness, read at scrape time. */
  jobHealth(read: () => readonly { job: string; lastRunMs: number | null; stale: boolean }[]): void;
  /** This replica's event-loop utilisation and p99, read at scrape time. */
  localLoad(read: () => { eventLoopUtilization: number; latencyP99Ms: number }): void;
  /** The deployment's load as served on /internal/load (last settled period, all replicas). */
  load(report: LoadReport): void;
  /** One durable write's wait for its replicas (REDIS_WAIT_REPLICAS > 0). */
  replicationWait(outcome: 'confirmed' | 'timeout' | 'moved', seconds: number): void;
  /**
   * Cluster workers: the `load_*` gauges read `read()` at every collection (a failure keeps the
   * last figures), so that each worker's copy is current when the primary aggregates them.
   */
  loadSource(read: () => Promise<LoadReport>): void;
  /** STORE_HIGH_WATER_RATIO, for "store near its high-water mark" alerts. */
  storeHighWater(ratio: number): void;
  /** Bytes of file chunks stored on the whole relay (the file buckets' totals), read at scrape time. */
  fileBytesSource(read: () => Promise<number>): void;
  /**
   * The last census (census.ts), read once per scrape for the `mailboxes`, `messages`, `files` and
   * `census_*` gauges: null (none, or expired) sets them to 0; a failed read keeps the last figures.
   */
  censusSource(read: () => Promise<Census | null>): void;
}

const statusLabel = (status: number): string => String(status);

/**
 * One read per collection, shared by the gauges that show it: they are collected concurrently, and
 * each one's `collect` awaits `refresh()`, which starts the read or joins the one under way. A
 * failed read leaves the figures as they were (the scrape itself never fails).
 */
function sharedRead<T>(apply: (value: T) => void): { source(read: () => Promise<T>): void; refresh(): Promise<void> | undefined } {
  let read: (() => Promise<T>) | null = null;
  let running: Promise<void> | null = null;
  return {
    source(r) {
      read = r;
    },
    refresh() {
      if (read === null) return undefined;
      return (running ??= read()
        .then(apply, () => undefined)
        .finally(() => {
          running = null;
        }));
    },
  };
}

export function createMetrics(opts: MetricsOptions = {}): CoreMetrics {
  const registry = createRegistry(METRIC_PREFIX, opts.collectDefault === true, opts.exposition === undefined ? new Registry() : new ExposedRegistry(opts.exposition));
  const registers = [registry];
  const p = METRIC_PREFIX;

  const duration = new Histogram({
    name: `${p}http_request_duration_seconds`,
    help: 'Time from request to response, by route and status',
    labelNames: ['route', 'status'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  const commands = new Counter({
    name: `${p}commands_total`,
    help: '/command requests by command name ("unknown" when refused before the box was opened) and response status',
    labelNames: ['cmd', 'status'] as const,
    registers,
  });
  const minted = new Counter({
    name: `${p}handshakes_minted_total`,
    help: 'POST /internal/sessions answers: ok = session key pair minted for a verified handshake, proven = 409 (already used)',
    labelNames: ['outcome'] as const,
    registers,
  });
  const proofs = new Counter({
    name: `${p}proofs_total`,
    help: '/prove requests by outcome: ok, failed (refused, 4xx), error (could not be checked, 5xx)',
    labelNames: ['outcome'] as const,
    registers,
  });
  const counter = (name: string, help: string): Counter => new Counter({ name: `${p}${name}`, help, registers });
  const messages: Record<MessageChange, Counter> = {
    stored: counter('messages_stored_total', 'Messages stored by upload (new or replacing one with the same nonce), file messages included'),
    deleted: counter('messages_deleted_total', 'Messages removed by a delete command'),
    expired: counter('messages_expired_total', 'Messages removed after their lifetime ended'),
  };
  const messageBytes: Record<MessageChange, Counter> = {
    stored: counter('message_bytes_stored_total', 'Data bytes of the messages stored'),
    deleted: counter('message_bytes_deleted_total', 'Data bytes of the messages removed by delete'),
    expired: counter('message_bytes_expired_total', 'Data bytes of the messages removed after expiry'),
  };
  const files: Record<FileChange, Counter> = {
    stored: counter('file_chunks_stored_total', 'File chunks stored (uploadFileChunk answered OK)'),
    deleted: counter('files_deleted_total', 'Files removed by deleteFile'),
    expired: counter('files_expired_total', 'Files removed by the sweep job after their lifetime ended'),
  };
  const fileBytes: Record<FileChange, Counter> = {
    stored: counter('file_bytes_stored_total', 'Chunk bytes stored'),
    deleted: counter('file_bytes_deleted_total', 'Chunk bytes freed by deleteFile'),
    expired: counter('file_bytes_expired_total', 'Chunk bytes freed by the sweep job'),
  };
  const latency = redisLatency(registry, p, 'Core Redis round trips by store operation, failures included');
  const replicationWaits = new Histogram({
    name: `${p}redis_replication_wait_seconds`,
    help: 'Durable writes (REDIS_WAIT_REPLICAS > 0) by outcome of their wait for the replicas: confirmed, timeout (answered 503), moved (the connection or slot changed meanwhile: 503)',
    labelNames: ['outcome'] as const,
    buckets: [0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    registers,
  });
  const jobs = new Counter({
    name: `${p}jobs_total`,
    help: 'BullMQ maintenance jobs run by this core (all its worker processes), by job name and outcome',
    labelNames: ['job', 'outcome'] as const,
    registers,
  });

  const restored = new Counter({
    name: `${p}job_schedules_restored_total`,
    help: 'Job schedules this core found missing in Redis (e.g. after Redis came back empty) or whose job was stale, and upserted again',
    labelNames: ['job'] as const,
    registers,
  });
  let readJobs: () => readonly { job: string; lastRunMs: number | null; stale: boolean }[] = () => [];
  new Gauge({
    name: `${p}job_last_run_timestamp_seconds`,
    help: 'Unix time of the last completed run of each maintenance job, by any replica, as this core knows it (absent before one is seen)',
    labelNames: ['job'] as const,
    registers,
    aggregator: 'max',
    collect() {
      this.reset();
      for (const j of readJobs()) if (j.lastRunMs !== null) this.labels(j.job).set(j.lastRunMs / 1000);
    },
  });
  new Gauge({
    name: `${p}job_stale`,
    help: '1 when a maintenance job has not completed for two of its periods (counted from start-up at the earliest), else 0',
    labelNames: ['job'] as const,
    registers,
    aggregator: 'max',
    collect() {
      this.reset();
      for (const j of readJobs()) this.labels(j.job).set(j.stale ? 1 : 0);
    },
  });

  let readLocal = (): { eventLoopUtilization: number; latencyP99Ms: number } => ({ eventLoopUtilization: 0, latencyP99Ms: 0 });
  new Gauge({
    name: `${p}event_loop_utilization`,
    help: "This replica's event-loop utilisation over the last second (0..1)",
    registers,
    aggregator: 'max',
    collect() {
      this.set(readLocal().eventLoopUtilization);
    },
  });
  new Gauge({
    name: `${p}latency_p99_seconds`,
    help: "This replica's p99 API request duration over the load period in progress",
    registers,
    aggregator: 'max',
    collect() {
      this.set(readLocal().latencyP99Ms / 1000);
    },
  });
  const loadRead = sharedRead(setLoad);
  const gauge = (name: string, help: string): Gauge =>
    new Gauge({ name: `${p}${name}`, help, registers, aggregator: 'max', collect: () => loadRead.refresh() });
  const load = {
    mints: gauge('load_mints', 'Session key pairs minted in the last load period, all replicas (as on /internal/load)'),
    commands: gauge('load_commands', '/prove and /command requests in the last load period, all replicas'),
    replicas: gauge('load_replicas', 'Core replicas that reported figures for the last load period'),
    elu: gauge('load_event_loop_utilization', 'Worst event-loop utilisation of any replica over the last load period'),
    p99: gauge('load_latency_p99_seconds', 'Worst p99 request duration of any replica over the last load period'),
    periodEnd: gauge('load_period_end_seconds', 'End (Unix time) of the load period the load_* gauges describe'),
    used: gauge('redis_used_memory_bytes', 'Core Redis used_memory'),
    max: gauge('redis_max_memory_bytes', 'Core Redis maxmemory (0 = no limit)'),
  };

  const highWater = new Gauge({
    name: `${p}store_high_water_ratio`,
    help: 'STORE_HIGH_WATER_RATIO: above this share of Redis maxmemory, writes get 503',
    registers,
    aggregator: 'max',
  });
  let readFileBytes: (() => Promise<number>) | null = null;
  new Gauge({
    name: `${p}file_bytes_stored`,
    help: 'Bytes of file chunks stored on the whole relay, all replicas (the file buckets\' totals)',
    registers,
    aggregator: 'max',
    async collect() {
      if (readFileBytes === null) return;
      try {
        this.set(await readFileBytes());
      } catch {
        // A store failure keeps the last figure; the scrape itself must not fail.
      }
    },
  });

  const censusRead = sharedRead<Census | null>((c) => {
    census.mailboxes.set(c?.mailboxes ?? 0);
    census.messages.set(c?.messages ?? 0);
    census.files.set(c?.files ?? 0);
    census.at.set(c === null ? 0 : c.atMs / 1000);
    census.complete.set(c?.complete === true ? 1 : 0);
  });
  const AGE = "by the census job every CENSUS_INTERVAL_SEC: at most one period plus the census's duration old (see census_timestamp_seconds); 0 when no census was written for three periods";
  const censusGauge = (name: string, help: string): Gauge =>
    new Gauge({ name: `${p}${name}`, help, registers, aggregator: 'max', collect: () => censusRead.refresh() });
  const census = {
    mailboxes: censusGauge('mailboxes', `Mailboxes holding at least one live message, whole relay, counted ${AGE}`),
    messages: censusGauge('messages', `Live messages stored (file messages included), whole relay, counted ${AGE}`),
    files: censusGauge('files', `Live files stored, whole relay, counted ${AGE}`),
    at: censusGauge('census_timestamp_seconds', 'Unix time (service clock) the mailboxes, messages and files gauges were counted at by the census job; 0 = no census figures'),
    complete: censusGauge('census_complete', '1 when the last census looked at every key; 0 when it stopped at its SCAN bound (its figures are then lower bounds) or there is none'),
  };

  // Children resolved once: the hot path then only adds numbers.
  const routeIndex = new Map<RouteLabel, number>(ROUTE_LABELS.map((r, i) => [r, i]));
  const durationChildren = new Map<number, Histogram.Internal<'route' | 'status'>>();
  const cmdIndex = new Map<string, number>([...COMMAND_NAMES, 'unknown'].map((c, i) => [c, i]));
  const commandChildren = new Map<number, Counter.Internal>();
  const mintChildren: Record<MintOutcome, Counter.Internal> = { ok: minted.labels('ok'), proven: minted.labels('proven') };
  const proofChildren: Record<ProofOutcome, Counter.Internal> = { ok: proofs.labels('ok'), failed: proofs.labels('failed'), error: proofs.labels('error') };

  function setLoad(r: LoadReport): void {
    load.mints.set(r.mints);
    load.commands.set(r.commands);
    load.replicas.set(r.replicas);
    load.elu.set(r.eventLoopUtilization);
    load.p99.set(r.latencyP99Ms / 1000);
    load.periodEnd.set(Math.floor(r.periodEndMs / 1000));
    load.used.set(r.redisUsedMemoryBytes);
    load.max.set(r.redisMaxMemoryBytes);
  }

  return {
    registry,
    request(route, status, seconds) {
      const key = routeIndex.get(route)! * 1000 + status;
      let child = durationChildren.get(key);
      if (child === undefined) durationChildren.set(key, (child = duration.labels(route, statusLabel(status))));
      child.observe(seconds);
    },
    command(cmd, status) {
      const key = cmdIndex.get(cmd)! * 1000 + status;
      let child = commandChildren.get(key);
      if (child === undefined) commandChildren.set(key, (child = commands.labels(cmd, statusLabel(status))));
      child.inc();
    },
    mint: (outcome) => mintChildren[outcome].inc(),
    proof: (outcome) => proofChildren[outcome].inc(),
    job: (name, outcome) => jobs.labels(name, outcome).inc(),
    jobScheduleRestored: (name) => restored.labels(name).inc(),
    jobHealth(read) {
      readJobs = read;
    },
    localLoad(read) {
      readLocal = read;
    },
    load: setLoad,
    replicationWait: (outcome, seconds) => replicationWaits.labels(outcome).observe(seconds),
    loadSource: (read) => loadRead.source(read),
    storeHighWater: (ratio) => highWater.set(ratio),
    fileBytesSource(read) {
      readFileBytes = read;
    },
    censusSource: (read) => censusRead.source(read),
    // ---- StoreObserver ----
    redisCall: latency.observer.redisCall,
    messages(change, count, bytes) {
      messages[change].inc(count);
      messageBytes[change].inc(bytes);
    },
    files(change, count, bytes) {
      files[change].inc(count);
      fileBytes[change].inc(bytes);
    },
  };
}
