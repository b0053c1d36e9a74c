/**
 * Difficulty driven by the core's own load, on real processes (issue 4): the core measures its
 * event-loop utilisation and request latency per LOAD_PERIOD_SEC and serves them on
 * GET /internal/load; the gatekeeper's controller (adaptive difficulty on, short periods) raises
 * the announced difficulty while the core reports a figure over its threshold, and lowers it again
 * once the load stops. The handshake-count rule is kept out of it (DIFFICULTY_MIN_REQUESTS is far
 * above anything this test does), so every rise here comes from the core's report. The load is
 * real `/command` traffic through the gatekeeper. The difficulty timeline is printed.
 */
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import { INTERNAL_LOAD_PATH, INTERNAL_SECRET_HEADER, b64, parseLoadReport, type LoadReport } from '@zax/protocol';
import { Relay, post } from '../support/relay.js';
import * as raw from '../support/raw.js';

const PERIOD_MIN = 0.03; // 1.8 s difficulty periods
const LOAD_PERIOD_SEC = 1;
const STEP = 2;
const MAX = 6;
const ELU_THRESHOLD = 0.3;
const LOOPS = 24;

let relay: Relay;
beforeAll(async () => {
  relay = await Relay.start({
    redisUrl: inject('redisUrl'),
    env: {
      LOAD_PERIOD_SEC: String(LOAD_PERIOD_SEC),
      DIFFICULTY: '0',
      DIFFICULTY_PERIOD_MIN: String(PERIOD_MIN),
      DIFFICULTY_MIN_REQUESTS: '1000000', // the count rule never fires here
      DIFFICULTY_STEP: String(STEP),
      DIFFICULTY_MAX: String(MAX),
      DIFFICULTY_EVENT_LOOP_UTILIZATION: String(ELU_THRESHOLD),
      DIFFICULTY_CACHE_MS: '200',
      DIFFICULTY_LEASE_MS: '3000',
    },
  });
});
afterAll(async () => relay?.stop());

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What the gatekeeper announces now. */
async function announced(): Promise<number> {
  const r = await post(`${relay.url}/start_session`, b64(raw.rnd(32)));
  return Number(r.text.split('\r\n')[1]);
}

/** The core's report, read the way the gatekeeper reads it. */
async function coreLoad(): Promise<LoadReport | null> {
  const r = await fetch(`http://127.0.0.1:${relay.core.port}${INTERNAL_LOAD_PATH}`, { headers: { [INTERNAL_SECRET_HEADER]: relay.core.env.INTERNAL_SECRET! } });
  return r.status === 200 ? parseLoadReport(await r.json()) : null;
}

interface Sample {
  t: number;
  d: number;
  phase: string;
  elu: number;
  p99: number;
  commands: number;
  periodEnd: number;
}

describe('difficulty driven by the core load report', () => {
  it('rises while the core is busy with commands and falls back once the load stops', async () => {
    // Sessions for the load (at difficulty 0). Making 24 of them at once, right after start-up, is
    // itself load: wait (≤ 10 s) until the core's report and the difficulty show it has passed, so
    // the idle phase below is idle.
    const sessions = await Promise.all(Array.from({ length: LOOPS }, () => raw.connect(relay.url)));
    const madeAt = Date.now();
    const settleDeadline = madeAt + 10_000;
    while (Date.now() < settleDeadline) {
      const [d, r] = await Promise.all([announced(), coreLoad()]);
      // A report of a period that began after the sessions were made, under the threshold.
      if (d === 0 && r !== null && r.periodStartMs >= madeAt && r.eventLoopUtilization < ELU_THRESHOLD) break;
      await sleep(200);
    }

    const t0 = Date.now();
    const samples: Sample[] = [];
    let phase = 'idle';
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [d, r] = await Promise.all([announced(), coreLoad()]);
        samples.push({ t: Date.now() - t0, d, phase, elu: r?.eventLoopUtilization ?? -1, p99: r?.latencyP99Ms ?? -1, commands: r?.commands ?? -1, periodEnd: r?.periodEndMs ?? 0 });
        await sleep(150);
      }
    })();
    // However the test ends, the sampler stops before the relay does (no request into a stopped relay).
    onTestFinished(async () => {
      sampling = false;
      await sampler.catch(() => {});
    });

    await sleep(1500);
    expect(samples.length).toBeGreaterThan(3);
    expect(samples.every((s) => s.d === 0), JSON.stringify(samples)).toBe(true);

    // ---- load: LOOPS concurrent loops of commands through the gatekeeper ----
    phase = 'load';
    let loading = true;
    const statuses = new Map<number, number>();
    const payload = 'x'.repeat(2048);
    const loops = sessions.map(async (s, i) => {
      for (let n = 0; loading; n++) {
        const cmd = n % 4 === 0 ? { cmd: 'upload', to: sessions[(i + 1) % LOOPS]!.id.hpk, payload } : { cmd: 'count' };
        const r = await raw.command(s, cmd);
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      }
    });
    const riseDeadline = Date.now() + 10_000;
    while (Date.now() < riseDeadline && (samples.at(-1)?.d ?? 0) < STEP) await sleep(100);
    await sleep(1500); // keep it busy a little longer
    loading = false;
    await Promise.all(loops);

    // ---- quiet: back to the base ----
    phase = 'quiet';
    const fallDeadline = Date.now() + 12_000;
    while (Date.now() < fallDeadline) {
      const recent = samples.slice(-3);
      if (recent.length === 3 && recent.every((s) => s.phase === 'quiet' && s.d === 0)) break;
      await sleep(100);
    }
    sampling = false;
    await sampler;

    // ---- the timeline: every change of the announced difficulty or of the core's period ----
    const lines = samples.filter((s, i) => i === 0 || s.d !== samples[i - 1]!.d || s.periodEnd !== samples[i - 1]!.periodEnd || s.phase !== samples[i - 1]!.phase);
    const total = [...statuses.values()].reduce((a, b) => a + b, 0);
    console.log(
      [
        `core-load difficulty timeline (difficulty period ${(PERIOD_MIN * 60).toFixed(1)} s, LOAD_PERIOD_SEC ${LOAD_PERIOD_SEC}, ELU threshold ${ELU_THRESHOLD}, step ${STEP}, max ${MAX}; t in s):`,
        ...lines.map(
          (s) =>
            `  t=${(s.t / 1000).toFixed(1).padStart(5)}  d=${String(s.d).padStart(2)}  core: elu=${s.elu.toFixed(2)} p99=${s.p99.toFixed(1).padStart(6)} ms  commands/period=${String(s.commands).padStart(5)}  (${s.phase})`,
        ),
        `load: ${total} commands, statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
      ].join('\n'),
    );

    const load = samples.filter((s) => s.phase === 'load');
    const quiet = samples.filter((s) => s.phase === 'quiet');
    // the core saw the load and reported it over the threshold…
    expect(Math.max(...load.map((s) => s.commands))).toBeGreaterThan(100);
    expect(Math.max(...samples.map((s) => s.elu))).toBeGreaterThan(ELU_THRESHOLD);
    // …the difficulty rose because of it (the count rule cannot fire here)…
    const peak = Math.max(...samples.map((s) => s.d));
    expect(peak).toBeGreaterThanOrEqual(STEP);
    expect(peak).toBeLessThanOrEqual(MAX);
    const changes = relay.gatekeeper.logs.filter((l) => l.includes('"msg":"difficulty changed"')).map((l) => JSON.parse(l) as { to: number; from: number; rule: number; pressure: string });
    expect(changes.some((c) => c.to > c.from && c.pressure === 'over' && c.rule === 0)).toBe(true);
    // …commands kept being answered…
    expect((statuses.get(200) ?? 0) / total).toBeGreaterThan(0.99);
    // …and it fell back to the base after the load, one step per period at most
    expect(samples.at(-1)).toMatchObject({ phase: 'quiet', d: 0 });
    for (let i = 1; i < quiet.length; i++) expect(quiet[i - 1]!.d - quiet[i]!.d).toBeLessThanOrEqual(STEP);
    // the controller never lost the core's report
    expect(relay.gatekeeper.logs.some((l) => l.includes('core load report unavailable'))).toBe(false);
  }, 40_000);
});
