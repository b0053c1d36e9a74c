/**
 * The census (census.ts): mailboxes holding a live message, live messages and live files are
 * counted on every primary of the store (run it with ZAX_TEST_TOPOLOGY=cluster and the SCAN walks
 * each cluster node), under the relay's own prefix only; a walk cut short by its SCAN bound says so;
 * its record feeds the gauges on /metrics (a failed read keeps them, a record gone zeroes them); and
 * the BullMQ job runs it on schedule (CENSUS_INTERVAL_SEC), recorded and restored like the others.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { createLogger } from '@zax/service';
import { CENSUS_TTL_PERIODS, readCensus, runCensus, takeCensus, type CensusDeps } from '../src/census.js';
import { CENSUS_JOB, JOBS_QUEUE, startJobs, type Jobs } from '../src/jobs.js';
import { createKeys, type Keys } from '../src/keys.js';
import { createMetrics, type CoreMetrics } from '../src/metrics.js';
import { connectRedis } from '../src/redis.js';
import { createStores, type Stores } from '../src/store/index.js';
import { storeClient, storeTopology } from '../../../test/support/store.js';
import { until } from '../../../test/support/until.js';
import { randomHpk, redisUrl, startCore, type Core } from './helpers.js';
import { NOW, QUOTAS, TTL_MS, message } from './mailbox-fixture.js';

/** A guard against a hang, not a timing assertion. */
const PATIENCE_MS = 20_000;
/** When the census looks: messages and files that expired at NOW + 5 s are gone by then. */
const CENSUS_AT = NOW + 10_000;
const SOON = NOW + 5_000;
const LATER = NOW + TTL_MS;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function core(env: Record<string, string> = {}, metrics?: CoreMetrics): Promise<Core> {
  const c = await startCore({ env, ...(metrics !== undefined ? { metrics } : {}) });
  cleanups.push(() => c.close());
  return c;
}

/** The stores and census inputs of a prefix on the core's connection. */
function under(c: Core, prefix: string): { keys: Keys; stores: Stores; deps: CensusDeps } {
  const keys = createKeys(prefix);
  const stores = createStores(c.redis, keys, { nonceCacheSec: 600 });
  return { keys, stores, deps: { redis: c.redis, keys, files: stores.files } };
}

async function upload(stores: Stores, to: string, expiresAtMs: number): Promise<void> {
  expect(await stores.mailboxes.upload(message(to, { expiresAtMs }), QUOTAS)).toBe('stored');
}

async function file(stores: Stores, expiresAtMs: number): Promise<void> {
  const uploadID = randomHpk().replace(/[+/=]/g, 'x');
  await stores.files.start({ uploadID, from: randomHpk(), to: randomHpk(), fileSize: 100, nowMs: NOW, expiresAtMs });
}

/**
 * Three mailboxes — two live messages; one live and one expired; one expired only (its keys still
 * there: their Redis TTL outlasts the message) — and three files, one expired.
 */
async function populate(stores: Stores): Promise<void> {
  const [a, b, c] = [randomHpk(), randomHpk(), randomHpk()];
  await upload(stores, a, LATER);
  await upload(stores, a, LATER);
  await upload(stores, b, LATER);
  await upload(stores, b, SOON);
  await upload(stores, c, SOON);
  await file(stores, LATER);
  await file(stores, LATER);
  await file(stores, SOON);
}

const EXPECTED = { mailboxes: 2, messages: 3, files: 2 };

/** A sample of the Prometheus text (NaN when absent). */
function sample(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.slice(name.length + 1));
}

const CENSUS_GAUGES = ['mailboxes', 'messages', 'files', 'census_timestamp_seconds', 'census_complete'] as const;

function gauges(text: string): Record<(typeof CENSUS_GAUGES)[number], number> {
  return Object.fromEntries(CENSUS_GAUGES.map((g) => [g, sample(text, `zax_core_${g}`)])) as Record<(typeof CENSUS_GAUGES)[number], number>;
}

const scrape = async (c: Core): Promise<string> => (await c.request('GET', '/metrics')).body;

describe('takeCensus', () => {
  it('counts mailboxes with a live message, live messages and live files, on every primary', async () => {
    const c = await core();
    const { stores, deps } = under(c, c.prefix);
    expect(await takeCensus(deps, CENSUS_AT)).toMatchObject({ mailboxes: 0, messages: 0, files: 0, complete: true });
    await populate(stores);
    const r = await takeCensus(deps, CENSUS_AT);
    expect(r).toMatchObject({ ...EXPECTED, atMs: CENSUS_AT, complete: true });
    expect(r.tookMs).toBeGreaterThanOrEqual(0);
    // Before anything expired, every message and file is live.
    expect(await takeCensus(deps, NOW)).toMatchObject({ mailboxes: 3, messages: 5, files: 3, complete: true });
    // A small COUNT only takes more SCAN calls.
    expect(await takeCensus(deps, CENSUS_AT, { scanCount: 2 })).toMatchObject({ ...EXPECTED, complete: true });
  });

  it("counts only its own prefix's keys, not those of a longer prefix that starts with it", async () => {
    const c = await core();
    const own = under(c, c.prefix);
    const other = under(c, `${c.prefix}other:`); // dropped with the core's prefix
    await populate(own.stores);
    await upload(other.stores, randomHpk(), LATER);
    await file(other.stores, LATER);
    expect(await takeCensus(own.deps, CENSUS_AT)).toMatchObject({ ...EXPECTED, complete: true });
    expect(await takeCensus(other.deps, CENSUS_AT)).toMatchObject({ mailboxes: 1, messages: 1, files: 1, complete: true });
  });

  it('stops after maxScans SCAN calls and says it is incomplete', async () => {
    const c = await core();
    const { stores, deps } = under(c, c.prefix);
    const hpks = Array.from({ length: 40 }, () => randomHpk());
    for (const hpk of hpks) await upload(stores, hpk, LATER);
    const cut = await takeCensus(deps, CENSUS_AT, { scanCount: 1, maxScans: 1 });
    expect(cut.complete).toBe(false);
    expect(cut.mailboxes).toBeLessThan(hpks.length);
    expect(cut.messages).toBe(cut.mailboxes);
    expect(await takeCensus(deps, CENSUS_AT)).toMatchObject({ mailboxes: hpks.length, messages: hpks.length, complete: true });
  });
});

describe('the census record and the gauges', () => {
  it('runCensus stores the figures with a TTL of CENSUS_TTL_PERIODS periods; /metrics shows them at the next scrape', async () => {
    const c = await core();
    const { keys, stores, deps } = under(c, c.prefix);
    await populate(stores);
    expect(await readCensus(c.redis, keys)).toBeNull();
    expect(gauges(await scrape(c))).toEqual({ mailboxes: 0, messages: 0, files: 0, census_timestamp_seconds: 0, census_complete: 0 });

    const r = await runCensus(deps, CENSUS_AT, { intervalMs: 2000 });
    expect(r).toMatchObject({ ...EXPECTED, atMs: CENSUS_AT, complete: true });
    expect(await readCensus(c.redis, keys)).toEqual(r);
    const ttl = await c.redis.pttl(keys.census);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(CENSUS_TTL_PERIODS * 2000);
    expect(gauges(await scrape(c))).toEqual({ ...EXPECTED, census_timestamp_seconds: CENSUS_AT / 1000, census_complete: 1 });

    // An incomplete census is shown as such.
    await runCensus(deps, CENSUS_AT, { scanCount: 1, maxScans: 1 });
    expect(sample(await scrape(c), 'zax_core_census_complete')).toBe(0);

    // Once the record is gone (its TTL ran out: no census for three periods), no stale figure stays.
    await c.redis.del(keys.census);
    expect(gauges(await scrape(c))).toEqual({ mailboxes: 0, messages: 0, files: 0, census_timestamp_seconds: 0, census_complete: 0 });
  });

  it('a failed read keeps the last figures and the scrape still succeeds', async () => {
    const c = await core();
    const { keys, stores, deps } = under(c, c.prefix);
    await populate(stores);
    await runCensus(deps, CENSUS_AT);
    const metrics = createMetrics();
    const conn = await connectRedis(storeTopology(redisUrl()), { commandTimeoutMs: 2000 });
    cleanups.push(async () => conn.disconnect());
    metrics.censusSource(() => readCensus(conn, keys));
    const figures = { ...EXPECTED, census_timestamp_seconds: CENSUS_AT / 1000, census_complete: 1 };
    expect(gauges(await metrics.registry.metrics())).toEqual(figures);
    conn.disconnect();
    await expect(readCensus(conn, keys)).rejects.toThrow(/census read/);
    expect(gauges(await metrics.registry.metrics())).toEqual(figures);
  });

  it('a malformed record reads as none', async () => {
    const c = await core();
    const { keys } = under(c, c.prefix);
    for (const text of ['nope', '{}', JSON.stringify({ v: 1, mailboxes: -1, messages: 0, files: 0, atMs: 1, tookMs: 0, complete: true })]) {
      await c.redis.set(keys.census, text);
      expect(await readCensus(c.redis, keys), text).toBeNull();
    }
  });
});

describe('the census job', () => {
  it('runs every CENSUS_INTERVAL_SEC: the gauges follow the store, the run is recorded and its schedule restored', async () => {
    const metrics = createMetrics();
    const c = await core({ CENSUS_INTERVAL_SEC: '1' }, metrics);
    expect(c.config.censusIntervalSec).toBe(1);
    const { keys, stores } = under(c, c.prefix);
    await populate(stores);
    c.clock.ms = CENSUS_AT;
    const jobs: Jobs = startJobs({
      redis: storeTopology(redisUrl()),
      prefix: keys.jobsPrefix,
      files: stores.files,
      clock: c.clock,
      log: createLogger('silent'),
      sweepIntervalSec: 3600,
      census: { redis: c.redis, keys, intervalSec: c.config.censusIntervalSec },
      metrics,
      checkEveryMs: 3_600_000,
    });
    cleanups.push(() => jobs.close());
    metrics.jobHealth(() => jobs.health());
    await jobs.scheduled;

    await until('the census figures are on /metrics', async () => sample(await scrape(c), 'zax_core_mailboxes') === EXPECTED.mailboxes);
    const text = await scrape(c);
    expect(gauges(text)).toMatchObject({ ...EXPECTED, census_timestamp_seconds: CENSUS_AT / 1000, census_complete: 1 });
    expect(text).toMatch(/^zax_core_jobs_total\{job="census",outcome="completed"\} [1-9]/m);
    expect(jobs.health().find((h) => h.job === CENSUS_JOB)).toMatchObject({ periodMs: 1000, stale: false });

    // The next runs follow the store: a new mailbox shows up.
    await upload(stores, randomHpk(), LATER);
    await until('the next census counted the new mailbox', async () => sample(await scrape(c), 'zax_core_mailboxes') === EXPECTED.mailboxes + 1, PATIENCE_MS);

    // Recorded in last-run like every job, and re-created when its scheduler is lost.
    const probe = await storeClient(redisUrl());
    const queue = new Queue(JOBS_QUEUE, { connection: probe, prefix: keys.jobsPrefix });
    cleanups.push(async () => {
      await queue.close();
      probe.disconnect();
    });
    expect(Number(await probe.hget(`${keys.jobsPrefix}:last-run`, CENSUS_JOB))).toBeGreaterThan(0);
    expect(await queue.removeJobScheduler(CENSUS_JOB)).toBe(true);
    await jobs.check();
    expect(await queue.getJobScheduler(CENSUS_JOB)).toMatchObject({ every: 1000 });
    expect(await metrics.registry.metrics()).toMatch(/^zax_core_job_schedules_restored_total\{job="census"\} 1$/m);
  });
});
