/**
 * The core's own load (docs/DESIGN.md "The internal API"), measured per period of
 * LOAD_PERIOD_SEC and served on `GET /internal/load` as a `LoadReport` (@zax/protocol internal.ts).
 *
 * - Every replica counts the `/internal/sessions` mints it answered ok and the `/prove` + `/command`
 *   requests it handled, in memory (the request path only adds 1), and adds them to the period's
 *   counter in core Redis every tick (`tickMs`, ≤ 250 ms) with one script call (load-flush.lua).
 * - Every replica measures its event-loop utilisation and a p99 of its API request durations over
 *   each period, and publishes them (the period so far and the last finished one) at least every
 *   `publishMs` (≤ 1 s) and on the first tick of each period, with a lifetime of 5 s: a replica that
 *   stops reporting drops out of the report within 5 s.
 * - Periods are epoch-aligned (`floor(nowMs / periodMs)`), like the gatekeeper's difficulty periods.
 *   A period is "settled" `settleMs` = min(1 s, period / 7) after it ends (every replica has flushed
 *   by then: ticks are ≤ period / 10); the load job (jobs.ts) aggregates it then into the summary
 *   key, and the route serves that summary — or aggregates the settled period itself (two reads)
 *   when the job has not produced it yet (start-up, a busy worker).
 * - With LOAD_PERIOD_SEC = DIFFICULTY_PERIOD_MIN × 60 both tiers mean the same interval, and the
 *   gatekeeper, which evaluates a period `tick + 250 ms` after it ends (tick = period / 8 within
 *   50..1000 ms), always asks after the core's settle: it gets the very period it evaluates. With a
 *   shorter LOAD_PERIOD_SEC it gets the last core period, the most recent load.
 * - Redis memory comes from the store guard's INFO sample (store-guard.ts), at most 1 s old.
 */
import { randomBytes } from 'node:crypto';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { INTERNAL_API_VERSION, type Clock, type LoadReport } from '@zax/protocol';
import { LatencyHistogram } from './latency-histogram.js';
import { everyInterval, type Logger } from '@zax/service';
import type { MemorySample } from './store-guard.js';
import type { LoadStore, PeriodCounts, PeriodLoad, ReplicaFigures, ReplicaRecord } from './store/load.js';

/** How long a replica's published figures count as live (service clock). */
export const REPLICA_TTL_MS = 5000;
/** Redis keeps a replica record this much longer (cleanup only). */
const REPLICA_TTL_MARGIN_MS = 1000;
/** Counts of periods older than this many periods are dropped when Redis cannot take them. */
const KEEP_UNFLUSHED_PERIODS = 3;

export interface LoadTiming {
  readonly periodMs: number;
  /** Flush interval of the counts, ≤ 250 ms. */
  readonly tickMs: number;
  /** Longest interval between two publications of a replica's figures. */
  readonly publishMs: number;
  /** A period is aggregated this long after it ends. */
  readonly settleMs: number;
  readonly counterTtlMs: number;
  readonly summaryTtlMs: number;
}

export function loadTiming(periodSec: number): LoadTiming {
  const periodMs = periodSec * 1000;
  return {
    periodMs,
    tickMs: Math.min(250, Math.floor(periodMs / 10)),
    publishMs: Math.min(1000, Math.floor(periodMs / 4)),
    settleMs: Math.min(1000, Math.floor(periodMs / 7)),
    counterTtlMs: 4 * periodMs + 60_000,
    summaryTtlMs: 10 * periodMs + 60_000,
  };
}

export const periodOf = (nowMs: number, t: Pick<LoadTiming, 'periodMs'>): number => Math.floor(nowMs / t.periodMs);

/** The last period that ended at least `settleMs` ago: the one the report covers. */
export const lastSettledPeriod = (nowMs: number, t: Pick<LoadTiming, 'periodMs' | 'settleMs'>): number =>
  Math.floor((nowMs - t.settleMs) / t.periodMs) - 1;

/**
 * The load of `period` from the shared counters and the live replicas' figures: counts summed, the
 * worst utilisation and p99 of the replicas that have figures for that period (the one they
 * finished, or — if they have not ticked since it ended — the one in progress).
 */
export async function aggregatePeriod(store: LoadStore, period: number, t: Pick<LoadTiming, 'periodMs'>, nowMs: number): Promise<PeriodLoad> {
  const [counts, records] = await Promise.all([store.counts(period), store.liveReplicas(nowMs)]);
  let replicas = 0;
  let elu = 0;
  let p99 = 0;
  for (const r of records) {
    const f = r.last?.period === period ? r.last : r.current.period === period ? r.current : null;
    if (f === null) continue;
    replicas++;
    elu = Math.max(elu, f.eventLoopUtilization);
    p99 = Math.max(p99, f.latencyP99Ms);
  }
  return {
    v: INTERNAL_API_VERSION,
    period,
    periodStartMs: period * t.periodMs,
    periodEndMs: (period + 1) * t.periodMs,
    replicas,
    mints: counts.mints,
    commands: counts.commands,
    eventLoopUtilization: Math.min(1, elu),
    latencyP99Ms: p99,
  };
}

/** A `LoadReport` from a period's load and a memory sample. */
function toLoadReport(p: PeriodLoad, m: MemorySample): LoadReport {
  return {
    v: INTERNAL_API_VERSION,
    periodStartMs: p.periodStartMs,
    periodEndMs: p.periodEndMs,
    replicas: p.replicas,
    mints: p.mints,
    commands: p.commands,
    eventLoopUtilization: p.eventLoopUtilization,
    latencyP99Ms: p.latencyP99Ms,
    redisUsedMemoryBytes: m.usedBytes,
    redisMaxMemoryBytes: m.maxBytes,
  };
}

export interface LoadReporterDeps {
  readonly store: LoadStore;
  readonly timing: LoadTiming;
  readonly clock: Clock;
  readonly memory: () => Promise<MemorySample>;
}

/**
 * What `GET /internal/load` serves: the job's summary of the last settled period, or that period
 * aggregated on the spot when the summary is older. Throws StoreUnavailableError.
 */
export async function loadReport(d: LoadReporterDeps): Promise<LoadReport> {
  const nowMs = d.clock.nowMs();
  const q = lastSettledPeriod(nowMs, d.timing);
  const memory = d.memory();
  memory.catch(() => undefined); // awaited below; not an unhandled rejection if the summary read fails first
  let summary = await d.store.readSummary();
  if (summary === null || summary.period < q) summary = await aggregatePeriod(d.store, q, d.timing, nowMs);
  return toLoadReport(summary, await memory);
}

export interface LoadMeterOptions {
  readonly store: LoadStore;
  readonly clock: Clock;
  readonly timing: LoadTiming;
  readonly log: Logger;
  /** @default 12 random hex characters */
  readonly replicaId?: string;
}

/** This replica's own figures, without I/O (metrics gauges). */
export interface LocalLoad {
  /** Over the last publication window (≤ 1 s). */
  readonly eventLoopUtilization: number;
  /** Over the period in progress. */
  readonly latencyP99Ms: number;
}

export interface LoadMeter {
  readonly replicaId: string;
  /** Hot path: one `/prove` or `/command` handled. */
  command(nowMs: number): void;
  /** Hot path: one session key pair minted. */
  mint(nowMs: number): void;
  /** Hot path: one API request took `ms`. */
  latency(ms: number): void;
  local(): LocalLoad;
  /** One round now: roll the period if it changed, flush the counts, publish the figures. */
  tick(): Promise<void>;
  /** Starts the background loop (unref'd timer, every `tickMs`). */
  start(): void;
  /** Stops the loop and flushes what is counted (best effort). */
  stop(): Promise<void>;
}

export function createLoadMeter(o: LoadMeterOptions): LoadMeter {
  const { store, clock, timing, log } = o;
  const replicaId = o.replicaId ?? randomBytes(6).toString('hex');
  const startMs = clock.nowMs();

  // ---- counts: the period in progress (hot path) and earlier ones not yet in Redis ----
  let countPeriod = periodOf(startMs, timing);
  let mints = 0;
  let commands = 0;
  let unflushed: PeriodCounts[] = [];
  const rollCounts = (p: number): void => {
    if (mints > 0 || commands > 0) unflushed.push({ period: countPeriod, mints, commands });
    mints = 0;
    commands = 0;
    countPeriod = p;
  };

  // ---- figures: this period's ELU and latency, and the last finished period's ----
  let figPeriod = countPeriod;
  let eluMark: EventLoopUtilization = performance.eventLoopUtilization();
  let windowMark: EventLoopUtilization = eluMark;
  let windowElu = 0;
  const hist = new LatencyHistogram();
  let last: ReplicaFigures | null = null;
  let lastPublishMs = -Infinity;
  let mustPublish = true;

  const current = (): ReplicaFigures => ({
    period: figPeriod,
    eventLoopUtilization: performance.eventLoopUtilization(eluMark).utilization,
    latencyP99Ms: hist.quantile(0.99),
    requests: hist.count,
  });
  const rollFigures = (p: number): void => {
    if (p === figPeriod) return;
    last = current();
    hist.reset();
    eluMark = performance.eventLoopUtilization();
    figPeriod = p;
    mustPublish = true;
  };

  // `failures`: this one and those suppressed since the last line.
  const warn = everyInterval(10_000, (suppressed, err: unknown) => {
    log.warn({ err: err instanceof Error ? err.message : String(err), failures: suppressed + 1 }, 'load: cannot report to redis; keeping the counts');
  });

  const round = async (publish: boolean | null): Promise<void> => {
    const nowMs = clock.nowMs();
    const p = periodOf(nowMs, timing);
    rollFigures(p);
    if (p !== countPeriod) rollCounts(p);
    if (mints > 0 || commands > 0) {
      unflushed.push({ period: countPeriod, mints, commands });
      mints = 0;
      commands = 0;
    }
    // One entry per period.
    const byPeriod = new Map<number, PeriodCounts>();
    for (const c of unflushed) {
      const prev = byPeriod.get(c.period);
      byPeriod.set(c.period, prev === undefined ? c : { period: c.period, mints: prev.mints + c.mints, commands: prev.commands + c.commands });
    }
    const batch = [...byPeriod.values()];
    unflushed = [];
    const doPublish = publish ?? (mustPublish || nowMs - lastPublishMs >= timing.publishMs || nowMs < lastPublishMs);
    if (batch.length === 0 && !doPublish) return;
    let record: ReplicaRecord | null = null;
    if (doPublish) {
      const now = performance.eventLoopUtilization();
      windowElu = performance.eventLoopUtilization(now, windowMark).utilization;
      windowMark = now;
      record = { replicaId, expiresAtMs: nowMs + REPLICA_TTL_MS, current: current(), last };
    }
    try {
      await store.flush(nowMs, batch, timing.counterTtlMs, record, REPLICA_TTL_MARGIN_MS);
      if (doPublish) {
        lastPublishMs = nowMs;
        mustPublish = false;
      }
    } catch (err) {
      // Keep the counts for the next round unless they are too old to be aggregated any more.
      for (const c of batch) if (c.period > p - KEEP_UNFLUSHED_PERIODS) unflushed.push(c);
      warn(err);
    }
  };

  let running: Promise<void> | null = null;
  const run = (publish: boolean | null): Promise<void> =>
    (running = round(publish).finally(() => {
      running = null;
    }));

  let timer: NodeJS.Timeout | null = null;

  return {
    replicaId,
    command(nowMs) {
      const p = Math.floor(nowMs / timing.periodMs);
      if (p !== countPeriod) rollCounts(p);
      commands++;
    },
    mint(nowMs) {
      const p = Math.floor(nowMs / timing.periodMs);
      if (p !== countPeriod) rollCounts(p);
      mints++;
    },
    latency(ms) {
      hist.record(ms);
    },
    local: () => ({ eventLoopUtilization: windowElu, latencyP99Ms: hist.quantile(0.99) }),
    async tick() {
      if (running !== null) await running;
      await run(true);
    },
    start() {
      if (timer !== null) return;
      timer = setInterval(() => {
        if (running === null) void run(null);
      }, timing.tickMs);
      timer.unref();
    },
    async stop() {
      if (timer !== null) clearInterval(timer);
      timer = null;
      if (running !== null) await running;
      await run(false);
    },
  };
}
