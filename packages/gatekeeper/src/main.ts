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
import type https from 'node:https';
import {
  ConfigError,
  TlsPairError,
  createLogger,
  createServer,
  drainOnSignals,
  ignoreStderrErrors,
  listen,
  orExit,
  readCaFile,
  readTlsPair,
  serveTls,
  type TlsPair,
} from '@zax/service';
import { assembleGatekeeper } from './assemble.js';
import { loadConfig, type Config } from './config.js';
import { loadDashboard } from './dashboard.js';
import { createMetrics } from './metrics.js';

ignoreStderrErrors();

const config = orExit('gatekeeper', () => loadConfig(process.env));

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

const { tls, coreCa } = orExit('gatekeeper', () => readFiles(config));
// DASHBOARD=1 without the built page: refuse to start rather than answer 404.
const dashboard = config.dashboard ? orExit('gatekeeper', () => loadDashboard()) : undefined;

const log = createLogger(config.logLevel, { service: 'gatekeeper', logClientIps: config.logClientIps });
const metrics = createMetrics({ collectDefault: true });
const gatekeeper = await assembleGatekeeper(config, log, { metrics, coreCa, dashboard }).catch((err: Error) => {
  log.error({}, err.message);
  process.exit(1);
});
const { app } = gatekeeper;
/**
 * Slow-loris bounds (glow.ts gives up after 5 s anyway): headers within 10 s, a whole request within
 * 30 s, checked every second (Node's default check interval, 30 s, let a request live up to ~60 s).
 * The app's own body watch cuts off a stalled or trickling body (408) long before that.
 */
const server = createServer(tls?.options ?? null, app.handler, { headersTimeout: 10_000, requestTimeout: 30_000, connectionsCheckingInterval: 1000 });
const reloader =
  tls !== null && config.tlsCertFile !== null && config.tlsKeyFile !== null
    ? serveTls({
        server: server as https.Server,
        certFile: config.tlsCertFile,
        keyFile: config.tlsKeyFile,
        pair: tls,
        log,
        watchIntervalMs: config.tlsWatchIntervalMs,
        onLoad: (outcome, info) => metrics.tlsLoad(outcome, info.validToMs),
      })
    : null;
if (config.requireHttps && tls === null && config.trustedProxies.length === 0) {
  log.warn({}, 'REQUIRE_HTTPS without TLS_CERT_FILE or TRUSTED_PROXIES: only loopback clients can use the API');
}
const admin = config.adminPort === null ? null : http.createServer(app.adminHandler);

process.on('unhandledRejection', (reason) => {
  log.error({ errName: reason instanceof Error ? reason.name : typeof reason }, 'unhandled rejection');
});

listen({
  log,
  host: config.host,
  hostVar: 'HOST',
  server,
  main: { port: config.port, portVar: 'PORT' },
  admin: admin === null ? null : { server: admin, spec: { port: config.adminPort ?? 0, portVar: 'ADMIN_PORT' } },
  onListening(port) {
    log.info(
      {
        port,
        host: config.host,
        difficulty: config.difficulty,
        adaptiveDifficulty: config.difficultyPeriodMin > 0,
        tls: tls !== null,
        requireHttps: config.requireHttps,
        coreTls: new URL(config.coreUrl).protocol === 'https:',
        metricsOn: config.adminPort !== null ? 'adminPort' : config.metricsOnPublicPort ? 'port' : 'off',
        dashboard: config.dashboard,
      },
      'listening',
    );
  },
});
// After the drain the difficulty lease is handed over (app.close) and the edge Redis closed.
drainOnSignals({
  log,
  server,
  admin,
  tls: reloader,
  close: () => gatekeeper.close(),
});
