/**
 * Adaptive difficulty on real processes (docs/DESIGN.md "The gatekeeper"): a load loop of many concurrent handshakes from
 * many addresses (behind a trusted proxy, so the throttle lets them through) raises the difficulty
 * on two gatekeeper replicas alike; clients that solve it still get through; it falls back, one step
 * per period, once the load stops. Short periods (1.8 s) are configured for the test. The core's
 * GET /internal/load is polled too (its pressure thresholds stay at their defaults here; the
 * core-driven rise is test/defenses/core-load.test.ts), and the gatekeepers stay ready. Every wait
 * is for an observed event (a sample, a count of handshakes), bounded only by the test's timeout;
 * the published changes are read from the controllers' logs. The observed timeline is printed.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { inject } from 'vitest';
import { b64, h2 } from '@zax/protocol';
import { Relay, post } from '../support/relay.js';
import * as raw from '../support/raw.js';

const PERIOD_MIN = 0.03; // 1.8 s
const STEP = 3;
const MAX = 9;

let relay: Relay;
beforeAll(async () => {
  relay = await Relay.start({
    redisUrl: inject('redisUrl'),
    gatekeepers: 2,
    // the §7 default budgets stay on: the load comes from many addresses, so they do not bite
    throttling: true,
    env: {
      TRUSTED_PROXIES: '127.0.0.1/32,::1',
      DIFFICULTY: '0',
      DIFFICULTY_PERIOD_MIN: String(PERIOD_MIN),
      DIFFICULTY_MIN_REQUESTS: '50',
      DIFFICULTY_OVERLOAD_FACTOR: '2',
      DIFFICULTY_STEP: String(STEP),
      DIFFICULTY_MAX: String(MAX),
      DIFFICULTY_CACHE_MS: '300',
      DIFFICULTY_LEASE_MS: '3000',
    },
  });
});
afterAll(async () => relay?.stop());

let addr = 0;
/** A fresh client address for each handshake: the load comes from "many phones". */
const nextAddress = (): string => {
  addr++;
  return `10.${(addr >> 16) & 255}.${(addr >> 8) & 255}.${addr & 255}`;
};

/** One handshake, started on one replica and verified on the other, solving the announced difficulty. */
async function handshake(startUrl: string, verifyUrl: string): Promise<{ start: number; verify: number; d: number }> {
  const xff = { 'x-forwarded-for': nextAddress() };
  const ct = raw.rnd(32);
  const r = await post(`${startUrl}/start_session`, b64(ct), xff);
  if (r.status !== 200) return { start: r.status, verify: 0, d: -1 };
  const [rt, d] = r.text.split('\r\n');
  const hs: raw.Handshake = { clientToken: ct, relayToken: Buffer.from(rt!, 'base64'), difficulty: Number(d), handshakeId: b64(h2(ct)) };
  const v = await post(`${verifyUrl}/verify_session`, raw.verifyBody(hs), xff);
  return { start: 200, verify: v.status, d: hs.difficulty };
}

/** What each replica announces right now (a /start_session on each, at the same moment). */
async function sample(): Promise<[number, number]> {
  const [a, b] = await Promise.all(
    relay.urls.map(async (u) => {
      const r = await post(`${u}/start_session`, b64(raw.rnd(32)), { 'x-forwarded-for': nextAddress() });
      return Number(r.text.split('\r\n')[1]);
    }),
  );
  return [a!, b!];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A published change, from the leader's "difficulty changed" log line. */
interface Change {
  period: number;
  from: number;
  to: number;
}

/** Every change the controllers published (whichever replica held the lease), in period order. */
function publishedChanges(): Change[] {
  const out: Change[] = [];
  for (const g of relay.gatekeepers) {
    for (const line of g.logs) {
      if (!line.includes('"difficulty changed"')) continue;
      const l = JSON.parse(line) as Change;
      out.push({ period: l.period, from: l.from, to: l.to });
    }
  }
  return out.sort((x, y) => x.period - y.period);
}

describe('difficulty driven by handshake load, two replicas', () => {
  it('rises under load on both replicas alike, lets solving clients through, and falls back when the load stops', async () => {
    const t0 = Date.now();
    const samples: { t: number; a: number; b: number; phase: string }[] = [];
    let phase = 'idle';
    let sampling = true;
    let sampled: () => void = () => {};
    /** Resolves once the sampler has taken one more sample. */
    const nextSample = (): Promise<void> => new Promise((resolve) => (sampled = resolve));
    /** Waits, sample by sample, until `done` holds (bounded by the test's timeout). */
    const until = async (done: () => boolean): Promise<void> => {
      while (!done()) await nextSample();
    };
    const sampler = (async () => {
      while (sampling) {
        const [a, b] = await sample();
        samples.push({ t: Date.now() - t0, a, b, phase });
        sampled();
        await sleep(200);
      }
    })();
    const results: { start: number; verify: number; d: number }[] = [];
    const timeline = (): string => {
      const shown = samples.filter((s, i) => i === 0 || s.a !== samples[i - 1]!.a || s.b !== samples[i - 1]!.b);
      const agree = samples.filter((s) => s.a === s.b).length;
      return [
        `difficulty timeline (period ${(PERIOD_MIN * 60).toFixed(1)} s, min 50, f 2, step ${STEP}, max ${MAX}; two gatekeepers; t in s since start):`,
        ...shown.map((s) => `  t=${(s.t / 1000).toFixed(1).padStart(5)}  gk1=${String(s.a).padStart(2)}  gk2=${String(s.b).padStart(2)}  (${s.phase})`),
        `published: ${publishedChanges().map((c) => `${c.from}→${c.to}`).join(', ')}`,
        `samples where both replicas announced the same value: ${agree}/${samples.length}`,
        `load: ${results.length} handshakes, ${results.filter((r) => r.verify === 200).length} verified; statuses ${JSON.stringify(countBy(results.map((r) => `${r.start}/${r.verify}`)))}`,
        `announced during load: ${JSON.stringify(countBy(results.map((r) => String(r.d))))}`,
      ].join('\n');
    };
    onTestFailed(() => console.log(timeline()));

    // idle: a few samples, all at the base
    await until(() => samples.length >= 3);
    expect(samples.every((s) => s.a === 0 && s.b === 0)).toBe(true);

    // ---- load: 24 concurrent loops of full handshakes ----
    phase = 'load';
    let loading = true;
    const workers = Array.from({ length: 24 }, async (_, w) => {
      for (let i = 0; loading; i++) results.push(await handshake(relay.urls[(w + i) % 2]!, relay.urls[(w + i + 1) % 2]!));
    });
    // until the difficulty has risen on both replicas
    await until(() => {
      const last = samples.at(-1)!;
      return last.phase === 'load' && last.a >= STEP && last.b >= STEP;
    });
    // a client that solves the raised difficulty still gets through: full handshake, prove, command
    const hs = await raw.startSession(relay.urls[1]!);
    const session = await raw.connect(relay.url);
    const count = await raw.command(session, { cmd: 'count' });
    // the load goes on until 200 more handshakes have been solved at a raised difficulty
    const raised = (): number => results.filter((r) => r.d >= STEP).length;
    const target = raised() + 200;
    await until(() => raised() >= target);
    loading = false;
    await Promise.all(workers);

    // ---- no load: until both are back at the base ----
    phase = 'quiet';
    await until(() => {
      const recent = samples.slice(-3);
      return recent.length === 3 && recent.every((s) => s.phase === 'quiet' && s.a === 0 && s.b === 0);
    });
    sampling = false;
    await sampler;

    console.log([timeline(), `a fresh client during load saw d=${hs.difficulty}; its command answered ${count.status}`].join('\n'));

    // rose on both replicas, to the same peak, and clients kept getting through
    const peakA = Math.max(...samples.map((s) => s.a));
    const peakB = Math.max(...samples.map((s) => s.b));
    expect(peakA).toBeGreaterThanOrEqual(STEP);
    expect(peakB).toBe(peakA);
    expect(peakA).toBeLessThanOrEqual(MAX);
    expect(hs.difficulty).toBeGreaterThanOrEqual(STEP);
    expect(count.status).toBe(200);
    expect(count.plain).toBe('0');
    // no answer solved at the announced difficulty was refused (the grace window covers changes,
    // and a replica whose cache predates a change reads it again before refusing); a busy core
    // (503) is the only other answer allowed
    expect(results.filter((r) => r.verify === 401)).toEqual([]);
    expect(results.filter((r) => !(r.start === 200 && r.verify === 200) && r.start !== 503 && r.verify !== 503)).toEqual([]);
    expect(results.some((r) => r.verify === 200 && r.d >= STEP)).toBe(true);
    // both replicas announce the published values: each one announced was published, and where
    // they differ they stand on the two sides of one change (a cache, ≤ 300 ms, not yet renewed)
    const changes = publishedChanges();
    const values = [0, ...changes.map((c) => c.to)];
    for (let i = 1; i < values.length; i++) expect(changes[i - 1]!.from).toBe(values[i - 1]);
    const oneChangeApart = (x: number, y: number): boolean =>
      values.some((v, i) => i > 0 && ((values[i - 1] === x && v === y) || (values[i - 1] === y && v === x)));
    for (const s of samples) {
      expect(values).toContain(s.a);
      expect(values).toContain(s.b);
      if (s.a !== s.b) expect(oneChangeApart(s.a, s.b), JSON.stringify(s)).toBe(true);
    }
    // fell back to the base, never more than one step per period on the way down (one published
    // change per period at most: the controller's own record)
    expect(samples.at(-1)).toMatchObject({ a: 0, b: 0 });
    expect(changes.at(-1)!.to).toBe(0);
    expect(new Set(changes.map((c) => c.period)).size).toBe(changes.length);
    for (const c of changes) if (c.to < c.from) expect(c.from - c.to).toBeLessThanOrEqual(STEP);
    // the controller read the core's load report throughout, and the gatekeepers stay ready
    expect(relay.gatekeepers.some((g) => g.logs.some((l) => l.includes('core load report unavailable')))).toBe(false);
    for (const u of relay.urls) expect((await fetch(`${u}/readyz`)).status).toBe(200);
  }, 45_000);
});

function countBy(xs: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}
