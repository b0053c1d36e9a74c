/**
 * Maintenance jobs on BullMQ: one queue per relay (its prefix starts with REDIS_PREFIX and carries
 * the hash tag `{jobs}`, so two relays never share a queue and all its keys sit in one Cluster
 * slot), one job scheduler per job — upserted by id, so however many core replicas start, the
 * deployment has one schedule and each run goes to one worker — and one worker per core process.
 *
 * Jobs: `file-sweep` every `FILE_SWEEP_INTERVAL_SEC` (see file-sweep.ts); `load-aggregate` once
 * per load period, `settleMs` after each period ends (BullMQ aligns `every` + `offset` to the epoch),
 * which sums the finished period over every replica into the summary key (load.ts). The worker runs
 * two jobs at a time, so a long sweep never holds up the load summary. Outcomes are logged (counts
 * and bytes only, never identifiers) and counted (`zax_core_jobs_total{job,outcome}`) from the
 * worker's events. BullMQ gets its own ioredis connection (no key prefix, `maxRetriesPerRequest:
 * null`, offline queue on), separate from the request path's fail-fast connection.
 */
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Clock } from '@zax/protocol';
import { sweepFiles, type SweepOptions, type SweepResult } from './file-sweep.js';
import { aggregatePeriod, lastSettledPeriod, type LoadTiming } from './load.js';
import type { Log } from './log.js';
import type { CoreMetrics } from './metrics.js';
import type { FileStore } from './store/files.js';
import type { LoadStore, PeriodLoad } from './store/load.js';

export const JOBS_QUEUE = 'maintenance';
export const FILE_SWEEP_JOB = 'file-sweep';
export const LOAD_AGGREGATE_JOB = 'load-aggregate';
/** The load job runs this long after `settleMs`, so BullMQ's timer never fires before it. */
const LOAD_JOB_SLACK_MS = 20;

/** Finished jobs kept for inspection; older ones are removed by BullMQ. */
const KEEP_COMPLETED = { count: 20 };
const KEEP_FAILED = { count: 50 };
/** Longest graceful wait for a running job on shutdown before the worker is closed by force. */
const CLOSE_TIMEOUT_MS = 5000;
/** At most one log line per this period for repeated connection errors. */
const ERROR_LOG_EVERY_MS = 10_000;

export interface JobsDeps {
  readonly redisUrl: string;
  /** BullMQ `prefix` (keys.jobsPrefix). */
  readonly prefix: string;
  readonly files: FileStore;
  readonly clock: Clock;
  readonly log: Log;
  readonly sweepIntervalSec: number;
  readonly sweep?: SweepOptions;
  /** The load job's store and periods (load.ts); without it, no load job is scheduled. */
  readonly load?: { readonly store: LoadStore; readonly timing: LoadTiming };
  /** Job results by name and outcome. */
  readonly metrics?: CoreMetrics;
}

type JobResult = (SweepResult & { ms: number }) | { load: PeriodLoad; written: boolean; ms: number };

export interface Jobs {
  /** Resolves once the schedule is in Redis (retried until Redis answers, or until close). */
  readonly scheduled: Promise<void>;
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
  const connection = new Redis(deps.redisUrl, {
    maxRetriesPerRequest: null,
    retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 10), 2000),
  });

  let lastErrorLogMs = -Infinity;
  const onError = (err: Error): void => {
    const t = performance.now();
    if (t - lastErrorLogMs < ERROR_LOG_EVERY_MS) return;
    lastErrorLogMs = t;
    log.warn({ err: err.message }, 'jobs: redis error');
  };
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
    const fields = { job: job.name, ...result };
    if (result.removed > 0 || (result.drift !== null && result.drift !== 0)) log.info(fields, 'job done');
    else log.debug(fields, 'job done');
  });
  worker.on('failed', (job: Job | undefined, err: Error) => {
    const name = job?.name === FILE_SWEEP_JOB || job?.name === LOAD_AGGREGATE_JOB ? job.name : 'unknown';
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
  const schedules: { name: string; repeat: { every: number; offset?: number } }[] = [{ name: FILE_SWEEP_JOB, repeat: { every: deps.sweepIntervalSec * 1000 } }];
  if (deps.load !== undefined) {
    const t = deps.load.timing;
    schedules.push({ name: LOAD_AGGREGATE_JOB, repeat: { every: t.periodMs, offset: t.settleMs + LOAD_JOB_SLACK_MS } });
  }
  const scheduled = (async () => {
    for (const s of schedules) {
      for (let attempt = 0; !closed; attempt++) {
        try {
          await queue.upsertJobScheduler(s.name, s.repeat, { name: s.name, data: {}, opts: jobOpts });
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

  return {
    scheduled,
    async close() {
      if (closed) return;
      closed = true;
      wake.abort();
      // A running job may finish; one that outlasts the timeout is left to BullMQ's stalled-job
      // check, which hands it to another replica (the sweep is idempotent).
      if (!(await settlesWithin(worker.close(), CLOSE_TIMEOUT_MS))) {
        log.warn({}, 'jobs: worker did not stop in time; closing by force');
        await settlesWithin(worker.close(true), 1000);
      }
      // With Redis down these would wait for it: bounded, then the connection is cut.
      await settlesWithin(queue.close(), 1000);
      await settlesWithin(scheduled, 1000);
      if (!(await settlesWithin(connection.quit(), 1000))) connection.disconnect();
    },
  };
}
