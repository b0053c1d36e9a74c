/** @zax/core: the core service of the Zax relay (sessions, mailboxes, nonce cache). */
export { createApp, type App, type AppDeps } from './app.js';
export { loadConfig, ConfigError, LOG_LEVELS, type Config, type Env, type LogLevel } from './config.js';
export { connectRedis, createRedis, waitReady, loadLua, type CoreRedis, type RedisOptions, type ScriptName } from './redis.js';
export { createKeys, KEY_TTL_MARGIN_MS, COMPACT_LIMIT, type Keys, type MailboxKeys, type HandshakeKeys } from './keys.js';
export { createLogger, short, type Log } from './log.js';
export { createStores, StoreUnavailableError, storageToken, renderItem, type Stores } from './store/index.js';
export { COMMAND_HANDLERS, type CommandContext, type CommandHandler, type CommandResult } from './commands/index.js';
