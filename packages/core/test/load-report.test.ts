/**
 * The core's load measurement in-process (load.ts, store/load.ts, jobs.ts), on real Redis under a
 * fresh prefix with a settable clock: counts of two app instances ("replicas") sharing a prefix are
 * summed, replica figures expire, the aggregation takes the worst replica, `GET /internal/load`
 * needs the secret and serves a schema-valid report, and the BullMQ job writes the summary the
 * route then serves.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { INTERNAL_LOAD_PATH, INTERNAL_SECRET_HEADER, parseLoadReport, type LoadReport } from '@zax/protocol';
import { startJobs, type Jobs } from '../src/jobs.js';
import { createKeys } from '../src/keys.js';
import { aggregatePeriod, createLoadMeter, lastSettledPeriod, loadTiming, periodOf, REPLICA_TTL_MS } from '../src/load.js';
import { createLogger } from '@zax/service';
import { createMetrics } from '../src/metrics.js';
import { createFileStore } from '../src/store/files.js';
import { createLoadStore } from '../src/store/load.js';
import { startRedisServer } from '../../../test/support/redis-server.js';
import { FakeClock, SECRET, command, establishSession, mint, openStores, redisUrl, startCore, type Core } from './helpers.js';

const PERIOD_SEC = 10;
const timing = loadTiming(PERIOD_SEC);

let cores: Core[] = [];
let jobs: Jobs[] = [];
afterEach(async () => {
  await Promise.all(jobs.map((j) => j.close()));
  jobs = [];
  // The first core owns the prefix cleanup; the others share it.
  for (const c of cores.reverse()) await c.close();
  cores = [];
});

/** Two app instances on one prefix and one clock: two replicas of one deployment. */
async function twoReplicas(env: Record<string, string> = {}): Promise<[Core, Core]> {
  const clock = new FakeClock();
  const a = await startCore({ clock, env: { LOAD_PERIOD_SEC: String(PERIOD_SEC), ...env } });
  const b = await startCore({ clock, prefix: a.prefix, env: { LOAD_PERIOD_SEC: String(PERIOD_SEC), ...env } });
  cores.push(a, b);
  return [a, b];
}

const getLoad = async (core: Core, headers: Record<string, string> = {}): Promise<{ status: number; report: LoadReport | null; body: string }> => {
  const r = await core.request('GET', INTERNAL_LOAD_PATH, undefined, headers);
  let report: LoadReport | null = null;
  try {
    report = parseLoadReport(JSON.parse(r.body));
  } catch {
    report = null;
  }
  return { status: r.status, report, body: r.body };
};

describe('load timing', () => {
  it('lines periods up with the epoch and settles a period within min(1 s, period/7)', () => {
    expect(loadTiming(60)).toMatchObject({ periodMs: 60_000, tickMs: 250, publishMs: 1000, settleMs: 1000 });
    expect(loadTiming(1)).toMatchObject({ periodMs: 1000, tickMs: 100, publishMs: 250, settleMs: 142 });
    const t = loadTiming(10);
    expect(periodOf(20_000, t)).toBe(2);
    expect(lastSettledPeriod(30_000 + t.settleMs - 1, t)).toBe(1);
    expect(lastSettledPeriod(30_000 + t.settleMs, t)).toBe(2);
    // For every period length the gatekeeper asks (tick + 250 ms after a period ends, tick =
    // period/8 within 50..1000 ms) after the core's settle: both mean the same period.
    for (let sec = 1; sec <= 3600; sec++) {
      const gkSettle = Math.max(50, Math.min(1000, Math.round((sec * 1000) / 8))) + 250;
      expect(loadTiming(sec).settleMs, `period ${sec} s`).toBeLessThan(gkSettle);
      expect(loadTiming(sec).tickMs, `period ${sec} s`).toBeLessThan(loadTiming(sec).settleMs);
    }
  });
});

describe('counts across replicas', () => {
  it('sums mints and /prove + /command requests of two replicas sharing a prefix', async () => {
    const [a, b] = await twoReplicas();
    const q = periodOf(a.clock.nowMs(), timing);
    // a: 3 mints (one of them proven and used) + 1 prove + 2 commands; b: 2 mints + 1 command
    const s = await establishSession(a); // 1 mint, 1 prove
    await mint(a);
    await mint(a);
    expect((await command(a, s, { cmd: 'count' })).status).toBe(200);
    expect((await a.post('/command', 'not a command')).status).toBe(400); // handled, so counted
    await mint(b);
    await mint(b);
    expect((await b.post('/command', 'x')).status).toBe(400);
    await a.app.load.tick();
    await b.app.load.tick();
    expect(await a.app.loadStore.counts(q)).toEqual({ mints: 5, commands: 4 });

    // the period ends and settles; both replicas tick (publishing their figures for it)
    a.clock.ms = (q + 1) * timing.periodMs + timing.settleMs;
    await a.app.load.tick();
    await b.app.load.tick();
    const { status, report } = await getLoad(a);
    expect(status).toBe(200);
    expect(report).not.toBeNull();
    expect(report).toMatchObject({ v: 1, periodStartMs: q * timing.periodMs, periodEndMs: (q + 1) * timing.periodMs, replicas: 2, mints: 5, commands: 4 });
    expect(report!.eventLoopUtilization).toBeGreaterThan(0);
    expect(report!.eventLoopUtilization).toBeLessThanOrEqual(1);
    expect(report!.latencyP99Ms).toBeGreaterThan(0);
    expect(report!.redisUsedMemoryBytes).toBeGreaterThan(0);
    // the other replica serves the same figures
    expect((await getLoad(b)).report).toMatchObject({ replicas: 2, mints: 5, commands: 4, periodStartMs: report!.periodStartMs });
  });

  it('keeps counts it could not flush and adds them on the next round', async () => {
    const store = await openStores('load-keep');
    try {
      const q = 170_000_000;
      await store.redis.set(`${store.prefix}{load}:n:${q}`, 'not a hash'); // HINCRBY fails: WRONGTYPE
      const ls = createLoadStore(store.redis, store.keys);
      await expect(ls.flush(q * 10_000, [{ period: q, mints: 2, commands: 3 }], 60_000, null, 1000)).rejects.toThrow();
      // the meter path: a failing round keeps them, the next one (after the key is fixed) adds them
      const clock = new FakeClock(q * 10_000 + 5);
      const meter = createLoadMeter({ store: ls, clock, timing, log: createLogger('silent') });
      meter.mint(clock.nowMs());
      meter.command(clock.nowMs());
      meter.command(clock.nowMs());
      await meter.tick();
      expect(await store.redis.type(`${store.prefix}{load}:n:${q}`)).toBe('string');
      await store.redis.del(`${store.prefix}{load}:n:${q}`);
      await meter.tick();
      expect(await ls.counts(q)).toEqual({ mints: 1, commands: 2 });
      await meter.stop();
    } finally {
      await store.close();
    }
  });
});

describe('replica figures', () => {
  it('expire: a replica that stops reporting drops out of the report within its lifetime', async () => {
    const [a, b] = await twoReplicas();
    const q = periodOf(a.clock.nowMs(), timing);
    await a.app.load.tick();
    await b.app.load.tick();
    // Redis keeps a record only a little beyond its lifetime (cleanup)
    const pttl = await a.redis.pttl(createKeys(a.prefix).load.replica(b.app.load.replicaId));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(REPLICA_TTL_MS + 1000);

    expect((await aggregatePeriod(a.app.loadStore, q, timing, a.clock.nowMs())).replicas).toBe(2);
    await b.app.load.stop(); // b stops reporting (its background loop too)
    a.clock.ms += REPLICA_TTL_MS + 1;
    await a.app.load.tick();
    const after = await aggregatePeriod(a.app.loadStore, q, timing, a.clock.nowMs());
    expect(after.replicas).toBe(1);
    expect((await a.app.loadStore.liveReplicas(a.clock.nowMs())).map((r) => r.replicaId)).toEqual([a.app.load.replicaId]);
  });

  it('aggregates the worst utilisation and p99 of the replicas with figures for the period', async () => {
    const store = await openStores('load-agg');
    try {
      const ls = createLoadStore(store.redis, store.keys);
      const q = 170_000_000;
      const now = (q + 1) * 10_000 + 500;
      const fig = (period: number, elu: number, p99: number) => ({ period, eventLoopUtilization: elu, latencyP99Ms: p99, requests: 10 });
      const publish = (id: string, current: ReturnType<typeof fig>, last: ReturnType<typeof fig> | null, expiresAtMs = now + 5000) =>
        ls.flush(now, [], 60_000, { replicaId: id, expiresAtMs, current, last }, 1000);
      await publish('finished', fig(q + 1, 0.99, 999), fig(q, 0.3, 40)); // its finished period q
      await publish('lagging', fig(q, 0.7, 12.5), null); // has not ticked since q ended: q so far
      await publish('new', fig(q + 1, 0.95, 900), null); // started after q: no figures for q
      await publish('gone', fig(q + 1, 0.1, 1), fig(q, 1, 5000), now - 1); // expired
      await ls.flush(now, [{ period: q, mints: 7, commands: 70 }], 60_000, null, 1000);
      const agg = await aggregatePeriod(ls, q, timing, now);
      expect(agg).toEqual({
        v: 1,
        period: q,
        periodStartMs: q * 10_000,
        periodEndMs: (q + 1) * 10_000,
        replicas: 2,
        mints: 7,
        commands: 70,
        eventLoopUtilization: 0.7,
        latencyP99Ms: 40,
      });
      // a period nobody has figures or counts for
      expect(await aggregatePeriod(ls, q - 5, timing, now)).toMatchObject({ replicas: 0, mints: 0, commands: 0, eventLoopUtilization: 0, latencyP99Ms: 0 });
    } finally {
      await store.close();
    }
  });
});

describe('GET /internal/load', () => {
  it('needs the internal secret and GET; serves a schema-valid version-1 report', async () => {
    const [a] = await twoReplicas();
    expect((await getLoad(a, { [INTERNAL_SECRET_HEADER]: '' })).status).toBe(403);
    expect((await getLoad(a, { [INTERNAL_SECRET_HEADER]: `${SECRET}x` })).status).toBe(403);
    const post = await a.request('POST', INTERNAL_LOAD_PATH, '{}');
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const r = await a.request('GET', INTERNAL_LOAD_PATH);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(r.headers.get('cache-control')).toBe('no-store');
    const body = JSON.parse(r.body) as Record<string, unknown>;
    expect(parseLoadReport(body)).toEqual(body); // exactly the schema's fields
    expect(Object.keys(body).sort()).toEqual(
      ['v', 'periodStartMs', 'periodEndMs', 'replicas', 'mints', 'commands', 'eventLoopUtilization', 'latencyP99Ms', 'redisUsedMemoryBytes', 'redisMaxMemoryBytes'].sort(),
    );
  });

  it('reports Redis maxmemory (0 without one) and used_memory', async () => {
    const [a] = await twoReplicas();
    expect((await getLoad(a)).report?.redisMaxMemoryBytes).toBe(0); // the shared test Redis has no limit
    const server = await startRedisServer(undefined, ['--maxmemory', '64mb']);
    try {
      const core = await startCore({ redisUrl: server.url });
      cores.push(core);
      const { report } = await getLoad(core);
      expect(report?.redisMaxMemoryBytes).toBe(64 * 1024 * 1024);
      expect(report?.redisUsedMemoryBytes).toBeGreaterThan(0);
      expect(report!.redisUsedMemoryBytes).toBeLessThan(64 * 1024 * 1024);
      await core.close();
      cores.pop();
    } finally {
      await server.stop();
    }
  });

  it('answers 503 when Redis cannot be read', async () => {
    const [a] = await twoReplicas();
    const r = await a.request('GET', INTERNAL_LOAD_PATH, undefined, {});
    expect(r.status).toBe(200);
    a.redis.disconnect(); // the app's fail-fast connection: every store call fails at once
    const down = await a.request('GET', INTERNAL_LOAD_PATH);
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).not.toBeNull();
  });
});

describe('the load-aggregate job', () => {
  it('writes the settled period into the summary, which the route then serves', async () => {
    const clock = new FakeClock();
    const core = await startCore({ clock, env: { LOAD_PERIOD_SEC: '1' } });
    cores.push(core);
    const t = core.app.loadTiming;
    const q = periodOf(clock.nowMs(), t);
    await mint(core);
    await core.post('/command', 'x');
    await core.app.load.tick();
    clock.ms = (q + 1) * t.periodMs + t.settleMs + 50;
    await core.app.load.tick();

    const metrics = createMetrics();
    const log = createLogger('silent');
    const j = startJobs({
      redis: redisUrl(),
      prefix: createKeys(core.prefix).jobsPrefix,
      files: createFileStore(core.redis, createKeys(core.prefix)),
      clock,
      log,
      sweepIntervalSec: 3600,
      load: { store: core.app.loadStore, timing: t },
      metrics,
    });
    jobs.push(j);
    await j.scheduled;
    // The job's first run (on BullMQ's schedule, real time): as long as it takes.
    let summary = await core.app.loadStore.readSummary();
    while (summary === null) {
      await new Promise((r) => setTimeout(r, 50));
      summary = await core.app.loadStore.readSummary();
    }
    expect(summary).toMatchObject({ period: q, mints: 1, commands: 1, replicas: 1 });
    // An older period never replaces it.
    expect(await core.app.loadStore.writeSummary({ ...summary!, period: q - 1, mints: 99 }, 60_000)).toBe(false);
    // The route serves the job's summary: counts added to q after the job ran do not show.
    await core.app.loadStore.flush(clock.nowMs(), [{ period: q, mints: 100, commands: 100 }], 60_000, null, 1000);
    const { report } = await getLoad(core);
    expect(report).toMatchObject({ periodStartMs: q * t.periodMs, mints: 1, commands: 1 });
    expect(await metrics.registry.getSingleMetricAsString('zax_core_jobs_total')).toMatch(/zax_core_jobs_total\{job="load-aggregate",outcome="completed"\} [1-9]/);
  });
});
