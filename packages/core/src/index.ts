/** @zax/core: the core service of the Zax relay (sessions, mailboxes, files, nonce cache, jobs). */
export { createApp, type App, type AppDeps } from './app.js';
export { loadConfig, ConfigError, type Config, type Env } from './config.js';
export { connectRedis, createRedis, waitReady, loadLua, type CoreRedis, type RedisOptions, type ScriptName } from './redis.js';
export { createKeys, KEY_TTL_MARGIN_MS, COMPACT_LIMIT, type Keys, type MailboxKeys, type HandshakeKeys, type FileKeys, type FileRegistryKeys } from './keys.js';
export { createLogger, short, type Logger } from '@zax/service';
export { createStores, createFileStore, StoreUnavailableError, storageToken, renderItem, type Stores, type FileStore } from './store/index.js';
export { uploadId, storageId, storageName } from './file-ids.js';
export { createFileSeed, type FileSeed } from './file-seed.js';
export { createStoreGuard, parseMemoryInfo, type StoreGuard } from './store-guard.js';
export { sweepFiles, type SweepOptions, type SweepResult } from './file-sweep.js';
export { takeCensus, runCensus, readCensus, parseCensus, CENSUS_TTL_PERIODS, type Census, type CensusDeps, type CensusFigures, type CensusOptions } from './census.js';
export { startJobs, JOBS_QUEUE, FILE_SWEEP_JOB, LOAD_AGGREGATE_JOB, CENSUS_JOB, type JobHealth, type Jobs, type JobsDeps } from './jobs.js';
export { createMetrics, METRIC_PREFIX, type CoreMetrics, type MetricsOptions } from './metrics.js';
export { ROUTE_LABELS, type RouteLabel } from './routes.js';
export {
  aggregatePeriod,
  createLoadMeter,
  lastSettledPeriod,
  loadReport,
  loadTiming,
  periodOf,
  REPLICA_TTL_MS,
  type LoadMeter,
  type LoadTiming,
  type LocalLoad,
} from './load.js';
export { createLoadStore, type LoadStore, type PeriodLoad, type ReplicaFigures, type ReplicaRecord } from './store/load.js';
export { NO_OBSERVER, type StoreObserver, type MessageChange, type FileChange } from './store/observer.js';
export { LatencyHistogram } from './latency-histogram.js';
export { COMMAND_HANDLERS, type CommandContext, type CommandHandler, type CommandResult } from './commands/index.js';
