/**
 * The adaptive policy as pure functions (docs/PROTOCOL.md §3.4 "Adaptive difficulty", plus the core-load
 * extension and hysteresis of difficulty.ts), and the `GET /internal/load` schema (@zax/protocol).
 */
import { describe, expect, it } from 'vitest';
import { parseLoadReport, type LoadReport } from '@zax/protocol';
import { corePressure, nextDifficulty, periodLoad, ruleDifficulty, type DifficultyPolicy } from '../src/difficulty.js';

const EXAMPLE = { base: 4, minRequests: 10, factor: 2, step: 3 };
const POLICY: DifficultyPolicy = {
  ...EXAMPLE,
  max: 20,
  latencyP99Ms: 1000,
  eventLoopUtilization: 0.85,
  memoryRatio: 0.8,
  releaseRatio: 0.75,
};

const report = (over: Partial<LoadReport> = {}): LoadReport => ({
  v: 1,
  periodStartMs: 1_700_000_000_000,
  periodEndMs: 1_700_000_060_000,
  replicas: 2,
  mints: 100,
  commands: 1000,
  eventLoopUtilization: 0.1,
  latencyP99Ms: 20,
  redisUsedMemoryBytes: 100,
  redisMaxMemoryBytes: 1000,
  ...over,
});

describe('§3.4 rule', () => {
  it('reproduces the PROTOCOL example: base 4, min 10, f 2, step 3: load 20 → 7, 40 → 10, 9 → 4', () => {
    expect(ruleDifficulty(20, EXAMPLE)).toBe(7);
    expect(ruleDifficulty(40, EXAMPLE)).toBe(10);
    expect(ruleDifficulty(9, EXAMPLE)).toBe(4);
  });

  it('stays at the base up to and including min; floors load/min; rounds half up; caps at 255', () => {
    expect(ruleDifficulty(10, EXAMPLE)).toBe(4);
    expect(ruleDifficulty(29, EXAMPLE)).toBe(7); // ⌊29/10⌋ = 2
    expect(ruleDifficulty(30, EXAMPLE)).toBe(9); // 3·log2(3) = 4.75 → ⌊5.25⌋ = 5
    expect(ruleDifficulty(0, EXAMPLE)).toBe(4);
    expect(ruleDifficulty(1e300, { base: 200, minRequests: 1, factor: 1.01, step: 100 })).toBe(255);
  });

  it('load = C1 + ⌊C2/2⌋ + ⌊C3/3⌋', () => {
    expect(periodLoad(10, 7, 8)).toBe(10 + 3 + 2);
    expect(periodLoad(0, 0, 0)).toBe(0);
  });
});

describe('core pressure', () => {
  it('is over when any signal crosses its threshold, under when all are below threshold × releaseRatio, hold between', () => {
    expect(corePressure(report(), POLICY)).toBe('under');
    expect(corePressure(report({ latencyP99Ms: 1001 }), POLICY)).toBe('over');
    expect(corePressure(report({ eventLoopUtilization: 0.9 }), POLICY)).toBe('over');
    expect(corePressure(report({ redisUsedMemoryBytes: 810 }), POLICY)).toBe('over');
    expect(corePressure(report({ latencyP99Ms: 900 }), POLICY)).toBe('hold');
    expect(corePressure(report({ redisUsedMemoryBytes: 700 }), POLICY)).toBe('hold');
    expect(corePressure(null, POLICY)).toBe('unknown');
  });

  it('reads a Redis without maxmemory as no memory pressure', () => {
    expect(corePressure(report({ redisUsedMemoryBytes: 10 ** 12, redisMaxMemoryBytes: 0 }), POLICY)).toBe('under');
  });
});

describe('nextDifficulty (raise at once, lower with hysteresis)', () => {
  const quiet = [0, 0, 0] as const;

  it('raises straight to the rule value', () => {
    expect(nextDifficulty({ d: 4, boost: 0 }, [40, 0, 0], null, POLICY)).toMatchObject({ d: 10, load: 40, rule: 10, boost: 0 });
  });

  it('lowers at most one step per period, down to the base', () => {
    let s = { d: 10, boost: 0 };
    const seen: number[] = [];
    for (let i = 0; i < 4; i++) seen.push((s = nextDifficulty(s, quiet, report(), POLICY)).d);
    expect(seen).toEqual([7, 4, 4, 4]);
  });

  it('follows the rule down as C2 and C3 age out, one step at a time', () => {
    let s = nextDifficulty({ d: 4, boost: 0 }, [80, 0, 0], null, POLICY); // 4 + 3·3 = 13
    expect(s.d).toBe(13);
    s = nextDifficulty(s, [0, 80, 0], null, POLICY); // load 40 → 10: one step
    expect(s.d).toBe(10);
    s = nextDifficulty(s, [0, 0, 80], null, POLICY); // load 26 → 7
    expect(s.d).toBe(7);
    s = nextDifficulty(s, quiet, null, POLICY);
    expect(s.d).toBe(4);
  });

  it('pushes up one step per period while the core is over a threshold, and never lowers then', () => {
    let s = { d: 4, boost: 0 };
    const hot = report({ latencyP99Ms: 2500 });
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) seen.push((s = nextDifficulty(s, quiet, hot, POLICY)).d);
    expect(seen).toEqual([7, 10, 13]);
    // over a threshold with the rule asking for less: held
    expect(nextDifficulty({ d: 13, boost: 0 }, quiet, hot, POLICY).d).toBe(13);
  });

  it('keeps the boost in the hysteresis band, releases it below threshold × releaseRatio', () => {
    const band = report({ eventLoopUtilization: 0.7 });
    const s = nextDifficulty({ d: 10, boost: 2 }, quiet, band, POLICY);
    expect(s).toMatchObject({ d: 10, boost: 2, pressure: 'hold' });
    const r = nextDifficulty(s, quiet, report(), POLICY);
    expect(r).toMatchObject({ d: 7, boost: 1, pressure: 'under' });
  });

  it('leaves the boost where it is when the core cannot be reached, and applies the count rule', () => {
    const s = nextDifficulty({ d: 10, boost: 2 }, quiet, null, POLICY);
    expect(s).toMatchObject({ d: 10, boost: 2, pressure: 'unknown' });
    expect(nextDifficulty({ d: 4, boost: 0 }, [40, 0, 0], null, POLICY).d).toBe(10);
  });

  it('clamps to DIFFICULTY_MAX and never goes below the base', () => {
    expect(nextDifficulty({ d: 4, boost: 0 }, [1e9, 0, 0], null, POLICY).d).toBe(20);
    const hot = report({ latencyP99Ms: 5000 });
    let s = { d: 4, boost: 0 };
    for (let i = 0; i < 20; i++) s = nextDifficulty(s, [1e9, 0, 0], hot, POLICY);
    expect(s.d).toBe(20);
    expect(s.boost).toBe(Math.ceil(16 / 3)); // bounded, so relief comes within a few periods
    expect(nextDifficulty({ d: 25, boost: 0 }, quiet, report(), POLICY).d).toBe(20);
    expect(nextDifficulty({ d: 0, boost: 0 }, quiet, report(), POLICY).d).toBe(4);
  });

  it('uses whole steps for a fractional DIFFICULTY_STEP', () => {
    const p = { ...POLICY, step: 0.4, base: 0 };
    expect(nextDifficulty({ d: 5, boost: 0 }, quiet, null, p).d).toBe(4);
  });
});

describe('parseLoadReport (GET /internal/load, v1)', () => {
  it('accepts a complete report and returns exactly its fields', () => {
    const r = report();
    expect(parseLoadReport(JSON.parse(JSON.stringify({ ...r, extra: 1 })))).toEqual(r);
  });

  it.each([
    ['another version', { v: 2 }],
    ['a missing field', { latencyP99Ms: undefined }],
    ['a negative count', { mints: -1 }],
    ['a fractional count', { commands: 1.5 }],
    ['utilisation above 1', { eventLoopUtilization: 1.2 }],
    ['a string number', { latencyP99Ms: '20' }],
    ['a period ending before it starts', { periodEndMs: 1 }],
    ['NaN', { latencyP99Ms: Number.NaN }],
  ])('refuses %s', (_name, over) => {
    expect(parseLoadReport({ ...report(), ...over })).toBeNull();
  });

  it('refuses non-objects', () => {
    for (const v of [null, [], 'x', 1]) expect(parseLoadReport(v)).toBeNull();
  });
});
