/** The per-period latency histogram behind each replica's p99 (latency-histogram.ts). */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LatencyHistogram } from '../src/latency-histogram.js';

/** The exact q-quantile (nearest rank). */
const exact = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.max(1, Math.ceil(q * xs.length)) - 1]!;

describe('LatencyHistogram', () => {
  it('is 0 when empty and after reset', () => {
    const h = new LatencyHistogram();
    expect(h.quantile(0.99)).toBe(0);
    h.record(12);
    expect(h.quantile(0.99)).toBe(12);
    h.reset();
    expect(h.count).toBe(0);
    expect(h.quantile(0.99)).toBe(0);
  });

  it('gives the p99 of 1..1000 ms within one bucket (≤ 9 % high, never low)', () => {
    const h = new LatencyHistogram();
    for (let ms = 1; ms <= 1000; ms++) h.record(ms);
    const p99 = h.quantile(0.99);
    expect(p99).toBeGreaterThanOrEqual(990);
    expect(p99).toBeLessThanOrEqual(990 * 1.091);
    expect(h.quantile(1)).toBe(1000);
  });

  it('never reports less than the exact quantile, at most 9 % more, and never more than the maximum', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0.07, max: 600_000, noNaN: true }), { minLength: 1, maxLength: 300 }), fc.constantFrom(0.5, 0.9, 0.99), (xs, q) => {
        const h = new LatencyHistogram();
        for (const x of xs) h.record(x);
        const want = exact(xs, q);
        const got = h.quantile(q);
        expect(got).toBeGreaterThanOrEqual(want * (1 - 1e-12));
        expect(got).toBeLessThanOrEqual(Math.min(want * 1.0906, Math.max(...xs)));
      }),
    );
  });

  it('clamps odd inputs into the end buckets', () => {
    const h = new LatencyHistogram();
    h.record(-5);
    h.record(Number.NaN);
    h.record(0);
    expect(h.quantile(1)).toBe(0);
    h.record(1e12);
    expect(h.quantile(1)).toBe(1e12);
  });
});
