/** @zax/gatekeeper: the public edge tier of the relay (docs/DESIGN.md). main.ts runs it as a process. */
export { createApp, type App, type AppDeps } from './app.js';
export { createGatekeeper, type Gatekeeper } from './mount.js';
export { loadConfig, ConfigError, type Config } from './config.js';
export { connectRedis, redisReady, type EdgeRedis, type ConnectRedisOptions } from './redis.js';
export { staticDifficulty, ruleDifficulty, nextDifficulty, type DifficultyProvider, type DifficultyPolicy } from './difficulty.js';
export { adaptiveDifficulty, type AdaptiveDifficulty, type DifficultyController } from './difficulty-adaptive.js';
export { createMetrics, METRIC_PREFIX, type GatekeeperMetrics } from './metrics.js';
export { clientIdentity, type ClientIdentity } from './client-ip.js';
export { createThrottle, type Throttle } from './throttle.js';
export { edgeKeys, type EdgeKeys } from './keys.js';
export { handshakeStore, KEY_TTL_MARGIN_MS, type HandshakeStore, type HandshakeRecord } from './handshake/store.js';
export { createLogger, short, type Logger } from '@zax/service';
export { transportOf, type Transport, type TransportOf, type TransportRequest } from './transport.js';
