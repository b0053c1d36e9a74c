/**
 * The gatekeeper process: the only file that reads process.env or opens sockets. Invalid config →
 * a readable list on stderr and exit 1. With ADMIN_PORT, a second server answers /livez, /readyz and
 * /metrics there; without it /metrics is served nowhere unless METRICS_ON_PUBLIC_PORT=true. SIGTERM/SIGINT: stop accepting, drain
 * in-flight requests (bounded), hand over the difficulty lease, close the edge Redis, exit 0.
 *
 * With TLS_CERT_FILE/TLS_KEY_FILE the public port serves HTTPS (TLS ≥ 1.2), and SIGHUP or a change
 * of either file reloads the pair (a bad new pair is logged and the old one kept). The admin port
 * always stays plain HTTP, so probes never need TLS. An unreadable or unusable pair, or CORE_CA_FILE,
 * at start-up → exit 1 with the reason.
 */
import http from 'node:http';
import https from 'node:https';
import { cannotListenMessage, killAfter, randomBytes, systemClock } from '@zax/protocol';
import { createApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createLogger } from './log.js';
import { createMetrics } from './metrics.js';
import { connectRedis, redisReady } from './redis.js';
import { describeTopology } from '@zax/service';
import { TlsPairError, readCaFile, readTlsPair, tlsReloader, type TlsPair, type TlsReloader } from './tls.js';

/** In-flight requests get this long to finish after SIGTERM; then their sockets are closed. */
const DRAIN_TIMEOUT_MS = 10_000;
/** How long start-up waits for a cluster or sentinel edge store before it gives up. */
const EDGE_STARTUP_WAIT_MS = 10_000;
/** After SIGTERM (or the launcher gone), the process exits 0 by then, however far the stop got. */
const STOP_EXIT_MS = DRAIN_TIMEOUT_MS + 3000;
/** ... and is SIGKILLed by its own watchdog thread by then if its main thread is stuck. */
const STOP_KILL_MS = STOP_EXIT_MS + 2000;

// stderr's reader gone (the launcher killed): a line written there must not crash the stop.
process.stderr.on('error', () => {});

let config: Config;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`gatekeeper: ${err.message}\n`);
  process.exit(1);
}

/** The certificate files, read before anything connects: a bad one stops the process here. */
function readFiles(c: Config): { tls: TlsPair | null; coreCa: Buffer | undefined } {
  const problems: string[] = [];
  const attempt = <T>(f: () => T): T | undefined => {
    try {
      return f();
    } catch (err) {
      if (!(err instanceof TlsPairError)) throw err;
      problems.push(...err.problems);
      return undefined;
    }
  };
  const { tlsCertFile: certFile, tlsKeyFile: keyFile, coreCaFile: caFile } = c;
  const tls = certFile !== null && keyFile !== null ? attempt(() => readTlsPair(certFile, keyFile)) : null;
  const coreCa = caFile !== null ? attempt(() => readCaFile(caFile)) : undefined;
  if (problems.length > 0) throw new ConfigError(problems);
  return { tls: tls ?? null, coreCa };
}

let files: ReturnType<typeof readFiles>;
try {
  files = readFiles(config);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`gatekeeper: ${err.message}\n`);
  process.exit(1);
}
const { tls, coreCa } = files;

const log = createLogger(config.logLevel, { logClientIps: config.logClientIps });
const redis = connectRedis(config.edgeRedis, { commandTimeoutMs: config.redisCommandTimeoutMs, log });
if (config.edgeRedis.kind !== 'single') {
  // A cluster or sentinel group none of whose listed nodes answers is a wrong seed list: stop here.
  // (A single Redis may be starting after us: requests get 503 until it is up.)
  await redisReady(redis, EDGE_STARTUP_WAIT_MS).catch(() => {
    log.error({ store: describeTopology(config.edgeRedis) }, `cannot reach the edge store within ${EDGE_STARTUP_WAIT_MS / 1000} s: check the seed list`);
    process.exit(1);
  });
}
const metrics = createMetrics({ collectDefault: true });
const app = createApp({ config, redis, clock: systemClock, random: randomBytes, log, metrics, ...(coreCa !== undefined ? { coreCa } : {}) });
/**
 * Slow-loris bounds (glow.ts gives up after 5 s anyway): headers within 10 s, a whole request within
 * 30 s, checked every second (Node's default check interval, 30 s, let a request live up to ~60 s).
 * The app's own body watch cuts off a stalled or trickling body (408) long before that.
 */
const timeouts = { headersTimeout: 10_000, requestTimeout: 30_000, connectionsCheckingInterval: 1000 };
const server: http.Server =
  tls === null
    ? http.createServer(timeouts, app.handler)
    : // A TLS handshake gets as long as request headers do (slow-loris bound; Node's default is 120 s).
      https.createServer({ ...tls.options, ...timeouts, handshakeTimeout: 10_000 }, app.handler);

let reloader: TlsReloader | null = null;
if (tls !== null && config.tlsCertFile !== null && config.tlsKeyFile !== null) {
  const httpsServer = server as https.Server;
  metrics.tlsLoad('ok', tls.info.validToMs);
  log.info({ fingerprint256: tls.info.fingerprint256, validTo: new Date(tls.info.validToMs).toISOString() }, 'tls certificate loaded');
  reloader = tlsReloader({
    certFile: config.tlsCertFile,
    keyFile: config.tlsKeyFile,
    initial: tls,
    apply: (options) => httpsServer.setSecureContext(options),
    log,
    onReload: (outcome, info) => metrics.tlsLoad(outcome, info.validToMs),
    watchIntervalMs: config.tlsWatchIntervalMs,
  });
  const r = reloader;
  process.on('SIGHUP', () => r.reload('SIGHUP'));
  // A failed handshake (a scanner, a client without the CA) is the client's problem: no log line each.
  httpsServer.on('tlsClientError', (err: NodeJS.ErrnoException, socket) => {
    log.debug({ code: err.code ?? 'unknown' }, 'tls handshake failed');
    socket.destroy();
  });
}
if (config.requireHttps && tls === null && config.trustedProxies.length === 0) {
  log.warn({}, 'REQUIRE_HTTPS without TLS_CERT_FILE or TRUSTED_PROXIES: only loopback clients can use the API');
}
const admin = config.adminPort === null ? null : http.createServer(app.adminHandler);

process.on('unhandledRejection', (reason) => {
  log.error({ errName: reason instanceof Error ? reason.name : typeof reason }, 'unhandled rejection');
});

server.on('error', (err: NodeJS.ErrnoException) => {
  log.fatal({ code: err.code, port: config.port }, cannotListenMessage(err.code, config.host, config.port, 'PORT', 'HOST'));
  process.exit(1);
});

admin?.on('error', (err: NodeJS.ErrnoException) => {
  log.fatal({ code: err.code, port: config.adminPort }, cannotListenMessage(err.code, config.host, config.adminPort ?? 0, 'ADMIN_PORT', 'HOST'));
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
        tls: tls !== null,
        requireHttps: config.requireHttps,
        coreTls: new URL(config.coreUrl).protocol === 'https:',
        metricsOn: config.adminPort !== null ? 'adminPort' : config.metricsOnPublicPort ? 'port' : 'off',
      },
      'listening',
    );
  }),
);

let stopping = false;
function shutdown(signal: string): void {
  if (stopping) return;
  stopping = true;
  killAfter(STOP_KILL_MS);
  // Last resort if closing Redis hangs: the drain is over, exit all the same.
  setTimeout(() => process.exit(0), STOP_EXIT_MS).unref();
  log.info({ signal }, 'draining');
  reloader?.close();
  const idle = setInterval(() => server.closeIdleConnections(), 100);
  const force = setTimeout(() => server.closeAllConnections(), DRAIN_TIMEOUT_MS);
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
// Started by `pnpm start` with an IPC channel: if the launcher dies, even by SIGKILL, the channel
// closes and the gatekeeper drains instead of running on as an orphan.
if (process.connected) process.on('disconnect', () => shutdown('launcher gone'));
