/**
 * Small measuring pieces shared by the abuse and reliability scripts: sleeping, a process's RSS from
 * /proc, status tallies, and a legitimate client whose latency is sampled while something else goes
 * on. They print figures; nothing here decides pass or fail on timing.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Samples } from './stats.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** VmRSS of `pid` in KiB (NaN once the process is gone). */
export function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? NaN : Number(m[1]);
  } catch {
    return NaN;
  }
}

/** VmRSS of `pid` in MiB, rounded. */
export const rssMiB = (pid: number): number => Math.round(rssKb(pid) / 1024);

/** Samples a process's RSS every `everyMs` until stopped; reports the peak in MiB. */
export function rssPeak(pid: number, everyMs = 100): { stop(): number } {
  let peak = rssKb(pid);
  const t = setInterval(() => {
    const v = rssKb(pid);
    if (v > peak) peak = v;
  }, everyMs);
  return {
    stop() {
      clearInterval(t);
      return Math.round(peak / 1024);
    },
  };
}

/** p-th percentile (nearest rank) of unsorted samples, NaN when empty. */
export function pct(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** Counts of statuses (or any label): `200×12 503×3`. */
export class Tally {
  readonly counts = new Map<string, number>();
  add(k: string | number, n = 1): void {
    const key = String(k);
    this.counts.set(key, (this.counts.get(key) ?? 0) + n);
  }
  get total(): number {
    let n = 0;
    for (const v of this.counts.values()) n += v;
    return n;
  }
  /** Keys that are a 5xx status other than 503 (the relay's only overload answer). */
  unexpected5xx(): string[] {
    return [...this.counts.keys()].filter((k) => /^5\d\d$/.test(k) && k !== '503');
  }
  toString(): string {
    return (
      [...this.counts.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `${k}×${v}`)
        .join(' ') || '—'
    );
  }
}

/** The HTTP status of a failure thrown by @zax/client (RelayHttpError has `status`), else `error`. */
export const statusOf = (e: unknown): string => String((e as { status?: unknown }).status ?? 'error');

/**
 * Runs `op` in a loop (one at a time, `gapMs` apart) until `stop()` is called; each success adds its
 * latency, each failure its status.
 */
export function latencyLoop(op: () => Promise<unknown>, gapMs = 20): { stop(): Promise<{ ms: Samples; statuses: Tally }> } {
  const ms = new Samples();
  const statuses = new Tally();
  let done = false;
  const loop = (async () => {
    while (!done) {
      const t = performance.now();
      try {
        await op();
        ms.add(performance.now() - t);
        statuses.add(200);
      } catch (e) {
        statuses.add(statusOf(e));
      }
      await sleep(gapMs);
    }
  })();
  return {
    async stop() {
      done = true;
      await loop;
      return { ms, statuses };
    },
  };
}

/** `p50 9.1 ms, p95 14.0 ms (n=120)` */
export function fmtLatency(ms: Samples): string {
  const s = ms.summary();
  return `p50 ${s.p50.toFixed(1)} ms, p95 ${s.p95.toFixed(1)} ms (n=${s.count})`;
}
