/**
 * Runs one scenario at one concurrency: `concurrency` virtual devices, each looping over the
 * scenario's steps with one request in flight at a time (closed loop), every response validated by
 * the shared protocol code. Devices first connect (outside the measurement), then a warm-up runs,
 * then the measured window, during which the CPU of the relay processes, of Redis and of the
 * generator itself is sampled.
 */
import { performance } from 'node:perf_hooks';
import { CpuMeter } from './cpu.js';
import type { RedisInfo } from './redis-info.js';
import { THROTTLE_STREAK, THROTTLED, throttledMessage } from './shared/throttle.js';
import { CheckFailure, connectSteps, newDevice, resetDevice, type Device, type Platform, type Scenario, type ScenarioOptions, type Step } from './shared/wire.js';
import { Samples, type LatencySummary } from './stats.js';
import type { Send } from './transport.js';

/** A labelled group of pids whose CPU (with descendants) is measured. */
export interface PidGroup {
  label: string;
  pids: number[];
}

export interface RunContext {
  platform: Platform;
  send: Send;
  /**
   * Several entry points (gatekeepers): device i sends everything (handshake and commands) through
   * `sends[i % sends.length]`. Unset: every device uses `send`.
   */
  sends?: readonly Send[];
  options: ScenarioOptions;
  /** Relay processes (core, gatekeeper, …) and, separately, Redis. */
  relayPids: PidGroup[];
  redisPids: number[];
  redisInfo: RedisInfo | null;
  /** A dead service, if any (only for a relay the tool started). */
  deadService?: () => string | null;
  log: (line: string) => void;
}

export interface RunLimits {
  concurrency: number;
  /** Seconds of measurement (0 = no time limit; then `ops` must be set). */
  durationSec: number;
  warmupSec: number;
  /** Stop after this many operations (0 = no limit). */
  ops: number;
}

export interface ErrorBucket {
  count: number;
  steps: Record<string, number>;
  examples: string[];
}

export interface RunResult {
  scenario: string;
  concurrency: number;
  crypto: string;
  measuredSec: number;
  warmupSec: number;
  opUnit: string;
  ops: number;
  opsPerSec: number;
  iterations: number;
  iterationsPerSec: number;
  requests: number;
  requestsPerSec: number;
  /** Chunk payload moved (files), 10^6 bytes per second of the window, up and down. */
  uploadMBps?: number;
  downloadMBps?: number;
  /** Chunk payload per second spent in chunk requests: one device's transfer rate (files). */
  uploadStreamMBps?: number;
  downloadStreamMBps?: number;
  /** Per step: latency, errors, and mean request / response body bytes of its validated requests. */
  steps: Record<string, LatencySummary & { errors: number; reqBodyBytes: number; resBodyBytes: number }>;
  iteration: LatencySummary;
  errors: { total: number; byStatus: Record<string, ErrorBucket> };
  /** 429 answers over the whole run (warm-up included): the relay throttled the generator. */
  throttled: number;
  fatal: string | null;
  cpu: {
    /** CPU milliseconds over the measured window. */
    relayMs: Record<string, number>;
    relayTotalMs: number;
    redisProcMs: number | null;
    redisInfoMs: number | null;
    generatorMs: number;
    exitedProcesses: number;
    /** Per operation (ms). */
    relayMsPerOp: number | null;
    relayMsPerRequest: number | null;
    redisMsPerOp: number | null;
    generatorMsPerOp: number | null;
  };
  ok: boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The entry point of device `i` (round-robin over `ctx.sends` when there are several). */
export function sendOf(ctx: RunContext, i: number): Send {
  const list = ctx.sends;
  return list !== undefined && list.length > 0 ? list[i % list.length]! : ctx.send;
}

interface StepRecord {
  samples: Samples;
  errors: number;
  /** Request and response body characters (the wire format is ASCII: bytes) of validated requests. */
  reqBytes: number;
  resBytes: number;
}

class Recorder {
  measureStart = Infinity;
  ops = 0;
  iterations = 0;
  requests = 0;
  upBytes = 0;
  downBytes = 0;
  steps = new Map<string, StepRecord>();
  iteration = new Samples();
  errors = new Map<string, ErrorBucket>();
  errorTotal = 0;
  /** 429s seen (warm-up included), and how many came in a row with no valid response between. */
  throttled = 0;
  throttleStreak = 0;

  step(name: string): StepRecord {
    let s = this.steps.get(name);
    if (s === undefined) {
      s = { samples: new Samples(), errors: 0, reqBytes: 0, resBytes: 0 };
      this.steps.set(name, s);
    }
    return s;
  }

  error(step: string, status: number, reason: string): void {
    this.errorTotal++;
    this.step(step).errors++;
    const key = String(status);
    let b = this.errors.get(key);
    if (b === undefined) {
      b = { count: 0, steps: {}, examples: [] };
      this.errors.set(key, b);
    }
    b.count++;
    b.steps[step] = (b.steps[step] ?? 0) + 1;
    const ex = `${step}: ${reason}`;
    if (b.examples.length < 5 && !b.examples.includes(ex)) b.examples.push(ex);
  }
}

function failureOf(step: Step, e: unknown): CheckFailure {
  if (e instanceof CheckFailure) return e;
  return new CheckFailure(step.name, 0, `client error: ${e instanceof Error ? e.message : String(e)}`);
}

export async function runScenario(ctx: RunContext, scenario: Scenario, limits: RunLimits): Promise<RunResult> {
  const devices = Array.from({ length: limits.concurrency }, () => newDevice(ctx.platform, ctx.options));
  if (scenario.needsSession) await connectSessions(ctx, devices);

  const rec = new Recorder();
  const run: { phase: 'warmup' | 'measure' | 'stop'; fatal: string | null } = { phase: 'warmup', fatal: null };
  const stopNow = (): void => {
    run.phase = 'stop';
  };
  const stopped = (): boolean => run.phase === 'stop';

  const loop = async (d: Device, send: Send): Promise<void> => {
    while (!stopped()) {
      const steps = scenario.plan(d);
      const t0 = performance.now();
      let ok = true;
      for (const step of steps) {
        if (stopped()) {
          ok = false;
          break;
        }
        const ts = performance.now();
        const measured = ts >= rec.measureStart;
        let failure: CheckFailure | null = null;
        try {
          const req = step.request(d);
          const res = await send(req.path, req.body);
          const dt = performance.now() - ts;
          if (res.status === THROTTLED) {
            rec.throttled++;
            rec.throttleStreak++;
          }
          try {
            step.check(d, res);
            rec.throttleStreak = 0;
            if (measured) {
              const st = rec.step(step.name);
              st.samples.add(dt);
              st.reqBytes += req.body.length;
              st.resBytes += res.body.length;
              rec.requests++;
              if (step.op === true) rec.ops++;
              if (step.bytes !== undefined) {
                if (step.name.startsWith('upload')) rec.upBytes += step.bytes;
                else rec.downBytes += step.bytes;
              }
            }
          } catch (e) {
            if (measured) rec.requests++;
            throw e;
          }
        } catch (e) {
          failure = failureOf(step, e);
        }
        if (failure !== null) {
          if (measured || failure.fatal) rec.error(failure.step, failure.status, failure.reason);
          if (failure.fatal) {
            run.fatal = failure.message;
            stopNow();
          }
          // A run of 429s: the relay's per-client budgets, not its capacity, decide the figures.
          if (rec.throttleStreak >= THROTTLE_STREAK && run.fatal === null) {
            run.fatal = 'throttled';
            stopNow();
          }
          resetDevice(d);
          ok = false;
          break;
        }
      }
      if (ok && t0 >= rec.measureStart) {
        rec.iteration.add(performance.now() - t0);
        rec.iterations++;
      }
      // --ops stops at an iteration boundary, so every finished iteration has cleaned up after itself.
      if (limits.ops > 0 && rec.ops >= limits.ops) stopNow();
    }
  };

  // The measurement window starts after the warm-up (or before the first request without one).
  const relayMeters = ctx.relayPids.map((g) => ({ label: g.label, meter: new CpuMeter(g.pids) }));
  const redisMeter = ctx.redisPids.length > 0 ? new CpuMeter(ctx.redisPids) : null;
  let redisCpu0: number | null = null;
  let gen0 = process.cpuUsage();
  let tStart = 0;
  const beginMeasure = async (): Promise<void> => {
    for (const m of relayMeters) m.meter.start();
    redisMeter?.start();
    redisCpu0 = ctx.redisInfo ? await ctx.redisInfo.cpuMs() : null;
    gen0 = process.cpuUsage();
    tStart = performance.now();
    rec.measureStart = tStart;
    if (run.phase === 'warmup') run.phase = 'measure';
  };

  if (limits.warmupSec === 0) await beginMeasure();
  const workers = devices.map((d, i) => loop(d, sendOf(ctx, i)));
  if (limits.warmupSec > 0) {
    await Promise.race([sleep(limits.warmupSec * 1000), Promise.all(workers)]);
    await beginMeasure();
  }

  const deadline = limits.durationSec > 0 ? tStart + limits.durationSec * 1000 : Infinity;
  let allDone = false;
  const done = Promise.all(workers).then(() => {
    allDone = true;
  });
  while (!allDone && !stopped() && performance.now() < deadline) {
    await Promise.race([sleep(Math.min(50, Math.max(1, deadline - performance.now()))), done]);
    const dead = ctx.deadService?.() ?? null;
    if (dead !== null) {
      run.fatal = `relay service died during the run: ${dead}`;
      stopNow();
    }
  }
  stopNow();
  await done;
  const tEnd = performance.now();
  if (run.fatal === 'throttled') run.fatal = throttledMessage(rec.throttled);
  const gen = process.cpuUsage(gen0);
  const relayMs: Record<string, number> = {};
  let exited = 0;
  for (const m of relayMeters) {
    const r = m.meter.stop();
    relayMs[m.label] = r.ms;
    exited += r.exited;
  }
  const redisProcMs = redisMeter ? redisMeter.stop().ms : null;
  const redisInfoMs = ctx.redisInfo && redisCpu0 !== null ? (await ctx.redisInfo.cpuMs()) - redisCpu0 : null;

  const measuredSec = (tEnd - tStart) / 1000;
  const relayTotalMs = Object.values(relayMs).reduce((a, b) => a + b, 0);
  const generatorMs = (gen.user + gen.system) / 1000;
  const perOp = (ms: number | null): number | null => (ms === null || rec.ops === 0 ? null : ms / rec.ops);
  const steps: RunResult['steps'] = {};
  for (const name of scenario.stepNames) {
    const s = rec.steps.get(name);
    if (s !== undefined) {
      const n = s.samples.count;
      steps[name] = { ...s.samples.summary(), errors: s.errors, reqBodyBytes: n > 0 ? s.reqBytes / n : 0, resBodyBytes: n > 0 ? s.resBytes / n : 0 };
    }
  }
  const byStatus: Record<string, ErrorBucket> = {};
  for (const [k, v] of rec.errors) byStatus[k] = v;
  const result: RunResult = {
    scenario: scenario.name,
    concurrency: limits.concurrency,
    crypto: ctx.platform.name,
    measuredSec,
    warmupSec: limits.warmupSec,
    opUnit: scenario.opUnit,
    ops: rec.ops,
    opsPerSec: rec.ops / measuredSec,
    iterations: rec.iterations,
    iterationsPerSec: rec.iterations / measuredSec,
    requests: rec.requests,
    requestsPerSec: rec.requests / measuredSec,
    steps,
    iteration: rec.iteration.summary(),
    errors: { total: rec.errorTotal, byStatus },
    throttled: rec.throttled,
    fatal: run.fatal,
    cpu: {
      relayMs,
      relayTotalMs,
      redisProcMs,
      redisInfoMs,
      generatorMs,
      exitedProcesses: exited,
      relayMsPerOp: ctx.relayPids.length > 0 ? perOp(relayTotalMs) : null,
      relayMsPerRequest: ctx.relayPids.length > 0 && rec.requests > 0 ? relayTotalMs / rec.requests : null,
      redisMsPerOp: perOp(redisProcMs ?? redisInfoMs),
      generatorMsPerOp: perOp(generatorMs),
    },
    ok: run.fatal === null && rec.errorTotal === 0 && rec.throttled === 0 && rec.ops > 0,
  };
  if (scenario.name === 'files') {
    result.uploadMBps = rec.upBytes / 1e6 / measuredSec;
    result.downloadMBps = rec.downBytes / 1e6 / measuredSec;
    const busySec = (name: string): number => {
      const st = steps[name];
      return st === undefined ? 0 : (st.mean * st.count) / 1000;
    };
    result.uploadStreamMBps = rec.upBytes / 1e6 / busySec('uploadFileChunk');
    result.downloadStreamMBps = rec.downBytes / 1e6 / busySec('downloadFileChunk');
  }
  return result;
}

/** The relay throttled the generator (429): the run measures its per-client budgets, not the relay. */
export class ThrottledError extends Error {
  constructor(readonly times: number) {
    super(throttledMessage(times));
    this.name = 'ThrottledError';
  }
}

/**
 * Opens a session on every device (retrying a few times), outside the measurement. A device that
 * cannot because the relay answers 429 fails the whole set-up with a ThrottledError.
 */
export async function connectSessions(ctx: RunContext, devices: Device[]): Promise<void> {
  let throttled = 0;
  const results = await Promise.allSettled(
    devices.map(async (d, i) => {
      const send = sendOf(ctx, i);
      let last = '';
      let lastThrottled = false;
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          for (const step of connectSteps(d)) {
            const req = step.request(d);
            const res = await send(req.path, req.body);
            if (res.status === THROTTLED) throttled++;
            step.check(d, res);
          }
          return;
        } catch (e) {
          last = e instanceof Error ? e.message : String(e);
          lastThrottled = e instanceof CheckFailure && e.status === THROTTLED;
          resetDevice(d);
          await sleep(100);
        }
      }
      if (lastThrottled) throw new ThrottledError(0);
      throw new Error(`could not open a session: ${last}`);
    }),
  );
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
  if (failures.some((e) => e instanceof ThrottledError)) throw new ThrottledError(throttled);
  if (failures.length > 0) throw failures[0];
}

