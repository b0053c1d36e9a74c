/**
 * Where the proof-of-work difficulty comes from (docs/PROTOCOL.md §3.4), and the adaptive policy as pure
 * functions. `current` is what /start_session announces; `accepted` is every difficulty whose
 * answers /verify_session accepts now (DEVIATION D10: during the grace window after a change, the
 * old and the new one). The static provider never changes; the adaptive one (difficulty-adaptive.ts)
 * reads what the leader replica published in the edge Redis.
 */
import { MAX_DIFFICULTY, type LoadReport } from '@zax/protocol';

export interface DifficultyProvider {
  current(nowMs: number): Promise<number>;
  /**
   * Non-empty; includes `current(nowMs)`. `fresh`: the caller found no accepted difficulty that
   * fits and asks once more with a value read from the source after this call (a cache, however
   * young, or a read already under way may predate a change another replica already announces).
   */
  accepted(nowMs: number, fresh?: boolean): Promise<readonly number[]>;
  /** The difficulty last announced, without I/O (for the metrics gauge). */
  last?(): number;
  /** Called after each successful /start_session or /verify_session (the adaptive rule counts them). */
  recordHandshake?(nowMs: number): void;
}

export function staticDifficulty(difficulty: number): DifficultyProvider {
  const accepted = Object.freeze([difficulty]);
  return {
    current: () => Promise.resolve(difficulty),
    accepted: () => Promise.resolve(accepted),
    last: () => difficulty,
  };
}

/** The settings of docs/PROTOCOL.md §3.4's adaptive rule and of the core-pressure extension. */
export interface DifficultyPolicy {
  /** `difficulty`: the base value, used whenever the load is at or below the threshold. */
  readonly base: number;
  /** `difficultyMinRequests` */
  readonly minRequests: number;
  /** `difficultyOverloadFactor` f > 1 */
  readonly factor: number;
  /** `difficultyStep` */
  readonly step: number;
  /** DIFFICULTY_MAX: nothing the controller sets is higher. */
  readonly max: number;
  /** Core p99 latency (ms) above which the difficulty is pushed up. */
  readonly latencyP99Ms: number;
  /** Core event-loop utilisation (0..1) above which the difficulty is pushed up. */
  readonly eventLoopUtilization: number;
  /** Core Redis used/maxmemory above which the difficulty is pushed up. */
  readonly memoryRatio: number;
  /** The push is taken back only while every signal is below its threshold × this (hysteresis). */
  readonly releaseRatio: number;
}

/** `load = C₁ + ⌊C₂/2⌋ + ⌊C₃/3⌋`, Cₖ = successful handshake calls k periods ago. */
export function periodLoad(c1: number, c2: number, c3: number): number {
  return c1 + Math.floor(c2 / 2) + Math.floor(c3 / 3);
}

/**
 * docs/PROTOCOL.md §3.4: above `minRequests`, `base + ⌊step · log_f(⌊load/min⌋) + 0.5⌋`, capped at 255;
 * otherwise `base`. (Example: base 4, min 10, f 2, step 3: load 20 → 7, 40 → 10, 9 → 4.)
 */
export function ruleDifficulty(load: number, p: Pick<DifficultyPolicy, 'base' | 'minRequests' | 'factor' | 'step'>): number {
  if (!(load > p.minRequests)) return p.base;
  const ratio = Math.floor(load / p.minRequests);
  const d = p.base + Math.floor((p.step * Math.log(ratio)) / Math.log(p.factor) + 0.5);
  return Math.min(d, MAX_DIFFICULTY);
}

/** How the core's figures stand against the thresholds. */
export type Pressure = 'over' | 'hold' | 'under' | 'unknown';

/** Core Redis used/maxmemory; 0 when no limit is configured (nothing to run out of). */
export const memoryRatio = (r: LoadReport): number => (r.redisMaxMemoryBytes > 0 ? r.redisUsedMemoryBytes / r.redisMaxMemoryBytes : 0);

/**
 * `over` when any signal crosses its threshold; `under` when all are below threshold × releaseRatio;
 * `hold` in between; `unknown` without a report (core unreachable, or not serving /internal/load).
 */
export function corePressure(report: LoadReport | null, p: DifficultyPolicy): Pressure {
  if (report === null) return 'unknown';
  const signals: [number, number][] = [
    [report.latencyP99Ms, p.latencyP99Ms],
    [report.eventLoopUtilization, p.eventLoopUtilization],
    [memoryRatio(report), p.memoryRatio],
  ];
  if (signals.some(([v, t]) => v > t)) return 'over';
  if (signals.every(([v, t]) => v <= t * p.releaseRatio)) return 'under';
  return 'hold';
}

export interface DifficultyStep {
  readonly d: number;
  /** Core-pressure boost, in whole steps on top of the rule. */
  readonly boost: number;
  readonly load: number;
  readonly rule: number;
  readonly pressure: Pressure;
}

/** A whole number of difficulty bits per step of boost and per period of lowering (≥ 1). */
const wholeStep = (p: Pick<DifficultyPolicy, 'step'>): number => Math.max(1, Math.round(p.step));

/**
 * One period boundary. The rule of §3.4 gives the target; while the core reports pressure over a
 * threshold the boost grows by one step per period (and shrinks by one per period once the core is
 * comfortably below every threshold; an unreachable core leaves it where it is). The result is
 * clamped to [base, max]. Raising is immediate; lowering is hysteretic: at most one step per
 * period, and never while the core is over a threshold.
 */
export function nextDifficulty(
  prev: { readonly d: number; readonly boost: number },
  counts: readonly [number, number, number],
  report: LoadReport | null,
  p: DifficultyPolicy,
): DifficultyStep {
  const load = periodLoad(counts[0], counts[1], counts[2]);
  const rule = ruleDifficulty(load, p);
  const pressure = corePressure(report, p);
  const step = wholeStep(p);
  const maxBoost = Math.ceil(Math.max(0, p.max - p.base) / step);
  let boost = prev.boost;
  if (pressure === 'over') boost = Math.min(maxBoost, boost + 1);
  else if (pressure === 'under') boost = Math.max(0, boost - 1);
  const target = Math.max(p.base, Math.min(p.max, rule + boost * step));
  let d: number;
  if (target >= prev.d) d = target;
  else if (pressure === 'over') d = prev.d;
  else d = Math.max(target, prev.d - step);
  d = Math.max(p.base, Math.min(p.max, d));
  return { d, boost, load, rule, pressure };
}
