/**
 * The census (run by the BullMQ job in `jobs.ts`, callable directly in tests): how many mailboxes,
 * live messages and live files the relay holds, for the operators' gauges (metrics.ts). The store
 * keeps no index of its mailboxes (idle ones simply expire), so the census walks the keyspace:
 * an incremental SCAN (`MATCH <prefix>mb:{*}:e2`, never KEYS) on every primary — each node of a
 * Redis Cluster holds its own share of the keys — and, for each batch of mailbox expiry sets it
 * returns, one ZCOUNT per set of the messages whose expiry is still ahead (sent together:
 * auto-pipelined, one round trip per node). A mailbox counts when it holds at least one live
 * message; expired messages that no script has compacted yet count for nothing. Files are the
 * live entries of the 256 bucket registries (FileStore.liveCount).
 *
 * The walk is bounded (`maxScans` SCAN calls over all primaries): past it the census stops and says
 * it is incomplete, and its figures are lower bounds. SCAN may return a key twice when Redis
 * resizes its table during the walk (and a slot migration may hide or repeat keys), so the figures
 * are exact for a keyspace that holds still and close otherwise — what a gauge needs.
 *
 * The result is one JSON string under the relay prefix (keys.ts `census`, in the `{jobs}` slot),
 * written by one SET with a TTL of a few census periods: a census that stops running leaves no
 * figure behind for long, and the gauges then drop to 0 with their timestamp.
 */
import { badReply, primaries, storeCall, StoreUnavailableError, type RedisClient } from '@zax/service';
import type { Keys } from './keys.js';
import type { FileStore } from './store/files.js';
import { parseJsonObject } from './store/load.js';
import { NO_OBSERVER, type StoreObserver } from './store/observer.js';

/** The census record's format version. */
const CENSUS_VERSION = 1;
/** The record outlives its census by this many periods. */
export const CENSUS_TTL_PERIODS = 3;
/** @default period when none is given (CENSUS_INTERVAL_SEC's default). */
const DEFAULT_INTERVAL_MS = 60_000;

export interface CensusFigures {
  /** Mailboxes holding at least one live message. */
  readonly mailboxes: number;
  /** Live messages (file messages included) over every mailbox. */
  readonly messages: number;
  /** Live files (any status) over every file bucket. */
  readonly files: number;
}

export interface Census extends CensusFigures {
  /** The service clock (ms) the figures were counted against: when the census started. */
  readonly atMs: number;
  /** How long the census took (ms). */
  readonly tookMs: number;
  /** False when it stopped at `maxScans`: the figures are then lower bounds. */
  readonly complete: boolean;
}

export interface CensusDeps {
  /** The core's store connection (any topology). */
  readonly redis: RedisClient;
  readonly keys: Keys;
  readonly files: FileStore;
  /** Gets every Redis round trip's duration. */
  readonly observer?: StoreObserver;
}

export interface CensusOptions {
  /** SCAN's COUNT hint: keys a node looks at per call. @default 1000 */
  readonly scanCount?: number;
  /** Most SCAN calls of one census, over every primary. @default 10000 (some 10 million keys looked at) */
  readonly maxScans?: number;
  /** The census period: the record expires CENSUS_TTL_PERIODS of them after it is written. @default 60000 */
  readonly intervalMs?: number;
}

/** Counts mailboxes, messages and files live at `nowMs`; writes nothing. */
export async function takeCensus(deps: CensusDeps, nowMs: number, opts: CensusOptions = {}): Promise<Census> {
  const started = performance.now();
  const { redis, keys } = deps;
  const obs = deps.observer ?? NO_OBSERVER;
  const scanCount = opts.scanCount ?? 1000;
  const maxScans = opts.maxScans ?? 10_000;
  const live = `(${Math.floor(nowMs)}`;
  let scans = 0;
  let complete = true;
  let mailboxes = 0;
  let messages = 0;
  const nodes = primaries(redis);
  // A cluster client that has not loaded its slot map yet knows no primary: that is no census.
  if (nodes.length === 0) throw new StoreUnavailableError('census scan', new Error('no primary known'));
  walk: for (const node of nodes) {
    let cursor = '0';
    do {
      if (scans >= maxScans) {
        complete = false;
        break walk;
      }
      scans++;
      const [next, found] = await storeCall('census scan', () => node.scan(cursor, 'MATCH', keys.mailboxExpMatch, 'COUNT', scanCount), obs);
      cursor = next;
      if (found.length === 0) continue;
      const counts = await storeCall('census count', () => Promise.all(found.map((key) => redis.zcount(key, live, '+inf'))), obs);
      for (const n of counts) {
        if (n > 0) {
          mailboxes++;
          messages += n;
        }
      }
    } while (cursor !== '0');
  }
  const files = await deps.files.liveCount(nowMs);
  return { mailboxes, messages, files, atMs: Math.floor(nowMs), tookMs: Math.round(performance.now() - started), complete };
}

/** Takes a census and stores it (keys.ts `census`) for the gauges; returns it. */
export async function runCensus(deps: CensusDeps, nowMs: number, opts: CensusOptions = {}): Promise<Census> {
  const census = await takeCensus(deps, nowMs, opts);
  const ttlMs = CENSUS_TTL_PERIODS * (opts.intervalMs ?? DEFAULT_INTERVAL_MS);
  const record = JSON.stringify({ v: CENSUS_VERSION, ...census });
  const reply = await storeCall('census write', () => deps.redis.set(deps.keys.census, record, 'PX', Math.ceil(ttlMs)), deps.observer ?? NO_OBSERVER);
  if (reply !== 'OK') throw badReply('census write', reply);
  return census;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Parses a stored record; null for anything malformed or of another version. */
export function parseCensus(text: string): Census | null {
  const r = parseJsonObject(text);
  if (r === null || r.v !== CENSUS_VERSION || typeof r.complete !== 'boolean') return null;
  const { mailboxes, messages, files, atMs, tookMs } = r;
  if (!isCount(mailboxes) || !isCount(messages) || !isCount(files) || !isCount(atMs) || !isCount(tookMs)) return null;
  return { mailboxes, messages, files, atMs, tookMs, complete: r.complete };
}

/** The last census stored, or null (none yet, or it expired). */
export async function readCensus(redis: RedisClient, keys: Keys, obs: StoreObserver = NO_OBSERVER): Promise<Census | null> {
  const text = await storeCall('census read', () => redis.get(keys.census), obs);
  return text === null ? null : parseCensus(text);
}
