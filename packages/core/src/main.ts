/**
 * The core process: the only file that reads process.env or opens sockets. Loads the config (a bad
 * one exits 1 with the list of problems), connects to Redis, serves the app, starts the maintenance
 * jobs (BullMQ), logs "listening" with the port, and on SIGTERM/SIGINT stops accepting, drains
 * in-flight requests, stops the job worker (a running job may finish), closes Redis, exits 0.
 */
import { bestCrypto, systemClock } from '@zax/protocol';
import { createApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { startJobs } from './jobs.js';
import { createKeys } from './keys.js';
import { createLogger } from './log.js';
import { createRedis, waitReady } from './redis.js';
import { createFileStore } from './store/files.js';
import { createCoreServer, loadCoreTls, type CoreTlsOptions } from './tls.js';

/** How long start-up waits for Redis before serving anyway (503 until Redis is ready). */
const REDIS_STARTUP_WAIT_MS = 10_000;
/** Longest drain on shutdown before open connections are cut. */
const DRAIN_TIMEOUT_MS = 10_000;

function readConfig(): Config {
  try {
    return loadConfig(process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`zax core: ${e.message}\n`);
      process.exit(1);
    }
    throw e;
  }
}

async function main(): Promise<void> {
  const config = readConfig();
  // --- TLS on the core link (tls.ts): read before anything connects; a bad pair exits 1 like bad config ---
  let tlsOptions: CoreTlsOptions | null = null;
  try {
    tlsOptions = loadCoreTls(config);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`zax core: ${e.message}\n`);
    process.exit(1);
  }
  // --- end TLS ---
  const log = createLogger(config.logLevel);
  const redis = createRedis(config.redisUrl, { commandTimeoutMs: config.redisCommandTimeoutMs, log });
  try {
    await waitReady(redis, REDIS_STARTUP_WAIT_MS);
  } catch {
    log.warn({}, 'redis not ready yet; serving 503 until it is');
  }

  const crypto = bestCrypto();
  log.info({ crypto: crypto.name }, 'crypto backend');
  const app = createApp({ config, redis, clock: systemClock, crypto, log });
  const keys = createKeys(config.redisPrefix);
  const jobs = startJobs({
    redisUrl: config.redisUrl,
    prefix: keys.jobsPrefix,
    files: createFileStore(redis, keys),
    clock: systemClock,
    log,
    sweepIntervalSec: config.fileSweepIntervalSec,
  });
  const server = createCoreServer(tlsOptions, app.handler); // HTTPS when CORE_TLS_* are set (tls.ts)
  // Longer than the gatekeeper's keep-alive idle time, so it never reuses a socket we just closed.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 30_000;
  server.on('clientError', (_err, socket) => socket.destroy());

  server.listen(config.port, config.host, () => {
    const addr = server.address();
    log.info({ port: typeof addr === 'object' && addr !== null ? addr.port : config.port, host: config.host }, 'listening');
  });

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      log.warn({}, 'drain timed out; closing connections');
      server.closeAllConnections();
    }, DRAIN_TIMEOUT_MS);
    force.unref();
    const idle = setInterval(() => server.closeIdleConnections(), 200);
    server.close(() => {
      clearInterval(idle);
      void app
        .close()
        .then(() => jobs.close())
        .then(() => redis.quit())
        .catch(() => redis.disconnect())
        .finally(() => {
          log.info({}, 'stopped');
          process.exit(0);
        });
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((e: unknown) => {
  process.stderr.write(`zax core: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
