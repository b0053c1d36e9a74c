/**
 * The store's high-water mark (docs/PROTOCOL.md §7 `storeHighWaterRatio`): while Redis `used_memory`
 * exceeds ratio × `maxmemory`, every write command (upload, startFileUpload, uploadFileChunk) is
 * refused with 503 and Retry-After, so Redis never reaches its hard limit mid-script and reads and
 * deletes keep working. Without a `maxmemory` there is no mark. `INFO memory` is sampled at most
 * once per `sampleMs` of the service clock (concurrent requests share one sample), never per
 * request. The same sample gives the memory figures of the load report and the metrics (`memory`,
 * `lastMemory`).
 */
import { RelayError, systemClock, type Clock } from '@zax/protocol';
import { type Logger, primaries, type RedisClient, storeCall, StoreUnavailableError } from '@zax/service';
import type { StoreObserver } from './store/observer.js';

export interface StoreGuard {
  /** Resolves while writes are allowed; throws RelayError 503 above the mark. */
  assertWritable(): Promise<void>;
  /** Redis memory, sampled at most once per `sampleMs`; throws StoreUnavailableError. */
  memory(): Promise<MemorySample>;
  /** The last sample taken, without I/O; null before the first. */
  lastMemory(): MemorySample | null;
}

export interface StoreGuardOptions {
  readonly ratio: number;
  readonly retryAfterSec: number;
  readonly log: Logger;
  /** @default 1000 */
  readonly sampleMs?: number;
  /** What `sampleMs` is measured on (a clock that went back also takes a new sample). @default systemClock */
  readonly clock?: Clock;
  /** Times the INFO call. */
  readonly observer?: StoreObserver;
}

export interface MemorySample {
  readonly usedBytes: number;
  readonly maxBytes: number;
}

/** `used_memory` and `maxmemory` from an `INFO memory` reply. */
export function parseMemoryInfo(info: string): MemorySample {
  const num = (name: string): number => {
    const m = new RegExp(`^${name}:(\\d+)\\r?$`, 'm').exec(info);
    return m === null ? 0 : Number(m[1]);
  };
  return { usedBytes: num('used_memory'), maxBytes: num('maxmemory') };
}

/**
 * `redis`: on a cluster every primary is sampled: the figures are their sums, and writes are refused
 * while any one of them is above its mark (a write may land on any shard).
 */
export function createStoreGuard(redis: RedisClient, opts: StoreGuardOptions): StoreGuard {
  const sampleMs = opts.sampleMs ?? 1000;
  const clock = opts.clock ?? systemClock;
  let sampledAt = -Infinity;
  let high = false;
  let last: MemorySample | null = null;
  let pending: Promise<void> | null = null;

  async function sample(): Promise<void> {
    const infos = await storeCall('store memory', () => Promise.all(primaries(redis).map((node) => node.info('memory'))), opts.observer);
    const nodes = infos.map(parseMemoryInfo);
    if (nodes.length === 0) throw new StoreUnavailableError('store memory', new Error('no primary connected'));
    const m = { usedBytes: nodes.reduce((a, n) => a + n.usedBytes, 0), maxBytes: nodes.reduce((a, n) => a + n.maxBytes, 0) };
    last = m;
    const nowHigh = nodes.some((n) => n.maxBytes > 0 && n.usedBytes > opts.ratio * n.maxBytes);
    if (nowHigh !== high) {
      const fields = { usedBytes: m.usedBytes, maxBytes: m.maxBytes, ratio: opts.ratio };
      if (nowHigh) opts.log.warn(fields, 'store above its high-water mark: refusing writes');
      else opts.log.info(fields, 'store below its high-water mark again: accepting writes');
    }
    high = nowHigh;
    sampledAt = clock.nowMs();
  }

  async function fresh(): Promise<void> {
    const nowMs = clock.nowMs();
    if (nowMs - sampledAt >= sampleMs || nowMs < sampledAt) {
      pending ??= sample().finally(() => {
        pending = null;
      });
      await pending;
    }
  }

  return {
    async assertWritable() {
      await fresh();
      if (high) throw new RelayError('busy', 'store above its high-water mark', opts.retryAfterSec);
    },
    async memory() {
      await fresh();
      return last!;
    },
    lastMemory: () => last,
  };
}
