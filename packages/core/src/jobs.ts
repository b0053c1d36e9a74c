/**
 * Maintenance jobs on BullMQ: one queue per relay (its prefix starts with REDIS_PREFIX and carries
 * the hash tag `{jobs}`, so two relays never share a queue and all its keys sit in one Cluster
 * slot), one job scheduler per job — upserted by id, so however many core replicas start, the
 * deployment has one schedule and each run goes to one worker — and one worker per core process.
 *
 * Jobs: `file-sweep` every `FILE_SWEEP_INTERVAL_SEC` (see file-sweep.ts); `load-aggregate` once
 * per load period, `settleMs` after each period ends (BullMQ aligns `every` + `offset` to the epoch),
 * which sums the finished period over every replica into the summary key (load.ts); `census` every
 * `CENSUS_INTERVAL_SEC`, which counts the mailboxes, messages and files stored into the census key
 * for the gauges (census.ts). The worker runs two jobs at a time, so a long sweep or census never
 * holds up the load summary. Outcomes are logged (counts and bytes only, never identifiers) and
 * counted (`zax_core_jobs_total{job,outcome}`) from the worker's events. BullMQ gets its own
 * ioredis connection (no key prefix, `maxRetriesPerRequest: null`, offline queue on), separate from
 * the request path's fail-fast connection, which the census uses like any store operation.
 *
 * Schedules heal: a Redis that comes back empty (restart without persistence, failover to an empty
 * replica, a flush) has lost the schedulers, and nothing would run again. So every core process
 * checks them on each reconnect of its jobs connection (ioredis `ready` after the first) and every
 * `checkEveryMs` (one job period, 1..60 s): a scheduler that is missing (`getJobScheduler`) is
 * upserted again, and so is one whose job has not completed for two periods (its next run was lost).
 * Upserting is idempotent by id, so several replicas doing it at once still make one schedule. The
 * worker itself needs nothing: its blocking connection reconnects and it takes the next run.
 *
 * Each completed run is recorded (wall-clock ms) in the hash `<jobs prefix>:last-run`, which every
 * process reads at each check, so all replicas know when each job last ran, whichever one ran it
 * (the latest time seen is kept when Redis comes back empty). `health()` reports, per job, that time
 * and whether it is stale: not completed for two periods, counted from start-up at the earliest (the
 * grace period). /readyz and the metrics show it (app.ts, metrics.ts).
 */
import { Queue, Worker, type Job } from 'bullmq';
import { createRedisClient, everyInterval, type Logger, type RedisClient, type RedisTopology } from '@zax/service';
import type { Clock } from '@zax/protocol';
import { runCensus, type Census, type CensusOptions } from './census.js';
import { sweepFiles, type SweepOptions, type SweepResult } from './file-sweep.js';
import type { Keys } from './keys.js';
import { aggregatePeriod, lastSettledPeriod, type LoadTiming } from './load.js';
import type { CoreMetrics } from './metrics.js';
import type { FileStore } from './store/files.js';
import type { LoadStore, PeriodLoad } from './store/load.js';
import { NO_OBSERVER } from './store/observer.js';

export const JOBS_QUEUE = 'maintenance';
export const FILE_SWEEP_JOB = 'file-sweep';
export const LOAD_AGGREGATE_JOB = 'load-aggregate';
export const CENSUS_JOB = 'census';
/** The job names, for the `job` label (anything else is `unknown`). */
const JOB_NAMES: ReadonlySet<string> = new Set([FILE_SWEEP_JOB, LOAD_AGGREGATE_JOB, CENSUS_JOB]);
/** The load job runs this long after `settleMs`, so BullMQ's timer never fires before it. */
const LOAD_JOB_SLACK_MS = 20;

/** Finished jobs kept for inspection; older ones are removed by BullMQ. */
const KEEP_COMPLETED = { count: 20 };
const KEEP_FAILED = { count: 50 };
/** Longest graceful wait for a running job on shutdown before the worker is closed by force. */
const CLOSE_TIMEOUT_MS = 5000;
/** At most one log line per this period for repeated connection errors. */
const ERROR_LOG_EVERY_MS = 10_000;
/** A job is stale when it has not completed for this many of its periods. */
const STALE_PERIODS = 2;
/** Bounds of the default schedule check period (the shortest job period). */
const MIN_CHECK_EVERY_MS = 1000;
const MAX_CHECK_EVERY_MS = 60_000;

interface Schedule {
  readonly name: string;
  readonly repeat: { readonly every: number; readonly offset?: number };
}

export interface JobsDeps {
  /** The core store (a URL string is a single server). */
  readonly redis: RedisTopology | string;
  /** BullMQ `prefix` (keys.jobsPrefix). */
  readonly prefix: string;
  readonly files: FileStore;
  readonly clock: Clock;
  readonly log: Logger;
  readonly sweepIntervalSec: number;
  readonly sweep?: SweepOptions;
  /** The load job's store and periods (load.ts); without it, no load job is scheduled. */
  readonly load?: { readonly store: LoadStore; readonly timing: LoadTiming };
  /**
   * The census job (census.ts): the core's store connection (the request path's, any topology),
   * the key layout and the period; without it, no census job is scheduled.
   */
  readonly census?: { readonly redis: RedisClient; readonly keys: Keys; readonly intervalSec: number; readonly options?: CensusOptions };
  /** Job results by name and outcome. */
  readonly metrics?: CoreMetrics;
  /**
   * How often this process checks that the schedules are in Redis.
   * @default the shortest job period, between 1 s and 60 s
   */
  readonly checkEveryMs?: number;
  /** Wall clock (ms) for last-run times and staleness; BullMQ schedules on real time. @default Date.now */
  readonly wallMs?: () => number;
}

/** One job as this process sees it. */
export interface JobHealth {
  readonly job: string;
  readonly periodMs: number;
  /** When a run last completed (wall-clock ms, any replica), or null if none was seen. */
  readonly lastRunMs: number | null;
  /** No completed run for two periods, counted from this process's start at the earliest. */
  readonly stale: boolean;
}

type JobResult = (SweepResult & { ms: number }) | { load: PeriodLoad; written: boolean; ms: number } | { census: Census; ms: number };

export interface Jobs {
  /** Resolves once the schedule is in Redis (retried until Redis answers, or until close). */
  readonly scheduled: Promise<void>;
  /** Per job: last completed run and staleness (from memory; refreshed by each check). */
  health(): JobHealth[];
  /** Checks the schedules now (re-creates missing ones) and refreshes the last-run times. */
  check(): Promise<void>;
  /** Stops taking jobs, lets a running one finish (bounded), closes the connections. */
  close(): Promise<void>;
}

/** True if `p` settles (either way) within `ms`. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function startJobs(deps: JobsDeps): Jobs {
  const { log } = deps;
  const wallMs = deps.wallMs ?? Date.now;
  /** Last completed run per job name (wall-clock ms), shared by every replica. */
  const lastRunKey = `${deps.prefix}:last-run`;
  // BullMQ's connection queues and retries while the store is away (its worker blocks on it).
  const connection = createRedisClient(deps.redis, {
    commandTimeoutMs: 5000,
    connectionName: 'zax-core-jobs',
    blocking: true,
    maxReconnectDelayMs: 2000,
  });

  const onError = everyInterval(ERROR_LOG_EVERY_MS, (suppressed, err: Error) => log.warn({ err: err.message, suppressed }, 'jobs: redis error'));
  connection.on('error', onError);

  const queue = new Queue(JOBS_QUEUE, {
    connection,
    prefix: deps.prefix,
    defaultJobOptions: { removeOnComplete: KEEP_COMPLETED, removeOnFail: KEEP_FAILED },
  });
  queue.on('error', onError);

  const worker = new Worker(
    JOBS_QUEUE,
    async (job: Job): Promise<JobResult> => {
      const started = performance.now();
      const nowMs = deps.clock.nowMs();
      switch (job.name) {
        case FILE_SWEEP_JOB: {
          const result = await sweepFiles(deps.files, nowMs, deps.sweep);
          return { ...result, ms: Math.round(performance.now() - started) };
        }
        case LOAD_AGGREGATE_JOB: {
          if (deps.load === undefined) throw new Error('load job without a load store');
          const { store, timing } = deps.load;
          const load = await aggregatePeriod(store, lastSettledPeriod(nowMs, timing), timing, nowMs);
          const written = await store.writeSummary(load, timing.summaryTtlMs);
          return { load, written, ms: Math.round(performance.now() - started) };
        }
        case CENSUS_JOB: {
          if (deps.census === undefined) throw new Error('census job without a census store');
          const { redis, keys, intervalSec, options } = deps.census;
          const census = await runCensus({ redis, keys, files: deps.files, observer: deps.metrics ?? NO_OBSERVER }, nowMs, { ...options, intervalMs: intervalSec * 1000 });
          return { census, ms: Math.round(performance.now() - started) };
        }
        default:
          throw new Error(`unknown job ${job.name}`);
      }
    },
    { connection, prefix: deps.prefix, concurrency: 2, removeOnComplete: KEEP_COMPLETED, removeOnFail: KEEP_FAILED },
  );
  worker.on('error', onError);
  worker.on('completed', (job: Job, result: JobResult) => {
    deps.metrics?.job(job.name, 'completed');
    if ('load' in result) {
      const l = result.load;
      log.debug(
        { job: job.name, period: l.period, replicas: l.replicas, mints: l.mints, commands: l.commands, written: result.written, ms: result.ms },
        'job done',
      );
      return;
    }
    if ('census' in result) {
      const { mailboxes, messages, files, complete } = result.census;
      const fields = { job: job.name, mailboxes, messages, files, complete, ms: result.ms };
      // An incomplete census (its SCAN bound reached) is worth a line: the gauges are lower bounds.
      if (complete) log.debug(fields, 'job done');
      else log.info(fields, 'job done; census incomplete (scan bound reached)');
      return;
    }
    const fields = { job: job.name, ...result };
    if (result.removed > 0 || (result.drift !== null && result.drift !== 0)) log.info(fields, 'job done');
    else log.debug(fields, 'job done');
  });
  worker.on('failed', (job: Job | undefined, err: Error) => {
    const name = job !== undefined && JOB_NAMES.has(job.name) ? job.name : 'unknown';
    deps.metrics?.job(name, 'failed');
    log.warn({ job: name, err: err.message }, 'job failed');
  });

  let closed = false;
  const wake = new AbortController();
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      wake.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          resolve();
        },
        { once: true },
      );
    });

  const jobOpts = { removeOnComplete: KEEP_COMPLETED, removeOnFail: KEEP_FAILED };
  const schedules: Schedule[] = [{ name: FILE_SWEEP_JOB, repeat: { every: deps.sweepIntervalSec * 1000 } }];
  if (deps.load !== undefined) {
    const t = deps.load.timing;
    schedules.push({ name: LOAD_AGGREGATE_JOB, repeat: { every: t.periodMs, offset: t.settleMs + LOAD_JOB_SLACK_MS } });
  }
  if (deps.census !== undefined) schedules.push({ name: CENSUS_JOB, repeat: { every: deps.census.intervalSec * 1000 } });
  const upsert = (s: Schedule): Promise<unknown> => queue.upsertJobScheduler(s.name, s.repeat, { name: s.name, data: {}, opts: jobOpts });
  const scheduled = (async () => {
    for (const s of schedules) {
      for (let attempt = 0; !closed; attempt++) {
        try {
          await upsert(s);
          log.info({ job: s.name, everyMs: s.repeat.every }, 'job scheduled');
          break;
        } catch (e) {
          if (closed) return;
          log.warn({ job: s.name, err: e instanceof Error ? e.message : String(e) }, 'jobs: cannot schedule yet; retrying');
          await sleep(Math.min(500 * 2 ** Math.min(attempt, 6), 30_000));
        }
      }
    }
  })();

  // --- healing: last runs, staleness, schedules re-created when Redis lost them ---
  const startedMs = wallMs();
  const lastRun = new Map<string, number>();
  const noteRun = (name: string, ms: number): void => {
    if (ms > (lastRun.get(name) ?? -Infinity)) lastRun.set(name, ms);
  };
  const isStale = (s: Schedule, nowMs: number): boolean => nowMs - Math.max(lastRun.get(s.name) ?? -Infinity, startedMs) > STALE_PERIODS * s.repeat.every;
  worker.on('completed', (job: Job) => {
    const ms = wallMs();
    noteRun(job.name, ms);
    // Shared with the other replicas; a failure here only leaves them their own view.
    connection.hset(lastRunKey, job.name, String(ms)).catch(() => undefined);
  });

  async function checkOnce(): Promise<void> {
    const recorded = await connection.hgetall(lastRunKey);
    for (const [name, v] of Object.entries(recorded)) {
      const ms = Number(v);
      if (Number.isSafeInteger(ms)) noteRun(name, ms);
    }
    for (const s of schedules) {
      if (closed) return;
      const existing = await queue.getJobScheduler(s.name);
      const missing = existing === undefined || existing === null || existing.next === null || existing.next === undefined;
      // A scheduler whose job has not completed for two periods may have lost its next run:
      // upserting it again re-adds that run (and replaces it, same time, if it was there).
      const stale = isStale(s, wallMs());
      if (!missing && !stale) continue;
      await upsert(s);
      deps.metrics?.jobScheduleRestored(s.name);
      log.warn({ job: s.name, reason: missing ? 'missing' : 'stale', everyMs: s.repeat.every }, 'job schedule re-created');
    }
  }

  let checking: Promise<void> | null = null;
  let checkAgain = false;
  const warnCheckFailed = everyInterval(ERROR_LOG_EVERY_MS, (suppressed, e: unknown) =>
    log.warn({ err: e instanceof Error ? e.message : String(e), suppressed }, 'jobs: schedule check failed; retrying at the next one'),
  );
  /** One check at a time; a request during one runs another right after it. */
  function check(): Promise<void> {
    if (checking !== null) {
      checkAgain = true;
      return checking;
    }
    checking = (async () => {
      do {
        checkAgain = false;
        try {
          await checkOnce();
        } catch (e) {
          if (!closed) warnCheckFailed(e);
        }
      } while (checkAgain && !closed);
    })().finally(() => {
      checking = null;
    });
    return checking;
  }
  const shortestMs = Math.min(...schedules.map((s) => s.repeat.every));
  const checkEveryMs = deps.checkEveryMs ?? Math.min(MAX_CHECK_EVERY_MS, Math.max(MIN_CHECK_EVERY_MS, shortestMs));
  // Checks start once the first scheduling is done (until then, it is what retries).
  let initialDone = false;
  void scheduled.then(() => (initialDone = true));
  const checkTimer = setInterval(() => {
    if (initialDone) void check();
  }, checkEveryMs);
  checkTimer.unref();
  // The first `ready` is the initial connection; every later one follows a reconnect, after which
  // Redis may be a different, empty one.
  let readies = 0;
  connection.on('ready', () => {
    if (readies++ > 0 && initialDone && !closed) void check();
  });

  return {
    scheduled,
    health() {
      const now = wallMs();
      return schedules.map((s) => ({ job: s.name, periodMs: s.repeat.every, lastRunMs: lastRun.get(s.name) ?? null, stale: isStale(s, now) }));
    },
    check,
    async close() {
      if (closed) return;
      closed = true;
      wake.abort();
      clearInterval(checkTimer);
      // A running job may finish; one that outlasts the timeout is left to BullMQ's stalled-job
      // check, which hands it to another replica (the sweep is idempotent).
      if (!(await settlesWithin(worker.close(), CLOSE_TIMEOUT_MS))) {
        log.warn({}, 'jobs: worker did not stop in time; closing by force');
        await settlesWithin(worker.close(true), 1000);
      }
      // With Redis down these would wait for it: bounded, then the connection is cut.
      await settlesWithin(queue.close(), 1000);
      await settlesWithin(scheduled, 1000);
      if (checking !== null) await settlesWithin(checking, 1000);
      if (!(await settlesWithin(connection.quit(), 1000))) connection.disconnect();
    },
  };
}
