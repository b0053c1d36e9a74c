/**
 * Jobs that heal: the BullMQ schedules come back when core Redis loses them — on
 * the reconnect after Redis restarts empty, and by the periodic check when they vanish without one —
 * and a job that has not completed for two periods is reported (metric, /readyz body) while the
 * core stays ready. Nothing here measures speed: every wait polls for an observable outcome with a
 * generous patience; the time from the restart to the first runs is only printed.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { FILE_SWEEP_JOB, JOBS_QUEUE, LOAD_AGGREGATE_JOB, startJobs, type Jobs } from '../src/jobs.js';
import { createKeys } from '../src/keys.js';
import { createLogger } from '@zax/service';
import { createMetrics, type CoreMetrics } from '../src/metrics.js';
import { connectRedis, type CoreRedis } from '../src/redis.js';
import { createFileStore } from '../src/store/files.js';
import { freePort, startRedisServer, type RedisServer } from '../../../test/support/redis-server.js';
import { until } from '../../../test/support/until.js';
import { SECRET, command, establishSession, redisUrl, startCore, type Core, type Session, fileBytesTotal } from './helpers.js';
import { putChunkOk, rnd, startFile } from './files-fixture.js';

/** The reproduction, with a one-second load period so the load job runs often too. */
const ENV = { FILE_TTL_SEC: '3', FILE_SWEEP_INTERVAL_SEC: '2', MAX_FILE_BYTES_TOTAL: '600000', LOAD_PERIOD_SEC: '1', SESSION_TTL_SEC: '100000' };
const CHUNK = 400_000;
/** A guard against a hang, not a timing assertion. */
const PATIENCE_MS = 20_000;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

interface Rig {
  readonly core: Core;
  readonly jobs: Jobs;
  readonly metrics: CoreMetrics;
  readonly redis: CoreRedis;
}

/** A core app and its jobs (as main.ts wires them) on `url`; closed after the test. */
async function startRig(url: string, opts: { redis?: CoreRedis; checkEveryMs?: number; sweepIntervalSec?: number } = {}): Promise<Rig> {
  const metrics = createMetrics();
  let jobs: Jobs | null = null;
  const core = await startCore({
    env: ENV,
    redisUrl: url,
    metrics,
    jobHealth: () => jobs?.health() ?? [],
    ...(opts.redis !== undefined ? { redis: opts.redis } : {}),
  });
  cleanups.push(() => core.close());
  const keys = createKeys(core.prefix);
  jobs = startJobs({
    redis: url,
    prefix: keys.jobsPrefix,
    files: createFileStore(core.redis, keys, metrics),
    clock: core.clock,
    log: createLogger('silent'),
    sweepIntervalSec: opts.sweepIntervalSec ?? Number(ENV.FILE_SWEEP_INTERVAL_SEC),
    load: { store: core.app.loadStore, timing: core.app.loadTiming },
    metrics,
    ...(opts.checkEveryMs !== undefined ? { checkEveryMs: opts.checkEveryMs } : {}),
  });
  const j = jobs;
  cleanups.push(() => j.close());
  metrics.jobHealth(() => j.health());
  await j.scheduled;
  return { core, jobs: j, metrics, redis: core.redis };
}

async function sample(metrics: CoreMetrics, name: string, labels: Record<string, string>): Promise<number> {
  const m = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = m?.values.find((x) => Object.entries(labels).every(([k, want]) => x.labels[k] === want));
  return v?.value ?? 0;
}

const totalBytes = async (rig: Rig): Promise<number> => fileBytesTotal({ prefix: rig.core.prefix, redis: rig.redis as never });

/**
 * The reproduction: a 400,000-byte chunk is stored; once its file has expired, the sweep releases
 * its bytes, so a second 400,000-byte chunk fits under MAX_FILE_BYTES_TOTAL = 600,000. With no
 * sweep, the total stays at 400,000 and the second chunk is refused with 503.
 */
async function twoChunksFit(rig: Rig, alice: Session, bob: Session): Promise<void> {
  const { core } = rig;
  const first = await startFile(core, alice, bob, CHUNK);
  await putChunkOk(core, alice, first.uploadID, 0, rnd(CHUNK), { last: true });
  expect(await totalBytes(rig)).toBe(CHUNK);
  core.clock.advanceSec(Number(ENV.FILE_TTL_SEC) + 6); // the first file has expired
  await until('the sweep released the expired file', async () => (await totalBytes(rig)) === 0, PATIENCE_MS);
  const second = await startFile(core, alice, bob, CHUNK);
  await putChunkOk(core, alice, second.uploadID, 0, rnd(CHUNK), { last: true });
}

describe('job schedules after core Redis restarts empty', () => {
  it('come back on the reconnect: the sweep frees expired files again and the load job runs again, under traffic', async () => {
    const server: RedisServer = await startRedisServer();
    cleanups.push(() => server.stop());
    const redis = await connectRedis(server.url, { commandTimeoutMs: 500, maxReconnectDelayMs: 100 });
    cleanups.push(async () => redis.disconnect());
    const rig = await startRig(server.url, { redis });
    const { core, jobs, metrics } = rig;

    let alice = await establishSession(core);
    let bob = await establishSession(core);
    await twoChunksFit(rig, alice, bob);
    await until('both jobs ran', () => jobs.health().every((h) => h.lastRunMs !== null), PATIENCE_MS);

    // Traffic goes on through the restart: whatever it gets must be a deliberate answer.
    const statuses = new Map<number, number>();
    let traffic = true;
    const background = (async () => {
      let s = alice;
      while (traffic) {
        const r = await command(core, s, { cmd: 'count' }).catch(() => null);
        if (r !== null) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        if (r?.status === 401) s = await establishSession(core).catch(() => s);
        await new Promise((res) => setTimeout(res, 20));
      }
    })();

    await server.stop(); // SIGKILL: no persistence, so it comes back empty
    await server.restart();
    const restartedAtMs = Date.now();

    // Sessions died with Redis: the client establishes new ones, as after any session loss.
    [alice, bob] = await until(
      'sessions can be established on the new Redis',
      async () => Promise.all([establishSession(core), establishSession(core)]).catch(() => undefined),
      PATIENCE_MS,
    );
    const ranAgain = await until(
      'both jobs completed a run on the new Redis',
      () => jobs.health().every((h) => h.lastRunMs !== null && h.lastRunMs > restartedAtMs) && Date.now(),
      PATIENCE_MS,
    );
    console.log(`jobs ran again ${ranAgain - restartedAtMs} ms after the empty restart (sweep every 2 s, load every 1 s)`);
    await twoChunksFit(rig, alice, bob);

    // The schedules were re-created by this core (not by a restart of it), once each per deployment.
    expect(await sample(metrics, 'zax_core_job_schedules_restored_total', { job: FILE_SWEEP_JOB })).toBeGreaterThanOrEqual(1);
    expect(await sample(metrics, 'zax_core_job_schedules_restored_total', { job: LOAD_AGGREGATE_JOB })).toBeGreaterThanOrEqual(1);
    const probe = new Redis(server.url);
    const queue = new Queue(JOBS_QUEUE, { connection: probe, prefix: createKeys(core.prefix).jobsPrefix });
    try {
      expect((await queue.getJobSchedulers()).map((s) => s.key).sort()).toEqual([FILE_SWEEP_JOB, LOAD_AGGREGATE_JOB].sort());
      // The last runs are shared through Redis again.
      expect(Object.keys(await probe.hgetall(`${createKeys(core.prefix).jobsPrefix}:last-run`)).sort()).toEqual([FILE_SWEEP_JOB, LOAD_AGGREGATE_JOB].sort());
    } finally {
      await queue.close();
      probe.disconnect();
    }
    expect(jobs.health().map((h) => h.stale)).toEqual([false, false]);

    traffic = false;
    await background;
    console.log(`statuses during the restart: ${JSON.stringify(Object.fromEntries(statuses))}`);
    for (const status of statuses.keys()) expect([200, 401, 503]).toContain(status);
  });
});

describe('job schedules removed without a reconnect', () => {
  it('the periodic check re-creates a missing schedule', async () => {
    const rig = await startRig(redisUrl(), { checkEveryMs: 500, sweepIntervalSec: 1 });
    const probe = new Redis(redisUrl());
    const queue = new Queue(JOBS_QUEUE, { connection: probe, prefix: createKeys(rig.core.prefix).jobsPrefix });
    cleanups.push(async () => {
      await queue.close();
      probe.disconnect();
    });
    await until('the sweep ran', () => rig.jobs.health().find((h) => h.job === FILE_SWEEP_JOB)?.lastRunMs !== null, PATIENCE_MS);
    expect(await queue.removeJobScheduler(FILE_SWEEP_JOB)).toBe(true);
    await until('the sweep schedule is back', async () => (await queue.getJobScheduler(FILE_SWEEP_JOB)) !== undefined, PATIENCE_MS);
    const back = Date.now();
    await until('the sweep runs again', () => (rig.jobs.health().find((h) => h.job === FILE_SWEEP_JOB)?.lastRunMs ?? 0) > back, PATIENCE_MS);
    expect(await sample(rig.metrics, 'zax_core_job_schedules_restored_total', { job: FILE_SWEEP_JOB })).toBeGreaterThanOrEqual(1);
  });

  it('a job not run for two periods is reported by the metric and /readyz (still 200) until it runs again', async () => {
    // No periodic check during the test (an hour): the job stays missing until `check()`.
    const rig = await startRig(redisUrl(), { checkEveryMs: 3_600_000, sweepIntervalSec: 1 });
    const probe = new Redis(redisUrl());
    const queue = new Queue(JOBS_QUEUE, { connection: probe, prefix: createKeys(rig.core.prefix).jobsPrefix });
    cleanups.push(async () => {
      await queue.close();
      probe.disconnect();
    });
    const sweep = (): { lastRunMs: number | null; stale: boolean } => rig.jobs.health().find((h) => h.job === FILE_SWEEP_JOB)!;
    await until('the sweep ran', () => sweep().lastRunMs !== null, PATIENCE_MS);
    expect((await rig.core.request('GET', '/readyz')).body).toBe('ok');
    expect(await sample(rig.metrics, 'zax_core_job_stale', { job: FILE_SWEEP_JOB })).toBe(0);
    expect(await sample(rig.metrics, 'zax_core_job_last_run_timestamp_seconds', { job: FILE_SWEEP_JOB })).toBeGreaterThan(0);

    expect(await queue.removeJobScheduler(FILE_SWEEP_JOB)).toBe(true);
    await until('the sweep is reported stale', () => sweep().stale, PATIENCE_MS);
    const ready = await rig.core.request('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toBe(`ok; stale jobs: ${FILE_SWEEP_JOB}`);
    expect(await sample(rig.metrics, 'zax_core_job_stale', { job: FILE_SWEEP_JOB })).toBe(1);
    expect(await sample(rig.metrics, 'zax_core_job_stale', { job: LOAD_AGGREGATE_JOB })).toBe(0);

    await rig.jobs.check();
    expect(await queue.getJobScheduler(FILE_SWEEP_JOB)).toBeDefined();
    await until('the sweep runs again and is no longer stale', () => !sweep().stale, PATIENCE_MS);
    expect((await rig.core.request('GET', '/readyz')).body).toBe('ok');
    expect(await sample(rig.metrics, 'zax_core_job_stale', { job: FILE_SWEEP_JOB })).toBe(0);
  });
});

describe('the built core process', () => {
  const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

  /** A sample of the Prometheus text (0 when absent). */
  const metric = (text: string, name: string, job: string): number => {
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(`job="${job}"`));
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
  };

  it('runs both jobs again after its Redis restarts empty, and shows it on /metrics; /readyz stays ok', async () => {
    const server = await startRedisServer();
    cleanups.push(() => server.stop());
    const adminPort = await freePort();
    const child = spawn(process.execPath, [MAIN], {
      env: {
        PATH: process.env.PATH ?? '',
        REDIS_URL: server.url,
        INTERNAL_SECRET: SECRET,
        REDIS_PREFIX: 'zax:jobs-heal:',
        CORE_PORT: '0',
        CORE_ADMIN_PORT: String(adminPort),
        LOAD_PERIOD_SEC: '1',
        FILE_SWEEP_INTERVAL_SEC: '1',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    cleanups.push(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exit;
    });
    const admin = `http://127.0.0.1:${adminPort}`;
    /** The metrics text, or '' while the admin port is not listening yet. */
    const scrape = async (): Promise<string> => fetch(`${admin}/metrics`).then((r) => r.text(), () => '');
    const completed = async (job: string): Promise<number> => metric(await scrape(), 'zax_core_jobs_total', job);

    await until('both jobs completed', async () => (await completed(FILE_SWEEP_JOB)) > 0 && (await completed(LOAD_AGGREGATE_JOB)) > 0, PATIENCE_MS).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${out}`);
    });
    await server.stop();
    await server.restart();
    const restartedAtSec = Date.now() / 1000;
    const text = await until(
      'both jobs ran on the new Redis',
      async () => {
        const t = await scrape();
        const ran = [FILE_SWEEP_JOB, LOAD_AGGREGATE_JOB].every((j) => metric(t, 'zax_core_job_last_run_timestamp_seconds', j) > restartedAtSec);
        return ran && t;
      },
      PATIENCE_MS,
    );
    for (const j of [FILE_SWEEP_JOB, LOAD_AGGREGATE_JOB]) {
      expect(metric(text, 'zax_core_job_schedules_restored_total', j), j).toBeGreaterThanOrEqual(1);
      expect(metric(text, 'zax_core_job_stale', j), j).toBe(0);
    }
    await until('ready again', async () => (await fetch(`${admin}/readyz`).catch(() => null))?.status === 200, PATIENCE_MS);
    expect(await (await fetch(`${admin}/readyz`)).text()).toBe('ok');
    expect(out).toContain('"msg":"job schedule re-created"');
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
  });
});
