/**
 * Difficulty driven by the core's own load, on real processes (docs/DESIGN.md "The gatekeeper"): the core measures its
 * event-loop utilisation and request latency per LOAD_PERIOD_SEC and serves them on
 * GET /internal/load; the gatekeeper's controller (adaptive difficulty on, short periods) raises
 * the announced difficulty while the core reports a figure over its threshold, and lowers it again
 * once the load stops. The handshake-count rule is kept out of it (DIFFICULTY_MIN_REQUESTS is far
 * above anything this test does), so every rise here comes from the core's report. The load is
 * real `/command` traffic through the gatekeeper.
 *
 * Each phase waits for the controller's own decisions, read from the gatekeeper's log as it writes
 * them (one line per evaluated period at LOG_LEVEL=debug), not for a number of seconds: the idle
 * phase for a period evaluated without a rise, the load phase until the rise, the quiet phase until
 * the difficulty is back at the base. How long that took, and the core's figures, are printed.
 */
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import { INTERNAL_LOAD_PATH, INTERNAL_SECRET_HEADER, b64, parseLoadReport, type LoadReport } from '@zax/protocol';
import { Relay, post } from '../support/relay.js';
import * as raw from '../support/raw.js';

const PERIOD_MIN = 0.03; // 1.8 s difficulty periods
const PERIOD_MS = PERIOD_MIN * 60_000;
const LOAD_PERIOD_SEC = 1;
const STEP = 2;
const MAX = 6;
const ELU_THRESHOLD = 0.2;
const LOOPS = 24;

let relay: Relay;
beforeAll(async () => {
  relay = await Relay.start({
    redisUrl: inject('redisUrl'),
    adminPorts: true,
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
    gatekeeperEnv: { LOG_LEVEL: 'debug' }, // every evaluation is logged, not only the changes
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

/** One period evaluated by the controller, from its log line. */
interface Evaluation {
  period: number;
  from: number;
  d: number;
  pressure: string;
  rule: number;
}

function evaluationOf(line: string): Evaluation | null {
  if (!line.includes('"msg":"difficulty changed"') && !line.includes('"msg":"difficulty evaluated"')) return null;
  const o = JSON.parse(line) as { period: number; from?: number; to?: number; d?: number; pressure: string; rule: number };
  return { period: o.period, from: o.from ?? o.d!, d: o.to ?? o.d!, pressure: o.pressure, rule: o.rule };
}

/** The next evaluation that `accept`s (every evaluation logged meanwhile is passed to it). */
async function nextEvaluation(accept: (e: Evaluation) => boolean): Promise<Evaluation> {
  const line = await relay.gatekeeper.waitForLog((l) => {
    const e = evaluationOf(l);
    return e !== null && accept(e);
  });
  return evaluationOf(line)!;
}

/** A gauge of the gatekeeper's /metrics (on its admin port: the public port does not serve it). */
async function gatekeeperGauge(name: string): Promise<number> {
  const text = await (await fetch(`${relay.adminUrls[0]}/metrics`)).text();
  return Number(text.split('\n').find((l) => l.startsWith(`${name} `))?.split(' ')[1] ?? NaN);
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
    // itself load: the idle phase starts once a period that began after them is evaluated at 0.
    const sessions = await Promise.all(Array.from({ length: LOOPS }, () => raw.connect(relay.url)));
    const madeAt = Date.now();
    await nextEvaluation((e) => e.period * PERIOD_MS >= madeAt && e.d === 0);

    const t0 = Date.now();
    const samples: Sample[] = [];
    let phase = 'idle';
    let sampling = true;
    // The core's figures and the announced difficulty, for the printed timeline only.
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

    // ---- idle: a whole period evaluated without load stays at the base ----
    const idle = await nextEvaluation((e) => e.period * PERIOD_MS >= t0);
    expect(idle.d).toBe(0);
    expect(idle.pressure).not.toBe('over');

    // ---- load: LOOPS concurrent loops of commands through the gatekeeper, until the rise ----
    phase = 'load';
    const loadFrom = Date.now();
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
    // However the test ends (a rise that never comes ends it by its timeout), the loops stop too,
    // and what the controller decided is printed.
    onTestFinished(async (ctx) => {
      loading = false;
      await Promise.allSettled(loops);
      if (ctx.task.result?.state === 'fail') {
        const decided = relay.gatekeeper.logs.map(evaluationOf).filter((e) => e !== null);
        console.log(`evaluations before the failure: ${decided.map((e) => `${e.from}→${e.d} ${e.pressure}`).join(', ')}`);
      }
    });
    let rise: Evaluation;
    let riseFigures: { elu: number; p99Ms: number; report: LoadReport | null };
    try {
      rise = await nextEvaluation((e) => e.d > e.from);
      // The figures the controller just acted on (its gauges hold them until the next period) and
      // the core's report now: it counted the load.
      riseFigures = {
        elu: await gatekeeperGauge('zax_gatekeeper_core_event_loop_utilization'),
        p99Ms: 1000 * (await gatekeeperGauge('zax_gatekeeper_core_latency_p99_seconds')),
        report: await coreLoad(),
      };
      expect(await announced()).toBe(rise.d);
      // keep it busy for one more period
      await nextEvaluation((e) => e.period > rise.period);
    } finally {
      loading = false;
      await Promise.all(loops);
    }
    const riseAfterMs = Date.now() - loadFrom;

    // ---- quiet: back to the base ----
    phase = 'quiet';
    const quietFrom = Date.now();
    await nextEvaluation((e) => e.d === 0);
    expect(await announced()).toBe(0);
    const fallAfterMs = Date.now() - quietFrom;
    sampling = false;
    await sampler;

    // ---- the timeline: every change of the announced difficulty or of the core's period ----
    const evaluations = relay.gatekeeper.logs.map(evaluationOf).filter((e): e is Evaluation => e !== null);
    const lines = samples.filter((s, i) => i === 0 || s.d !== samples[i - 1]!.d || s.periodEnd !== samples[i - 1]!.periodEnd || s.phase !== samples[i - 1]!.phase);
    const total = [...statuses.values()].reduce((a, b) => a + b, 0);
    console.log(
      [
        `core-load difficulty timeline (difficulty period ${(PERIOD_MS / 1000).toFixed(1)} s, LOAD_PERIOD_SEC ${LOAD_PERIOD_SEC}, ELU threshold ${ELU_THRESHOLD}, step ${STEP}, max ${MAX}; t in s):`,
        ...lines.map(
          (s) =>
            `  t=${(s.t / 1000).toFixed(1).padStart(5)}  d=${String(s.d).padStart(2)}  core: elu=${s.elu.toFixed(2)} p99=${s.p99.toFixed(1).padStart(6)} ms  commands/period=${String(s.commands).padStart(5)}  (${s.phase})`,
        ),
        `evaluations: ${evaluations.map((e) => `${e.from}→${e.d} ${e.pressure}`).join(', ')}`,
        `rise ${rise.from}→${rise.d} after ${(riseAfterMs / 1000).toFixed(1)} s of load on core elu=${riseFigures.elu.toFixed(2)} p99=${riseFigures.p99Ms.toFixed(1)} ms; back to 0 ${(fallAfterMs / 1000).toFixed(1)} s after it`,
        `load: ${total} commands, statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
      ].join('\n'),
    );

    // the difficulty rose because the core reported a figure over its threshold (the count rule cannot fire here)…
    expect(rise.pressure).toBe('over');
    expect(rise.rule).toBe(0);
    expect(rise.d).toBeGreaterThanOrEqual(STEP);
    expect(riseFigures.elu > ELU_THRESHOLD || riseFigures.p99Ms > 1000).toBe(true);
    // …the core saw the load…
    expect(riseFigures.report?.commands ?? 0).toBeGreaterThan(0);
    // …never beyond the maximum, and it fell back one step per period at most
    expect(Math.max(...evaluations.map((e) => e.d))).toBeLessThanOrEqual(MAX);
    for (const e of evaluations) expect(e.from - e.d).toBeLessThanOrEqual(STEP);
    // commands kept being answered
    expect((statuses.get(200) ?? 0) / total).toBeGreaterThan(0.99);
    // the controller never lost the core's report
    expect(relay.gatekeeper.logs.some((l) => l.includes('core load report unavailable'))).toBe(false);
  }, 60_000);
});
