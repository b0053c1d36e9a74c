/**
 * Typed wrappers over the difficulty keys in the edge Redis (docs/DESIGN.md "Who owns which state": the
 * current value plus the changes of the last grace window, written by the one replica holding a
 * short lease; the per-period handshake counters every replica adds to). Any Redis failure is
 * thrown as a StoreUnavailableError naming the operation: the callers decide (the reader keeps its
 * last value, the controller skips a tick).
 */
import { sinkObserver, storeCall, type LatencySink } from '@zax/service';
import type { EdgeKeys } from './keys.js';
import type { RedisOp } from './metrics.js';
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

export function difficultyStore(redis: EdgeRedis, keys: EdgeKeys, observe: (op: RedisOp) => LatencySink = () => () => {}): DifficultyStore {
  const t = sinkObserver(observe);
  return {
    async read() {
      const [d, boost, period, changes] = await storeCall('difficulty_read', () => redis.hmget(keys.difficultyState, 'd', 'boost', 'period', 'changes'), t);
      const dn = Number(d);
      if (d === null || !Number.isInteger(dn)) return null;
      return { d: dn, boost: Number(boost ?? 0) || 0, period: Number(period ?? -1), changes: decodeChanges(changes ?? '') };
    },
    async addCount(period, n, keyTtlMs) {
      await storeCall('difficulty_count', () => redis.zaxGkDifficultyCount(keys.difficultyCount(period), String(n), String(keyTtlMs)), t);
    },
    async counts(periods) {
      const raw = await storeCall('difficulty_counts_read', () => redis.mget(...periods.map((p) => keys.difficultyCount(p))), t);
      return raw.map((v) => Number(v ?? 0) || 0);
    },
    async lease(owner, leaseMs) {
      return (await storeCall('difficulty_lease', () => redis.zaxGkDifficultyLease(keys.difficultyLease, owner, String(leaseMs)), t)) === 1;
    },
    async release(owner) {
      await storeCall('difficulty_lease', () => redis.zaxGkDifficultyRelease(keys.difficultyLease, owner), t);
    },
    async write(owner, s, nowMs, keyTtlMs) {
      const written = await storeCall('difficulty_write', () =>
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
        t,
      );
      return written === 1;
    },
  };
}
