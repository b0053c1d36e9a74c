/**
 * The core process: the only file that reads process.env or opens sockets. Loads the config (a bad
 * one exits 1 with the list of problems), connects to Redis, serves the app, starts the maintenance
 * jobs (BullMQ), logs "listening" with the port, and on SIGTERM/SIGINT stops accepting, drains
 * in-flight requests, stops the job worker (a running job may finish), closes Redis, exits 0
 * (the listening and the bounded stop are @zax/service serve.ts).
 * With CORE_TLS_CERT_FILE + CORE_TLS_KEY_FILE, CORE_PORT serves HTTPS (TLS ≥ 1.2): the gatekeeper
 * reaches it with an `https://` CORE_URL, trusting the CA in its CORE_CA_FILE, and the shared
 * secret stays required on top (TLS hides it on the wire and authenticates the core to the
 * gatekeeper; the secret authenticates the gatekeeper to the core). The pair is read once at
 * start-up (rotate by restarting the core replicas one by one); an unusable pair exits 1.
 * With CORE_ADMIN_PORT, a second plain-HTTP server on CORE_HOST answers /livez, /readyz and
 * /metrics (which then leaves CORE_PORT); it listens first, so "listening" means both are up.
 *
 * With CORE_WORKERS > 1 this process becomes a node:cluster primary (cluster.ts) that forks that
 * many workers running this same file; each worker does all of the above except the "listening"
 * line, which the primary logs once every worker listens (workers log "worker listening"). With
 * CORE_WORKERS = 1 there is no primary: this process serves, exactly as without the setting.
 */
import cluster from 'node:cluster';
import http from 'node:http';
import { systemClock } from '@zax/protocol';
import {
  bestCrypto,
  createDurability,
  createLogger,
  createServer,
  describeTopology,
  drainOnSignals,
  ignoreStderrErrors,
  listen,
  orExit,
  readTlsPair,
  replicasProblem,
  type Logger,
  type TlsPair,
} from '@zax/service';
import { createApp } from './app.js';
import { runPrimary, workerLink, type WorkerLink } from './cluster.js';
import { loadConfig, type Config } from './config.js';
import { startJobs, type JobHealth } from './jobs.js';
import { createKeys } from './keys.js';
import { createMetrics } from './metrics.js';
import { createRedis, waitReady } from './redis.js';
import { createFileStore } from './store/files.js';

/** The core's TLS variables, for the problems of an unusable pair. */
const CORE_TLS_VARS = { cert: 'CORE_TLS_CERT_FILE', key: 'CORE_TLS_KEY_FILE' };

ignoreStderrErrors();

async function main(): Promise<void> {
  const config = orExit('zax core', () => loadConfig(process.env));
  const clustered = config.workers > 1;
  // Read before anything connects: a bad pair exits 1 like bad config.
  const { tlsCertFile: certFile, tlsKeyFile: keyFile } = config;
  const tls = certFile !== null && keyFile !== null ? orExit('zax core', () => readTlsPair(certFile, keyFile, { vars: CORE_TLS_VARS })) : null;
  const log = createLogger(config.logLevel, { service: 'core', shortened: ['hpk'] });
  if (clustered && cluster.isPrimary) return runPrimary(config, log);
  if (!clustered) return serve(config, tls, log, null);
  // A worker's lines carry its cluster id and pid (the primary's carry neither).
  return serve(config, tls, log.child({ worker: cluster.worker?.id, pid: process.pid }), workerLink());
}

/** One serving process: the whole core alone, or one cluster worker (`link` to the primary). */
async function serve(config: Config, tls: TlsPair | null, log: Logger, link: WorkerLink | null): Promise<void> {
  const redis = createRedis(config.redis, { commandTimeoutMs: config.redisCommandTimeoutMs, log });
  const where = describeTopology(config.redis);
  const startupWaitMs = config.redisStartupWaitSec * 1000;
  try {
    await waitReady(redis, startupWaitMs);
  } catch {
    // A cluster or sentinel group none of whose listed nodes answers is a configuration error (a
    // wrong seed list); a single Redis may just be starting after us: serve 503 until it is up.
    if (config.redis.kind !== 'single') {
      log.error({ store: where }, `cannot reach the core store within ${config.redisStartupWaitSec} s (REDIS_STARTUP_WAIT_SEC): check the seed list`);
      process.exit(1);
    }
    log.warn({}, 'redis not ready yet; serving 503 until it is');
  }
  if (config.redisWaitReplicas > 0 && redis.status === 'ready') {
    // Replicas of a store that has just started may still be syncing: look again for a while
    // before calling the store short of replicas.
    let problem: string | null = null;
    for (const deadline = Date.now() + startupWaitMs; ; await new Promise((r) => setTimeout(r, 500))) {
      problem = await replicasProblem(redis, config.redisWaitReplicas, 'core store').catch((e: unknown) => `core store: ${String(e)}`);
      if (problem === null || Date.now() > deadline) break;
    }
    if (problem !== null) {
      log.error({ store: where }, `${problem}: every write would fail; add replicas or lower REDIS_WAIT_REPLICAS`);
      process.exit(1);
    }
  }

  const crypto = bestCrypto();
  log.info({ crypto: crypto.name }, 'crypto backend');
  const metrics = createMetrics({ collectDefault: true, ...(link !== null ? { exposition: link.exposition } : {}) });
  // The jobs start after the app (they use its load store); /readyz reads their health once they run.
  let jobHealth: () => readonly JobHealth[] = () => [];
  const durable = createDurability(redis, {
    replicas: config.redisWaitReplicas,
    timeoutMs: config.redisWaitTimeoutMs,
    // Its own connection: a WAIT blocks the connection it is sent on, and writes may sit behind one.
    duplicate: () =>
      createRedis(config.redis, { commandTimeoutMs: config.redisCommandTimeoutMs + config.redisWaitTimeoutMs, log, connectionName: 'zax-core-writer' }),
    onWait: (outcome, seconds) => metrics.replicationWait(outcome, seconds),
  });
  const app = createApp({ config, redis, durable, clock: systemClock, crypto, log, metrics, jobHealth: () => jobHealth() });
  if (link !== null) {
    // The primary aggregates every worker's registry; each refreshes the deployment's load gauges.
    metrics.loadSource(() => app.loadReport());
    link.serveMetrics(metrics.registry);
  }
  const keys = createKeys(config.redisPrefix);
  const files = createFileStore(redis, keys, metrics);
  metrics.storeHighWater(config.storeHighWaterRatio);
  metrics.fileBytesSource(() => files.totalBytes());
  const jobs = startJobs({
    redis: config.redis,
    prefix: keys.jobsPrefix,
    files,
    clock: systemClock,
    log,
    sweepIntervalSec: config.fileSweepIntervalSec,
    load: { store: app.loadStore, timing: app.loadTiming },
    census: { redis, keys, intervalSec: config.censusIntervalSec },
    metrics,
  });
  jobHealth = () => jobs.health();
  metrics.jobHealth(jobHealth);
  // Only the gatekeeper connects, over keep-alive: a TLS handshake that takes 10 s is not one.
  const server = createServer(tls?.options ?? null, app.handler);
  // Longer than the gatekeeper's keep-alive idle time, so it never reuses a socket we just closed.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 30_000;
  // A connection with nothing read or written for this long is closed: a peer that stopped reading
  // an answer frees it (and its share of the answer budget, DEVIATION D19). Suspended while bytes
  // still drain; the keep-alive idle time replaces it between requests.
  server.timeout = config.writeTimeoutMs;
  server.on('clientError', (_err, socket) => socket.destroy());
  const admin = config.adminPort === null ? null : http.createServer(app.adminHandler);

  listen({
    log,
    host: config.host,
    hostVar: 'CORE_HOST',
    server,
    main: { port: config.port, portVar: 'CORE_PORT' },
    admin: admin === null ? null : { server: admin, spec: { port: config.adminPort ?? 0, portVar: 'CORE_ADMIN_PORT' } },
    logAdmin: link === null,
    onListening(port, adminPort) {
      if (link !== null) {
        log.info({ port }, 'worker listening');
        link.listening(port, adminPort);
        return;
      }
      log.info({ port, host: config.host, metricsOn: admin === null ? 'port' : 'adminPort', loadPeriodSec: config.loadPeriodSec }, 'listening');
    },
  });
  // (A cluster worker's IPC channel is to its primary; if that dies, node:cluster ends the worker at once.)
  drainOnSignals({
    log,
    server,
    admin,
    parentGone: link === null ? 'launcher gone' : 'primary gone',
    close: () =>
      app
        .close()
        .then(() => jobs.close())
        .then(() => durable.close())
        .then(() => redis.quit())
        .then(
          () => undefined,
          () => redis.disconnect(),
        ),
  });
}

main().catch((e: unknown) => {
  process.stderr.write(`zax core: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
