/** Latency samples (milliseconds) per step, kept whole and sorted once for exact percentiles. */

export class Samples {
  private buf = new Float64Array(1024);
  private n = 0;

  add(ms: number): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.n++] = ms;
  }

  get count(): number {
    return this.n;
  }

  summary(): LatencySummary {
    const s = this.buf.slice(0, this.n).sort();
    const at = (q: number): number => (s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!);
    let sum = 0;
    for (const v of s) sum += v;
    return {
      count: s.length,
      mean: s.length === 0 ? 0 : sum / s.length,
      p50: at(0.5),
      p95: at(0.95),
      p99: at(0.99),
      max: s.length === 0 ? 0 : s[s.length - 1]!,
    };
  }
}

export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}
