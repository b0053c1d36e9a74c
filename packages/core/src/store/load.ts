/**
 * Typed wrappers over the load measurement's keys (keys.ts `load`, all `{load}`): the per-period
 * counters every replica adds to and the replicas' short-lived figures (one script, load-flush.lua),
 * the reads that aggregate one period, and the summary the load job writes (load-summary.lua).
 * Failures are StoreUnavailableErrors like every other store call; the callers decide (the meter
 * keeps its counts for the next round, the route answers 503).
 */
import { INTERNAL_API_VERSION, parseLoadReport, type LoadReport } from '@zax/protocol';
import type { Keys } from '../keys.js';
import type { CoreRedis } from '../redis.js';
import { badReply, storeCall } from '@zax/service';
import { NO_OBSERVER, type StoreObserver } from './observer.js';

/** One replica's figures over (part of) one period. */
export interface ReplicaFigures {
  readonly period: number;
  /** 0..1 */
  readonly eventLoopUtilization: number;
  /** 0 without requests. */
  readonly latencyP99Ms: number;
  /** Requests timed. */
  readonly requests: number;
}

/** What a replica publishes: the period in progress so far, and the last one it finished. */
export interface ReplicaRecord {
  readonly replicaId: string;
  /** Absolute (service clock); readers ignore the record from then on. */
  readonly expiresAtMs: number;
  readonly current: ReplicaFigures;
  readonly last: ReplicaFigures | null;
}

/** Counts of one period to add. */
export interface PeriodCounts {
  readonly period: number;
  readonly mints: number;
  readonly commands: number;
}

/** The load of one finished period without the Redis memory figures (added when served). */
export type PeriodLoad = Omit<LoadReport, 'redisUsedMemoryBytes' | 'redisMaxMemoryBytes'> & {
  /** floor(periodStartMs / period length) */
  readonly period: number;
};

export interface LoadStore {
  /** Adds counts and (unless null) publishes the replica's record, in one round trip. */
  flush(nowMs: number, counts: readonly PeriodCounts[], counterTtlMs: number, record: ReplicaRecord | null, marginMs: number): Promise<void>;
  /** The counters of one period (0 where none). */
  counts(period: number): Promise<{ mints: number; commands: number }>;
  /** Records of the replicas whose expiry is after `nowMs`. */
  liveReplicas(nowMs: number): Promise<ReplicaRecord[]>;
  /** The last summary the load job wrote, or null. */
  readSummary(): Promise<PeriodLoad | null>;
  /** Writes a summary unless one of this period or a later one is stored; true if written. */
  writeSummary(s: PeriodLoad, ttlMs: number): Promise<boolean>;
}

type FiguresTuple = [number, number, number, number];
const tuple = (f: ReplicaFigures): FiguresTuple => [f.period, f.eventLoopUtilization, f.latencyP99Ms, f.requests];

/** A stored JSON record as an object, or null when it is not JSON or not an object. */
export function parseJsonObject(text: string): Record<string, unknown> | null {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return null;
  }
  return typeof o === 'object' && o !== null && !Array.isArray(o) ? (o as Record<string, unknown>) : null;
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

function figuresOf(v: unknown): ReplicaFigures | null {
  if (!Array.isArray(v) || v.length !== 4 || !Number.isSafeInteger(v[0]) || !isNum(v[1]) || !isNum(v[2]) || !isNum(v[3])) return null;
  return { period: v[0] as number, eventLoopUtilization: Math.min(1, v[1]), latencyP99Ms: v[2], requests: v[3] };
}

/** Parses a record; null for anything malformed (a record is only ever a hint, never trusted blindly). */
export function parseReplicaRecord(text: string): ReplicaRecord | null {
  const r = parseJsonObject(text);
  if (r === null) return null;
  const current = figuresOf(r.cur);
  const last = r.last === null ? null : figuresOf(r.last);
  if (typeof r.id !== 'string' || !isNum(r.exp) || current === null || (r.last !== null && last === null)) return null;
  return { replicaId: r.id, expiresAtMs: r.exp, current, last };
}

export const encodeReplicaRecord = (r: ReplicaRecord): string =>
  JSON.stringify({ id: r.replicaId, exp: r.expiresAtMs, cur: tuple(r.current), last: r.last === null ? null : tuple(r.last) });

export function createLoadStore(redis: CoreRedis, keys: Keys, obs: StoreObserver = NO_OBSERVER): LoadStore {
  const k = keys.load;
  return {
    async flush(nowMs, counts, counterTtlMs, record, marginMs) {
      const args: (string | number)[] = [
        2 + counts.length,
        k.replica(record?.replicaId ?? '-'),
        k.replicas,
        ...counts.map((c) => k.counts(c.period)),
        Math.floor(nowMs),
        Math.ceil(counterTtlMs),
        record?.replicaId ?? '',
        record === null ? '' : encodeReplicaRecord(record),
        record === null ? 0 : Math.floor(record.expiresAtMs),
        Math.ceil(marginMs),
      ];
      for (const c of counts) args.push(c.mints, c.commands);
      const reply = await storeCall('load flush', () => redis.zaxLoadFlush(...args), obs);
      if (reply !== 1) throw badReply('load flush', reply);
    },

    async counts(period) {
      const [mints, commands] = await storeCall('load read', () => redis.hmget(k.counts(period), 'mints', 'commands'), obs);
      return { mints: Number(mints ?? 0) || 0, commands: Number(commands ?? 0) || 0 };
    },

    async liveReplicas(nowMs) {
      const ids = await storeCall('load read', () => redis.zrangebyscore(k.replicas, `(${Math.floor(nowMs)}`, '+inf'), obs);
      if (ids.length === 0) return [];
      const texts = await storeCall('load read', () => redis.mget(...ids.map((id) => k.replica(id))), obs);
      const out: ReplicaRecord[] = [];
      for (const t of texts) {
        const r = t === null ? null : parseReplicaRecord(t);
        if (r !== null && r.expiresAtMs > nowMs) out.push(r);
      }
      return out;
    },

    async readSummary() {
      const [period, report] = await storeCall('load summary', () => redis.hmget(k.summary, 'period', 'report'), obs);
      if (period == null || report == null) return null;
      let parsed: LoadReport | null = null;
      try {
        parsed = parseLoadReport({ ...(JSON.parse(report) as object), redisUsedMemoryBytes: 0, redisMaxMemoryBytes: 0 });
      } catch {
        parsed = null;
      }
      const p = Number(period);
      if (parsed === null || !Number.isSafeInteger(p)) return null;
      const { redisUsedMemoryBytes: _u, redisMaxMemoryBytes: _m, ...rest } = parsed;
      return { ...rest, period: p };
    },

    async writeSummary(s, ttlMs) {
      const { period, ...report } = s;
      const body: Omit<PeriodLoad, 'period'> = { ...report, v: INTERNAL_API_VERSION };
      const reply = await storeCall('load summary', () => redis.zaxLoadSummary(k.summary, period, JSON.stringify(body), Math.ceil(ttlMs)), obs);
      if (reply !== 0 && reply !== 1) throw badReply('load summary', reply);
      return reply === 1;
    },
  };
}
