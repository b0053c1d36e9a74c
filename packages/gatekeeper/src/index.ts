/** @zax/gatekeeper: the public edge tier of the relay (DESIGN.md). main.ts runs it as a process. */
export { createApp, type App, type AppDeps } from './app.js';
export { loadConfig, ConfigError, type Config, type LogLevel } from './config.js';
export { connectRedis, redisReady, type EdgeRedis, type ConnectRedisOptions } from './redis.js';
export { staticDifficulty, type DifficultyProvider } from './difficulty.js';
export { edgeKeys, type EdgeKeys } from './keys.js';
export { handshakeStore, KEY_TTL_MARGIN_MS, type HandshakeStore, type HandshakeRecord } from './handshake/store.js';
export { createLogger, short, type Logger } from './log.js';
export { AGENT_IDLE_TIMEOUT_MS } from './core-client.js';
