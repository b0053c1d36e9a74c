/**
 * The core process: the only file that reads process.env or opens sockets. Loads the config (a bad
 * one exits 1 with the list of problems), connects to Redis, serves the app, starts the maintenance
 * jobs (BullMQ), logs "listening" with the port, and on SIGTERM/SIGINT stops accepting, drains
 * in-flight requests, stops the job worker (a running job may finish), closes Redis, exits 0.
 * The stop is bounded whatever Redis or the reader of stdout do: connections still open after
 * DRAIN_TIMEOUT_MS are closed, the process exits 0 at STOP_EXIT_MS, and should its main thread be
 * stuck even so, a thread of its own SIGKILLs it at STOP_KILL_MS (`killAfter`).
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
import { bestCrypto, cannotListenMessage, killAfter, systemClock } from '@zax/protocol';
import { createApp } from './app.js';
import { runPrimary, workerLink, type WorkerLink } from './cluster.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { startJobs, type JobHealth } from './jobs.js';
import { createKeys } from './keys.js';
import { createLogger, type Log } from './log.js';
import { createMetrics } from './metrics.js';
import { createRedis, waitReady } from './redis.js';
import { createDurability, describeTopology, replicasProblem } from '@zax/service';
import { createFileStore } from './store/files.js';
import { createCoreServer, loadCoreTls, type CoreTlsOptions } from './tls.js';

/** How long start-up waits for Redis before serving anyway (503 until Redis is ready). */
const REDIS_STARTUP_WAIT_MS = 10_000;
/** Longest drain on shutdown before open connections are cut. */
const DRAIN_TIMEOUT_MS = 10_000;
/** After SIGTERM (or the launcher gone), the process exits 0 by then, however far the stop got. */
const STOP_EXIT_MS = DRAIN_TIMEOUT_MS + 3000;
/** ... and is SIGKILLed by its own watchdog thread by then if its main thread is stuck. */
const STOP_KILL_MS = STOP_EXIT_MS + 2000;

// stderr's reader gone (the launcher killed): a line written there must not crash the stop.
process.stderr.on('error', () => {});

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
  const clustered = config.workers > 1;
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
  if (clustered && cluster.isPrimary) return runPrimary(config, log);
  if (!clustered) return serve(config, tlsOptions, log, null);
  // A worker's lines carry its cluster id and pid (the primary's carry neither).
  const workerLog = 'child' in log && typeof log.child === 'function' ? (log.child({ worker: cluster.worker?.id, pid: process.pid }) as Log) : log;
  return serve(config, tlsOptions, workerLog, workerLink());
}

/** One serving process: the whole core alone, or one cluster worker (`link` to the primary). */
async function serve(config: Config, tlsOptions: CoreTlsOptions | null, log: Log, link: WorkerLink | null): Promise<void> {
  const redis = createRedis(config.redis, { commandTimeoutMs: config.redisCommandTimeoutMs, log });
  const where = describeTopology(config.redis);
  try {
    await waitReady(redis, REDIS_STARTUP_WAIT_MS);
  } catch {
    // A cluster or sentinel group none of whose listed nodes answers is a configuration error (a
    // wrong seed list); a single Redis may just be starting after us: serve 503 until it is up.
    if (config.redis.kind !== 'single') {
      log.error({ store: where }, `cannot reach the core store within ${REDIS_STARTUP_WAIT_MS / 1000} s: check the seed list`);
      process.exit(1);
    }
    log.warn({}, 'redis not ready yet; serving 503 until it is');
  }
  if (config.redisWaitReplicas > 0 && redis.status === 'ready') {
    // Replicas of a store that has just started may still be syncing: look again for a while
    // before calling the store short of replicas.
    let problem: string | null = null;
    for (const deadline = Date.now() + REDIS_STARTUP_WAIT_MS; ; await new Promise((r) => setTimeout(r, 500))) {
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
  const jobs = startJobs({
    redis: config.redis,
    prefix: keys.jobsPrefix,
    files: createFileStore(redis, keys, metrics),
    clock: systemClock,
    log,
    sweepIntervalSec: config.fileSweepIntervalSec,
    load: { store: app.loadStore, timing: app.loadTiming },
    metrics,
  });
  jobHealth = () => jobs.health();
  metrics.jobHealth(jobHealth);
  const server = createCoreServer(tlsOptions, app.handler); // HTTPS when CORE_TLS_* are set (tls.ts)
  // Longer than the gatekeeper's keep-alive idle time, so it never reuses a socket we just closed.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 30_000;
  // A connection with nothing read or written for this long is closed: a peer that stopped reading
  // an answer frees it (and its share of the answer budget, DEVIATION D19). Suspended while bytes
  // still drain; the keep-alive idle time replaces it between requests.
  server.timeout = config.writeTimeoutMs;
  server.on('clientError', (_err, socket) => socket.destroy());
  server.on('error', (err: NodeJS.ErrnoException) => {
    log.error({ code: err.code, port: config.port }, cannotListenMessage(err.code, config.host, config.port, 'CORE_PORT', 'CORE_HOST'));
    process.exit(1);
  });
  const admin = config.adminPort === null ? null : http.createServer(app.adminHandler);
  admin?.on('clientError', (_err, socket) => socket.destroy());
  admin?.on('error', (err: NodeJS.ErrnoException) => {
    log.error({ code: err.code, port: config.adminPort }, cannotListenMessage(err.code, config.host, config.adminPort ?? 0, 'CORE_ADMIN_PORT', 'CORE_HOST'));
    process.exit(1);
  });

  const portOf = (s: http.Server, fallback: number): number => {
    const addr = s.address();
    return typeof addr === 'object' && addr !== null ? addr.port : fallback;
  };
  const listenMain = (): void => {
    server.listen(config.port, config.host, () => {
      if (link !== null) {
        log.info({ port: portOf(server, config.port) }, 'worker listening');
        link.listening(portOf(server, config.port), admin === null ? null : portOf(admin, config.adminPort ?? 0));
        return;
      }
      log.info(
        { port: portOf(server, config.port), host: config.host, metricsOn: admin === null ? 'port' : 'adminPort', loadPeriodSec: config.loadPeriodSec },
        'listening',
      );
    });
  };
  if (admin === null) listenMain();
  else {
    admin.listen(config.adminPort ?? 0, config.host, () => {
      if (link === null) log.info({ adminPort: portOf(admin, config.adminPort ?? 0), host: config.host }, 'admin listening');
      listenMain();
    });
  }

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    killAfter(STOP_KILL_MS);
    // Last resort if stopping the jobs or closing Redis hangs: the drain is over, exit all the same.
    setTimeout(() => process.exit(0), STOP_EXIT_MS).unref();
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      log.warn({}, 'drain timed out; closing connections');
      server.closeAllConnections();
    }, DRAIN_TIMEOUT_MS);
    force.unref();
    const idle = setInterval(() => server.closeIdleConnections(), 200);
    admin?.close();
    admin?.closeAllConnections();
    server.close(() => {
      clearInterval(idle);
      void app
        .close()
        .then(() => jobs.close())
        .then(() => durable.close())
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
  // Started by `pnpm start` with an IPC channel: if the launcher dies, even by SIGKILL, the channel
  // closes and the core drains instead of running on as an orphan. (A cluster worker's channel is
  // to its primary; if that dies, node:cluster ends the worker at once.)
  if (process.connected) process.on('disconnect', () => shutdown(link === null ? 'launcher gone' : 'primary gone'));
}

main().catch((e: unknown) => {
  process.stderr.write(`zax core: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
