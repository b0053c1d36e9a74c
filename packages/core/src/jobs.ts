/**
 * Maintenance jobs on BullMQ: one queue per relay (its prefix starts with REDIS_PREFIX and carries
 * the hash tag `{jobs}`, so two relays never share a queue and all its keys sit in one Cluster
 * slot), one job scheduler per job — upserted by id, so however many core replicas start, the
 * deployment has one schedule and each run goes to one worker — and one worker per core process.
 *
 * Jobs: `file-sweep` every `FILE_SWEEP_INTERVAL_SEC` (see file-sweep.ts). Outcomes are logged
 * (counts and bytes only, never identifiers); a later metrics change can count them from the same
 * events. BullMQ gets its own ioredis connection (no key prefix, `maxRetriesPerRequest: null`, offline
 * queue on), separate from the request path's fail-fast connection.
 */
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Clock } from '@zax/protocol';
import { sweepFiles, type SweepOptions, type SweepResult } from './file-sweep.js';
import type { Log } from './log.js';
import type { FileStore } from './store/files.js';

export const JOBS_QUEUE = 'maintenance';
export const FILE_SWEEP_JOB = 'file-sweep';

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
}

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
    async (job: Job): Promise<SweepResult & { ms: number }> => {
      const started = performance.now();
      if (job.name !== FILE_SWEEP_JOB) throw new Error(`unknown job ${job.name}`);
      const result = await sweepFiles(deps.files, deps.clock.nowMs(), deps.sweep);
      return { ...result, ms: Math.round(performance.now() - started) };
    },
    { connection, prefix: deps.prefix, concurrency: 1, removeOnComplete: KEEP_COMPLETED, removeOnFail: KEEP_FAILED },
  );
  worker.on('error', onError);
  worker.on('completed', (job: Job, result: SweepResult & { ms: number }) => {
    const fields = { job: job.name, ...result };
    if (result.removed > 0 || (result.drift !== null && result.drift !== 0)) log.info(fields, 'job done');
    else log.debug(fields, 'job done');
  });
  worker.on('failed', (job: Job | undefined, err: Error) => log.warn({ job: job?.name ?? 'unknown', err: err.message }, 'job failed'));

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

  const scheduled = (async () => {
    for (let attempt = 0; !closed; attempt++) {
      try {
        await queue.upsertJobScheduler(
          FILE_SWEEP_JOB,
          { every: deps.sweepIntervalSec * 1000 },
          { name: FILE_SWEEP_JOB, data: {}, opts: { removeOnComplete: KEEP_COMPLETED, removeOnFail: KEEP_FAILED } },
        );
        log.info({ job: FILE_SWEEP_JOB, everySec: deps.sweepIntervalSec }, 'job scheduled');
        return;
      } catch (e) {
        if (closed) return;
        log.warn({ job: FILE_SWEEP_JOB, err: e instanceof Error ? e.message : String(e) }, 'jobs: cannot schedule yet; retrying');
        await sleep(Math.min(500 * 2 ** Math.min(attempt, 6), 30_000));
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
