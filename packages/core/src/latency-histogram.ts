/**
 * Request durations of one replica over one load period, for its p99 (src/load.ts): a fixed
 * histogram with 8 logarithmic buckets per doubling from 1/16 ms to 2^20 ms (~17 min). Recording is
 * one `Math.log2` and one array increment, nothing allocated; a quantile walks the 194 buckets and
 * is the upper bound of the bucket it falls in (at most 9 % above the true value, never above the
 * largest duration recorded).
 */

const PER_DOUBLING = 8;
const MIN_EXP = -4;
const MAX_EXP = 20;
/** Bucket 0 holds everything ≤ 2^MIN_EXP ms; the last one everything above 2^MAX_EXP ms. */
const BUCKETS = (MAX_EXP - MIN_EXP) * PER_DOUBLING + 2;

/** Upper bound (ms) of bucket `i`. */
const upperMs = (i: number): number => 2 ** (i / PER_DOUBLING + MIN_EXP);

export class LatencyHistogram {
  private readonly counts = new Uint32Array(BUCKETS);
  private n = 0;
  private maxMs = 0;

  /** Records one duration (ms); negative or non-finite values count as 0. */
  record(ms: number): void {
    let i = 0;
    if (ms > 2 ** MIN_EXP) i = Math.min(BUCKETS - 1, Math.ceil((Math.log2(ms) - MIN_EXP) * PER_DOUBLING));
    this.counts[i]!++;
    this.n++;
    if (ms > this.maxMs) this.maxMs = ms;
  }

  get count(): number {
    return this.n;
  }

  /** The q-quantile (0 < q ≤ 1) in ms; 0 without recordings. */
  quantile(q: number): number {
    if (this.n === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      // The last bucket has no upper bound: the largest recording is the best bound there is.
      if (seen >= rank) return i === BUCKETS - 1 ? this.maxMs : Math.min(upperMs(i), this.maxMs);
    }
    return this.maxMs;
  }

  reset(): void {
    this.counts.fill(0);
    this.n = 0;
    this.maxMs = 0;
  }
}
