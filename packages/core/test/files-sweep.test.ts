/**
 * The file sweep: expired files and orphaned registry entries go, the relay-wide byte total stays
 * exact (and drift is corrected); and the BullMQ job that runs it — one schedule per deployment
 * however many replicas, keys under the relay prefix, graceful close.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createKeys } from '../src/keys.js';
import { startJobs, type Jobs } from '../src/jobs.js';
import { sweepFiles } from '../src/file-sweep.js';
import { createFileStore, type FileStore } from '../src/store/files.js';
import type { Log } from '../src/log.js';
import { establishSession, redisUrl, startCore, type Core, type Session } from './helpers.js';
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

const total = async (): Promise<number> => Number((await core.redis.get(`${core.prefix}{files}:total`)) ?? 0);

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

function memoryLog(): Log & { entries: Entry[] } {
  const entries: Entry[] = [];
  const at =
    (level: string) =>
    (fields: unknown, msg?: string): void => {
      entries.push({ level, fields: fields as Record<string, unknown>, msg: msg ?? '' });
    };
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } as unknown as Log & { entries: Entry[] };
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
    expect(await core.redis.exists(`${core.prefix}f:{${a}}:rec`, `${core.prefix}f:{${a}}:parts`, `${core.prefix}f:{${a}}:chunks`)).toBe(0);
    expect((await fileStatus(core, bob, b)).bytes_stored).toBe(80);
    expect((await fileStatus(core, bob, c)).bytes_stored).toBe(70);
    core.clock.advanceSec(60);
    expect(await sweepFiles(files, core.clock.nowMs())).toEqual({ removed: 2, freedBytes: 150, refreshed: 0, drift: 0, totalBytes: 0 });
    expect(await core.redis.keys(`${core.prefix}f:*`)).toEqual([]);
    expect(await core.redis.zcard(`${core.prefix}{files}:exp`)).toBe(0);
    expect(await core.redis.hlen(`${core.prefix}{files}:bytes`)).toBe(0);
    expect(await sweepFiles(files, core.clock.nowMs())).toEqual({ removed: 0, freedBytes: 0, refreshed: 0, drift: 0, totalBytes: 0 });
  });

  it('fixes the total for files whose keys vanished first (their Redis TTL), and corrects drift', async () => {
    await setup();
    const a = await fileWith([100]);
    await fileWith([40]);
    // As if Redis had expired a's keys before any sweep.
    await core.redis.del(`${core.prefix}f:{${a}}:rec`, `${core.prefix}f:{${a}}:parts`, `${core.prefix}f:{${a}}:chunks`);
    expect(await total()).toBe(140);
    core.clock.advanceSec(100);
    expect(await sweepFiles(files, core.clock.nowMs())).toMatchObject({ removed: 2, freedBytes: 140, drift: 0, totalBytes: 0 });
    // Drift from outside the scripts is corrected from the registry.
    await fileWith([25]);
    await core.redis.incrby(`${core.prefix}{files}:total`, 1000);
    expect(await sweepFiles(files, core.clock.nowMs())).toEqual({ removed: 0, freedBytes: 0, refreshed: 0, drift: -1000, totalBytes: 25 });
    expect(await total()).toBe(25);
  });

  it('a registry entry older than its (refreshed) record is only corrected', async () => {
    await setup();
    const a = await fileWith([10]);
    await core.redis.zadd(`${core.prefix}{files}:exp`, 0, a);
    expect(await sweepFiles(files, core.clock.nowMs())).toMatchObject({ removed: 0, refreshed: 1, totalBytes: 10 });
    expect(Number(await core.redis.zscore(`${core.prefix}{files}:exp`, a))).toBe(core.clock.nowMs() + 100_000);
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
    const j = startJobs({ redisUrl: redisUrl(), prefix: createKeys(core.prefix).jobsPrefix, files, clock: core.clock, log, sweepIntervalSec: 1 });
    jobs.push(j);
    await j.scheduled;
    const id = await fileWith([123, 77]);
    core.clock.advanceSec(100);
    const deadline = Date.now() + 8000;
    while ((await total()) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await total()).toBe(0);
    expect(await core.redis.exists(`${core.prefix}f:{${id}}:chunks`)).toBe(0);
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
    const replicas = [0, 1].map(() => startJobs({ redisUrl: redisUrl(), prefix, files, clock: core.clock, log, sweepIntervalSec: 1 }));
    jobs.push(...replicas);
    await Promise.all(replicas.map((j) => j.scheduled));
    const started = Date.now();
    await new Promise((r) => setTimeout(r, 3500));
    const runs = log.entries.filter((e) => e.msg === 'job done').length;
    const elapsedSec = (Date.now() - started) / 1000;
    expect(runs).toBeGreaterThanOrEqual(1);
    expect(runs).toBeLessThanOrEqual(Math.ceil(elapsedSec) + 1); // one run per second, not two
    expect(log.entries.filter((e) => e.level === 'warn' || e.level === 'error')).toEqual([]);

    const probe = new Redis(redisUrl());
    try {
      const tag = core.prefix.split(':')[2]!;
      const all = await probe.keys(`*${tag}*`);
      expect(all.some((k) => k.startsWith(`${prefix}:maintenance:`))).toBe(true);
      expect(all.filter((k) => !k.startsWith(core.prefix))).toEqual([]);
      const closeStarted = Date.now();
      await Promise.all(replicas.map((j) => j.close()));
      expect(Date.now() - closeStarted).toBeLessThan(3000);
      await dropPrefix(redisUrl(), core.prefix);
      expect(await probe.keys(`*${tag}*`)).toEqual([]);
    } finally {
      probe.disconnect();
    }
  });
});
