/**
 * The core's request context, built once per app from its dependencies: the stores, the load meter,
 * the answer budgets, metrics, the accepted internal secrets and the error path. Route handlers and
 * the secret guard receive it; nothing here is per request.
 */
import { hash, timingSafeEqual } from 'node:crypto';
import type { Clock, Crypto } from '@zax/protocol';
import { errorPath, type Durability, type ErrorPath, type Logger } from '@zax/service';
import type { CommandDeps } from './command.js';
import { createResponseGate, type ResponseGate } from './commands/download-gate.js';
import type { Config } from './config.js';
import { createFileSeed } from './file-seed.js';
import type { MintDeps } from './internal-sessions.js';
import { createKeys } from './keys.js';
import { createLoadMeter, loadTiming, type LoadMeter, type LoadReporterDeps, type LoadTiming } from './load.js';
import type { CoreMetrics } from './metrics.js';
import type { ProveDeps } from './prove.js';
import type { CoreRedis } from './redis.js';
import { createStoreGuard } from './store-guard.js';
import { createStores } from './store/index.js';
import { createLoadStore, type LoadStore } from './store/load.js';

export interface CoreDeps {
  readonly config: Config;
  readonly redis: CoreRedis;
  readonly clock: Clock;
  readonly crypto: Crypto;
  readonly log: Logger;
  readonly metrics: CoreMetrics;
  readonly replicaId?: string;
  readonly durable?: Durability<CoreRedis>;
  readonly jobHealth?: () => readonly { readonly job: string; readonly stale: boolean }[];
}

export interface Core {
  readonly config: Config;
  readonly redis: CoreRedis;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: CoreMetrics;
  /** This replica's load meter (its background loop runs from createApp to close). */
  readonly meter: LoadMeter;
  readonly loadStore: LoadStore;
  readonly timing: LoadTiming;
  /** What /internal/load and the load gauges are computed from. */
  readonly report: LoadReporterDeps;
  /** The answer bytes and downloads in flight (DEVIATION D19). */
  readonly answers: ResponseGate;
  readonly mint: MintDeps;
  readonly prove: ProveDeps;
  readonly command: CommandDeps;
  readonly jobHealth: () => readonly { readonly job: string; readonly stale: boolean }[];
  /** The one error path: writes the refusal and returns its status. */
  readonly fail: ErrorPath;
  /** Whether a request carries an accepted internal secret (constant time). */
  secretOk(header: string | string[] | undefined): boolean;
}

/** One-shot SHA-256 (no Hash object per request). */
const digest = (s: string): Buffer => hash('sha256', s, 'buffer');

export function createCore(deps: CoreDeps): Core {
  const { config, redis, clock, crypto, log, metrics } = deps;
  const keys = createKeys(config.redisPrefix);
  const stores = createStores(redis, keys, config, metrics, deps.durable);
  const fileSeed = createFileSeed({ configured: config.fileSeed, redis, key: keys.fileSeed, randomBytes: crypto.randomBytes });
  const storeGuard = createStoreGuard(redis, { ratio: config.storeHighWaterRatio, retryAfterSec: config.busyRetryAfterSec, log, observer: metrics, clock });
  const timing = loadTiming(config.loadPeriodSec);
  const loadStore = createLoadStore(redis, keys, metrics);
  const meter = createLoadMeter({ store: loadStore, clock, timing, log, ...(deps.replicaId !== undefined ? { replicaId: deps.replicaId } : {}) });
  const secretDigests = [config.internalSecret, config.internalSecretPrevious].filter((s): s is string => s !== null).map(digest);
  return {
    config,
    redis,
    clock,
    log,
    metrics,
    meter,
    loadStore,
    timing,
    report: { store: loadStore, timing, clock, memory: () => storeGuard.memory() },
    answers: createResponseGate({
      perHpk: config.maxDownloadsPerHpk,
      budgetBytes: config.maxResponseBytesInFlight,
      busyRetryAfterSec: config.busyRetryAfterSec,
      perHpkBytesPerSec: config.downloadBytesPerHpkPerSec,
    }),
    mint: { stores, crypto, clock, log },
    prove: { config, stores, crypto, clock, log },
    command: { config, stores, crypto, clock, log, fileSeed, storeGuard },
    jobHealth: deps.jobHealth ?? (() => []),
    fail: errorPath({
      retryAfterSec: config.busyRetryAfterSec,
      unexpected: 'internal',
      log,
    }),
    secretOk(header) {
      if (typeof header !== 'string') return false;
      const got = digest(header);
      let ok = false;
      for (const d of secretDigests) ok = timingSafeEqual(got, d) || ok;
      return ok;
    },
  };
}
