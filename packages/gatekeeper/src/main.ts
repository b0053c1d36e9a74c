/**
 * The gatekeeper process: the only file that reads process.env or opens sockets. Invalid config →
 * a readable list on stderr and exit 1. With ADMIN_PORT, a second server answers /livez, /readyz and
 * /metrics there (and /metrics leaves the public port). SIGTERM/SIGINT: stop accepting, drain
 * in-flight requests (bounded), hand over the difficulty lease, close the edge Redis, exit 0.
 */
import http from 'node:http';
import { randomBytes, systemClock } from '@zax/protocol';
import { createApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createLogger } from './log.js';
import { createMetrics } from './metrics.js';
import { connectRedis } from './redis.js';

/** In-flight requests get this long to finish after SIGTERM; then their sockets are closed. */
const DRAIN_TIMEOUT_MS = 10_000;

let config: Config;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`gatekeeper: ${err.message}\n`);
  process.exit(1);
}

const log = createLogger(config.logLevel, { logClientIps: config.logClientIps });
const redis = connectRedis(config.edgeRedisUrl, { commandTimeoutMs: config.redisCommandTimeoutMs, log });
const metrics = createMetrics({ collectDefault: true });
const app = createApp({ config, redis, clock: systemClock, random: randomBytes, log, metrics });
const server = http.createServer(app.handler);
// Slow-loris bounds: glow.ts gives up after 5 s anyway.
server.headersTimeout = 10_000;
server.requestTimeout = 30_000;
const admin = config.adminPort === null ? null : http.createServer(app.adminHandler);

process.on('unhandledRejection', (reason) => {
  log.error({ errName: reason instanceof Error ? reason.name : typeof reason }, 'unhandled rejection');
});

server.on('error', (err: NodeJS.ErrnoException) => {
  log.fatal({ code: err.code }, 'cannot listen');
  process.exit(1);
});

admin?.on('error', (err: NodeJS.ErrnoException) => {
  log.fatal({ code: err.code }, 'cannot listen on the admin port');
  process.exit(1);
});

const portOf = (s: http.Server, fallback: number): number => {
  const addr = s.address();
  return typeof addr === 'object' && addr !== null ? addr.port : fallback;
};

// The admin port first, so that "listening" means everything is up.
const listenAdmin = (then: () => void): void => {
  if (admin === null) return then();
  admin.listen(config.adminPort ?? 0, config.host, () => {
    log.info({ adminPort: portOf(admin, config.adminPort ?? 0), host: config.host }, 'admin listening');
    then();
  });
};
listenAdmin(() =>
  server.listen(config.port, config.host, () => {
    log.info(
      {
        port: portOf(server, config.port),
        host: config.host,
        difficulty: config.difficulty,
        adaptiveDifficulty: config.difficultyPeriodMin > 0,
        metricsOn: config.adminPort === null ? 'port' : 'adminPort',
      },
      'listening',
    );
  }),
);

let stopping = false;
function shutdown(signal: string): void {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'draining');
  const idle = setInterval(() => server.closeIdleConnections(), 100);
  const force = setTimeout(() => server.closeAllConnections(), DRAIN_TIMEOUT_MS);
  // Last resort if closing Redis hangs: the drain is over, exit all the same.
  setTimeout(() => process.exit(0), DRAIN_TIMEOUT_MS + 3000).unref();
  admin?.close();
  admin?.closeAllConnections();
  server.close(() => {
    clearInterval(idle);
    clearTimeout(force);
    void app
      .close()
      .then(() => redis.quit())
      .catch(() => redis.disconnect())
      .finally(() => {
        log.info('stopped');
        process.exit(0);
      });
  });
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
