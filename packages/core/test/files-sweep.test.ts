/**
 * The file sweep: expired files and orphaned registry entries go, the relay-wide byte total stays
 * exact (and drift is corrected); and the BullMQ job that runs it — one schedule per deployment
 * however many replicas, keys under the relay prefix, graceful close.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createKeys } from '../src/keys.js';
import { FILE_SWEEP_JOB, JOBS_QUEUE, startJobs, type Jobs } from '../src/jobs.js';
import { sweepFiles } from '../src/file-sweep.js';
import { createFileStore, type FileStore } from '../src/store/files.js';
import type { Logger } from '@zax/service';
import { establishSession, redisUrl, startCore, type Core, type Session, fileBytesTotal, fileRegistrySize, fileKey, fileRegistryOf } from './helpers.js';
import { fileStatus, putChunkOk, rnd, startFile } from './files-fixture.js';
import { dropPrefix } from '../../../test/support/prefix.js';

let core: Core;
let alice: Session;
let bob: Session;
let files: FileStore;
let jobs: Jobs[] = [];

async function setup(): Promise<void> {
  core = await startCore({ env: { FILE_TTL_SEC: '100', SESSION_TTL_SEC: '100000' } });
  alice = await establishSession(core);
  bob = await establishSession(core);
  files = createFileStore(core.redis, createKeys(core.prefix));
}

afterEach(async () => {
  await Promise.all(jobs.map((j) => j.close()));
  jobs = [];
  await core.close();
});

const total = async (): Promise<number> => fileBytesTotal(core);

/** A file with chunks of the given sizes; returns its uploadID. */
async function fileWith(sizes: number[]): Promise<string> {
  const f = await startFile(core, alice, bob, 100_000);
  for (let i = 0; i < sizes.length; i++) await putChunkOk(core, alice, f.uploadID, i, rnd(sizes[i]!));
  return f.uploadID;
}

interface Entry {
  level: string;
  fields: Record<string, unknown>;
  msg: string;
}

interface MemoryLog extends Logger {
  readonly entries: Entry[];
  /** Resolves once `cond` holds over the entries (checked now and after every new one). */
  until(cond: (entries: readonly Entry[]) => boolean): Promise<void>;
}

function memoryLog(): MemoryLog {
  const entries: Entry[] = [];
  const waiters: { cond: (entries: readonly Entry[]) => boolean; resolve: () => void }[] = [];
  const at =
    (level: string) =>
    (fields: unknown, msg?: string): void => {
      entries.push({ level, fields: fields as Record<string, unknown>, msg: msg ?? '' });
      for (const w of [...waiters]) {
        if (!w.cond(entries)) continue;
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    };
  const until = (cond: (entries: readonly Entry[]) => boolean): Promise<void> =>
    cond(entries) ? Promise.resolve() : new Promise((resolve) => waiters.push({ cond, resolve }));
  return { entries, until, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } as unknown as MemoryLog;
}

describe('sweepFiles', () => {
  it('removes expired files with their chunks and takes their bytes off the total; live ones stay', async () => {
    await setup();
    const a = await fileWith([100, 200]);
    const b = await fileWith([50]);
    core.clock.advanceSec(60);
    const c = await fileWith([70]); // expires at +160
    await putChunkOk(core, alice, b, 1, rnd(30)); // b refreshed: expires at +160
    expect(await total()).toBe(450);
    core.clock.advanceSec(40); // +100: only a has expired
    const r = await sweepFiles(files, core.clock.nowMs());
    expect(r).toEqual({ removed: 1, freedBytes: 300, refreshed: 0, drift: 0, totalBytes: 150 });
    expect(await core.redis.exists(fileKey(core, a, 'rec'), fileKey(core, a, 'parts'), fileKey(core, a, 'chunks'))).toBe(0);
    expect((await fileStatus(core, bob, b)).bytes_stored).toBe(80);
    expect((await fileStatus(core, bob, c)).bytes_stored).toBe(70);
    core.clock.advanceSec(60);
    expect(await sweepFiles(files, core.clock.nowMs())).toEqual({ removed: 2, freedBytes: 150, refreshed: 0, drift: 0, totalBytes: 0 });
    expect(await core.redis.keys(`${core.prefix}f:*`)).toEqual([]);
    expect(await fileRegistrySize(core)).toEqual({ exp: 0, bytes: 0 });
    expect(await sweepFiles(files, core.clock.nowMs())).toEqual({ removed: 0, freedBytes: 0, refreshed: 0, drift: 0, totalBytes: 0 });
  });

  it('fixes the total for files whose keys vanished first (their Redis TTL), and corrects drift', async () => {
    await setup();
    const a = await fileWith([100]);
    await fileWith([40]);
    // As if Redis had expired a's keys before any sweep.
    await core.redis.del(fileKey(core, a, 'rec'), fileKey(core, a, 'parts'), fileKey(core, a, 'chunks'));
    expect(await total()).toBe(140);
    core.clock.advanceSec(100);
    expect(await sweepFiles(files, core.clock.nowMs())).toMatchObject({ removed: 2, freedBytes: 140, drift: 0, totalBytes: 0 });
    // Drift from outside the scripts is corrected from the registry.
    await fileWith([25]);
    await core.redis.incrby(fileRegistryOf(core, a).total, 1000);
    expect(await sweepFiles(files, core.clock.nowMs())).toEqual({ removed: 0, freedBytes: 0, refreshed: 0, drift: -1000, totalBytes: 25 });
    expect(await total()).toBe(25);
  });

  it('a registry entry older than its (refreshed) record is only corrected', async () => {
    await setup();
    const a = await fileWith([10]);
    await core.redis.zadd(fileRegistryOf(core, a).exp, 0, a);
    expect(await sweepFiles(files, core.clock.nowMs())).toMatchObject({ removed: 0, refreshed: 1, totalBytes: 10 });
    expect(Number(await core.redis.zscore(fileRegistryOf(core, a).exp, a))).toBe(core.clock.nowMs() + 100_000);
  });

  it('works in batches, and stops at maxFiles (the next sweep goes on)', async () => {
    await setup();
    for (let i = 0; i < 7; i++) await fileWith([i + 1]);
    core.clock.advanceSec(100);
    expect(await sweepFiles(files, core.clock.nowMs(), { batch: 2, maxFiles: 5 })).toMatchObject({ removed: 5 });
    expect(await sweepFiles(files, core.clock.nowMs(), { batch: 2 })).toMatchObject({ removed: 2, totalBytes: 0 });
  });
});

describe('the BullMQ sweep job', () => {
  it('runs on its schedule with the injected clock and logs the outcome without identifiers', async () => {
    await setup();
    const log = memoryLog();
    const j = startJobs({ redis: redisUrl(), prefix: createKeys(core.prefix).jobsPrefix, files, clock: core.clock, log, sweepIntervalSec: 1 });
    jobs.push(j);
    await j.scheduled;
    const id = await fileWith([123, 77]);
    core.clock.advanceSec(100);
    // The next run after the clock moved past the file's lifetime removes it.
    await log.until((es) => es.some((e) => e.msg === 'job done' && e.fields.removed === 1));
    expect(await total()).toBe(0);
    expect(await core.redis.exists(fileKey(core, id, 'chunks'))).toBe(0);
    const done = log.entries.find((e) => e.msg === 'job done' && e.fields.removed === 1);
    expect(done?.level).toBe('info');
    expect(done?.fields).toMatchObject({ job: 'file-sweep', removed: 1, freedBytes: 200, totalBytes: 0 });
    expect(JSON.stringify(log.entries)).not.toContain(id.slice(0, 9));
  });

  it('two replicas share one schedule; every BullMQ key starts with the relay prefix; close is prompt', async () => {
    await setup();
    const log = memoryLog();
    const prefix = createKeys(core.prefix).jobsPrefix;
    expect(prefix).toBe(`${core.prefix}{jobs}`);
    const replicas = [0, 1].map(() => startJobs({ redis: redisUrl(), prefix, files, clock: core.clock, log, sweepIntervalSec: 1 }));
    jobs.push(...replicas);
    await Promise.all(replicas.map((j) => j.scheduled));
    const RUNS = 3;
    await log.until((es) => es.filter((e) => e.msg === 'job done').length >= RUNS);

    const probe = new Redis(redisUrl());
    const queue = new Queue(JOBS_QUEUE, { connection: probe.duplicate(), prefix });
    try {
      // One schedule for the deployment, and one run per scheduled time: a replica that added a
      // schedule of its own, or a time run twice, would show here (not as a count per second).
      expect((await queue.getJobSchedulers()).map((s) => s.key)).toEqual([FILE_SWEEP_JOB]);
      const runs = (await queue.getCompleted()).filter((job) => job.name === FILE_SWEEP_JOB);
      expect(runs.length).toBeGreaterThanOrEqual(RUNS);
      expect(runs.every((job) => job.repeatJobKey === FILE_SWEEP_JOB)).toBe(true);
      // The scheduled time is the end of each run's id: one run per interval, never two.
      const slots = runs.map((job) => Number(String(job.id).split(':').at(-1))).sort((a, b) => a - b);
      for (let i = 1; i < slots.length; i++) expect(slots[i]! - slots[i - 1]!).toBeGreaterThanOrEqual(1000);
      expect(log.entries.filter((e) => e.level === 'warn' || e.level === 'error')).toEqual([]);

      const tag = core.prefix.split(':')[2]!;
      const all = await probe.keys(`*${tag}*`);
      expect(all.some((k) => k.startsWith(`${prefix}:maintenance:`))).toBe(true);
      expect(all.filter((k) => !k.startsWith(core.prefix))).toEqual([]);
      await queue.close();
      // Prompt: both workers stop gracefully, none waits out its close timeout to be stopped by force.
      const closeStarted = performance.now();
      await Promise.all(replicas.map((j) => j.close()));
      console.log(`two job replicas closed in ${(performance.now() - closeStarted).toFixed(0)} ms`);
      expect(log.entries.filter((e) => e.level === 'warn' || e.level === 'error')).toEqual([]);
      await dropPrefix(redisUrl(), core.prefix);
      expect(await probe.keys(`*${tag}*`)).toEqual([]);
    } finally {
      await queue.close();
      probe.disconnect();
    }
  });
});
