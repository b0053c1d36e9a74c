/**
 * Typed wrappers over the difficulty keys in the edge Redis (docs/DESIGN.md "Who owns which state": the
 * current value plus the changes of the last grace window, written by the one replica holding a
 * short lease; the per-period handshake counters every replica adds to). Any Redis failure is
 * thrown as it is: the callers decide (the reader keeps its last value, the controller skips a tick).
 */
import type { EdgeKeys } from './keys.js';
import type { RedisOp } from './metrics.js';
import { timed } from './metrics.js';
import type { EdgeRedis } from './redis.js';

/** One published change: from `atMs` on, `to` replaced `from`. */
export interface DifficultyChange {
  readonly atMs: number;
  readonly from: number;
  readonly to: number;
}

export interface DifficultyState {
  readonly d: number;
  /** Core-pressure boost, in steps (difficulty.ts nextDifficulty). */
  readonly boost: number;
  /** The last period evaluated. */
  readonly period: number;
  /** Changes still inside the grace window when written, oldest first. */
  readonly changes: readonly DifficultyChange[];
}

export interface DifficultyStore {
  read(): Promise<DifficultyState | null>;
  /** Adds `n` calls to a period's counter. */
  addCount(period: number, n: number, keyTtlMs: number): Promise<void>;
  /** The counters of these periods (0 where none). */
  counts(periods: readonly number[]): Promise<number[]>;
  /** Takes or renews the lease; true while `owner` holds it. */
  lease(owner: string, leaseMs: number): Promise<boolean>;
  release(owner: string): Promise<void>;
  /** Publishes `state` unless `owner` lost the lease or `state.period` was already evaluated. */
  write(owner: string, state: DifficultyState, nowMs: number, keyTtlMs: number): Promise<boolean>;
}

export const encodeChanges = (changes: readonly DifficultyChange[]): string => changes.map((c) => `${c.atMs}:${c.from}:${c.to}`).join(',');

export function decodeChanges(s: string): DifficultyChange[] {
  const out: DifficultyChange[] = [];
  if (s === '') return out;
  for (const item of s.split(',')) {
    const [atMs, from, to] = item.split(':').map(Number);
    if (Number.isSafeInteger(atMs) && Number.isInteger(from) && Number.isInteger(to)) out.push({ atMs: atMs!, from: from!, to: to! });
  }
  return out;
}

export function difficultyStore(redis: EdgeRedis, keys: EdgeKeys, observe: (op: RedisOp) => (seconds: number) => void = () => () => {}): DifficultyStore {
  const t = {
    read: observe('difficulty_read'),
    count: observe('difficulty_count'),
    counts: observe('difficulty_counts_read'),
    lease: observe('difficulty_lease'),
    write: observe('difficulty_write'),
  };
  return {
    async read() {
      const [d, boost, period, changes] = await timed(t.read, () => redis.hmget(keys.difficultyState, 'd', 'boost', 'period', 'changes'));
      const dn = Number(d);
      if (d === null || !Number.isInteger(dn)) return null;
      return { d: dn, boost: Number(boost ?? 0) || 0, period: Number(period ?? -1), changes: decodeChanges(changes ?? '') };
    },
    async addCount(period, n, keyTtlMs) {
      await timed(t.count, () => redis.zaxGkDifficultyCount(keys.difficultyCount(period), String(n), String(keyTtlMs)));
    },
    async counts(periods) {
      const raw = await timed(t.counts, () => redis.mget(...periods.map((p) => keys.difficultyCount(p))));
      return raw.map((v) => Number(v ?? 0) || 0);
    },
    async lease(owner, leaseMs) {
      return (await timed(t.lease, () => redis.zaxGkDifficultyLease(keys.difficultyLease, owner, String(leaseMs)))) === 1;
    },
    async release(owner) {
      await timed(t.lease, () => redis.zaxGkDifficultyRelease(keys.difficultyLease, owner));
    },
    async write(owner, s, nowMs, keyTtlMs) {
      const written = await timed(t.write, () =>
        redis.zaxGkDifficultyWrite(
          keys.difficultyLease,
          keys.difficultyState,
          owner,
          String(s.period),
          String(s.d),
          String(s.boost),
          encodeChanges(s.changes),
          String(Math.floor(nowMs)),
          String(keyTtlMs),
        ),
      );
      return written === 1;
    },
  };
}
