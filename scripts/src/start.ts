/**
 * `pnpm start`: the whole relay on one machine. Starts a private memory-only redis-server when no
 * store is configured (REDIS_URL, REDIS_CLUSTER_NODES and REDIS_SENTINELS unset), with a
 * `maxmemory` (REDIS_MAXMEMORY, default 512mb) and `noeviction`, so the core's store high-water mark
 * applies, then the core, waits for its /readyz, then the gatekeeper,
 * waits for its /readyz, and prints the URL clients use. `pnpm start` runs this through
 * scripts/start.js (which builds first) as pnpm's direct child, so what pnpm forwards reaches this
 * process.
 *
 * Supervision, once the relay is ready: a core, gatekeeper or private redis-server that exits on
 * its own (a crash, a SIGKILL, the OOM killer) is started again, on the same port and with the same
 * environment, after a backoff of 0.5 s doubling up to 30 s; one line on stderr says what died, how
 * (exit code or signal) and when it comes back. The backoff starts over once a process has been
 * ready for STABLE_MS. After MAX_FAILURES failures in a row (about 2.5 minutes of a crash loop) the
 * launcher gives up: it stops the rest as below and exits 1. The private Redis keeps running while
 * the core or the gatekeeper is restarted, so the mail survives them. If the private redis-server
 * itself dies, its data is gone anyway: it is started again, empty, on the same port, and the core
 * and the gatekeeper reconnect to it on their own. Before the relay has been ready once, a child that
 * dies still stops everything with exit 1 (a port in use, a bad setting: nothing to retry).
 *
 * How it stops, however it is stopped:
 * - SIGINT, SIGTERM or SIGHUP (to this process, or to pnpm, which forwards them), or the parent
 *   going away (pnpm killed: the parent pid changes; polled every PARENT_POLL_MS): pending restarts
 *   are dropped, then the gatekeeper, the core, then Redis, each by SIGTERM and waited for (SIGKILL
 *   to its process group, its own children included, after STOP_TIMEOUT_MS); exit 0.
 * - This process killed outright (SIGKILL, a crash): the core and the gatekeeper hold an IPC
 *   channel to it and drain and exit when it closes. redis-server has no such hook, so it gets a
 *   watchdog: a tiny `sh` that reads a pipe whose write end is held by this launcher, the core and
 *   the gatekeeper (passed to them as fd 4, which they never touch, restarted ones included; the
 *   core's cluster workers do not get it, but the core waits for them before it exits). The launcher
 *   writes the pid of each redis-server it starts to that pipe, and `0` in the same tick that its
 *   exit is reaped here, so the watchdog never holds a pid that may be recycled. When the last
 *   holder of the write end is gone the read sees end-of-file and the watchdog SIGKILLs the last
 *   redis-server it was told of, so Redis outlives the services' drain but nothing outlives the
 *   services. One watchdog serves every redis-server of the run: the services keep the same fd 4
 *   when Redis is restarted.
 *   SIGKILL because every client is gone and the instance is memory-only: there is nothing to save
 *   and it cannot be refused. (The other option, making redis die with its parent via
 *   PR_SET_PDEATHSIG, is Linux-only and would stop Redis before the services finish draining.)
 *
 * Children run in their own process groups, so a terminal's Ctrl-C reaches only pnpm and this
 * launcher, and the stop order holds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Writable } from 'node:stream';
import {
  freePort,
  httpOk,
  NotReadyError,
  RedisServer,
  spawnNodeService,
  TIER_MAIN,
  unbuiltTier,
  type ManagedProcess,
  type ManagedProcessOptions,
  type Tier,
} from '@zax/service';

const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
const PARENT_POLL_MS = 250;
/** Restart backoff: the first delay, doubled after each failure in a row, up to the cap. */
const RESTART_FIRST_MS = 500;
const RESTART_CAP_MS = 30_000;
/** A process ready for this long ends a run of failures: the next restart waits RESTART_FIRST_MS again. */
const STABLE_MS = 60_000;
/** Failures in a row of one service (none of its processes ready for STABLE_MS) before giving up. */
const MAX_FAILURES = 10;
/** The private Redis's `maxmemory` when REDIS_MAXMEMORY is unset, and the least it may be. */
const DEFAULT_REDIS_MAXMEMORY = '512mb';
const MIN_REDIS_MAXMEMORY = 16 * 1024 * 1024;

/**
 * Reads redis-server pids, one a line, keeping the last; at end-of-file SIGKILLs it (header). `0`
 * means "none now".
 */
const REDIS_WATCHDOG = 'pid=0; while read -r p; do pid=$p; done; [ "$pid" -gt 0 ] 2>/dev/null && kill -KILL "$pid" 2>/dev/null';

type ServiceName = 'redis' | 'core' | 'gatekeeper';

interface Child {
  readonly name: ServiceName;
  readonly process: ManagedProcess;
  /** Port from the child's `"msg":"listening"` log line, once seen. */
  listeningPort: number | null;
  /** The last error or fatal log line's message, to name the reason if it dies while starting. */
  lastError: string | null;
  /** When it was last seen ready (PING or /readyz), or null. */
  readyAt: number | null;
}

/** One supervised service: how to start a process of it and how to tell it is ready. */
interface Service {
  readonly name: ServiceName;
  /** Set once the relay is ready: from then on a process that dies is started again. */
  spawn: (() => Promise<Child>) | null;
  ready: ((child: Child) => Promise<boolean>) | null;
  current: Child | null;
  /** Failures in a row (see STABLE_MS). */
  failures: number;
  restartTimer: NodeJS.Timeout | null;
}

const services: Record<ServiceName, Service> = {
  redis: { name: 'redis', spawn: null, ready: null, current: null, failures: 0, restartTimer: null },
  core: { name: 'core', spawn: null, ready: null, current: null, failures: 0, restartTimer: null },
  gatekeeper: { name: 'gatekeeper', spawn: null, ready: null, current: null, failures: 0, restartTimer: null },
};
/** Stop order: the reverse of the start order. */
const STOP_ORDER: readonly ServiceName[] = ['gatekeeper', 'core', 'redis'];

let stopping: Promise<never> | null = null;
/** True once the relay has been ready: children that die from then on are restarted. */
let supervising = false;
/** The Redis watchdog (header), and its stdin: the write end the services also hold (fd 4). */
let watchdog: ChildProcess | null = null;
let watchdogPipe: Writable | null = null;
/** Every process started, with what this launcher knows of it. */
const children = new WeakMap<ManagedProcess, Child>();

// A reader of our output that goes away (a closed terminal, a killed `| tee`) must not crash the
// launcher and leave the stop to the watchdogs: the lines are dropped instead.
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});

const say = (msg: string): void => {
  process.stdout.write(`[launcher] ${msg}\n`);
};

const warn = (msg: string): void => {
  process.stderr.write(`[launcher] ${msg}\n`);
};

function fail(msg: string): never {
  warn(msg);
  process.exit(1);
}

/** Host part of a URL for a listening address: wildcard addresses are reached on loopback. */
function urlHost(host: string): string {
  if (host === '' || host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** "0.5 s", "2 s", "30 s". */
const seconds = (ms: number): string => `${ms / 1000} s`;

/** Passes a line of a child's output through, prefixed with its name; watches for "listening" and errors. */
function passLine(child: Child, line: string, stream: 'stdout' | 'stderr'): void {
  if (stream === 'stderr') {
    process.stderr.write(`[${child.name}] ${line}\n`);
    return;
  }
  process.stdout.write(`[${child.name}] ${line}\n`);
  if (!line.startsWith('{')) return;
  try {
    const rec = JSON.parse(line) as { level?: unknown; msg?: unknown; port?: unknown };
    if (child.listeningPort === null && rec.msg === 'listening' && Number.isInteger(Number(rec.port))) child.listeningPort = Number(rec.port);
    if (typeof rec.level === 'number' && rec.level >= 50 && typeof rec.msg === 'string') child.lastError = rec.msg;
  } catch {
    // not JSON: ignore
  }
}

/**
 * How every process of `name` runs: in its own process group, its output passed through, and
 * watched from its first tick: recorded as the service's current process, its pid told to the
 * watchdog (Redis), and its exit, once its last lines are read, stopping the relay or restarting it.
 */
function supervised(name: ServiceName): Pick<ManagedProcessOptions, 'detached' | 'onLine' | 'onSpawn'> {
  return {
    detached: true,
    onLine: (line, stream, from) => passLine(children.get(from)!, line, stream),
    onSpawn: (p) => {
      const child: Child = { name, process: p, listeningPort: null, lastError: null, readyAt: null };
      children.set(p, child);
      services[name].current = child;
      say(`started ${name} (pid ${p.pid})`);
      if (name === 'redis') tellWatchdog(p.pid);
      p.proc.once('exit', (code, signal) => {
        if (name === 'redis') tellWatchdog(0); // same tick as the reap: never a recycled pid
        if (stopping !== null) return;
        // Its last lines first, so that the message can give its last error (e.g. a port in use).
        void p.ended.then(() => {
          if (stopping !== null) return;
          const how = signal !== null ? `signal ${signal}` : `code ${code}`;
          const why = child.lastError !== null ? `: ${child.lastError}` : '';
          if (!supervising) {
            warn(`${name} exited unexpectedly (${how})${why}; stopping the relay`);
            void stopAll(1);
            return;
          }
          scheduleRestart(services[name], `${name} (pid ${p.pid}) exited unexpectedly (${how})${why}`, child.readyAt);
        });
      });
    },
  };
}

/** Runs `start` unless the relay is stopping; resolves with the child it started, rejects with the spawn error (e.g. ENOENT). */
async function launch(name: ServiceName, start: () => Promise<ManagedProcess>): Promise<Child> {
  if (stopping !== null) throw new Error(`not starting ${name}: stopping`);
  return children.get(await start())!;
}

/**
 * Starts a core or a gatekeeper. Node children get an IPC channel (fd 3): it closes when this
 * launcher dies, however it dies, and they drain and exit on that. They also hold the Redis
 * watchdog's pipe (fd 4; header).
 */
function launchTier(tier: Tier, env: NodeJS.ProcessEnv): Promise<Child> {
  return launch(tier, () => spawnNodeService(TIER_MAIN[tier], { name: tier, env, extraStdio: ['ipc', ...(watchdogPipe !== null ? [watchdogPipe] : [])], ...supervised(tier) }));
}

/**
 * After a process of `svc` died on its own (or could not be started): starts another after the
 * backoff, or gives up (header). `what` happened; `readyAt`: when that process was ready, if it was.
 */
function scheduleRestart(svc: Service, what: string, readyAt: number | null): void {
  if (readyAt !== null && Date.now() - readyAt >= STABLE_MS) svc.failures = 0;
  svc.failures += 1;
  const lost = svc.name === 'redis' ? ' (its data is gone: every mailbox, session and file of this run)' : '';
  if (svc.failures >= MAX_FAILURES) {
    warn(`${what}${lost}; ${svc.failures} failures in a row: giving up, stopping the relay`);
    void stopAll(1);
    return;
  }
  const delay = Math.min(RESTART_FIRST_MS * 2 ** (svc.failures - 1), RESTART_CAP_MS);
  warn(`${what}${lost}; restarting it in ${seconds(delay)} (failure ${svc.failures} in a row; gives up at ${MAX_FAILURES})`);
  svc.restartTimer = setTimeout(() => {
    svc.restartTimer = null;
    void restart(svc);
  }, delay);
}

/** Starts `svc` again and notes when it is ready; a start that fails counts as a failure. */
async function restart(svc: Service): Promise<void> {
  if (stopping !== null || svc.spawn === null || svc.ready === null) return;
  let child: Child;
  try {
    child = await svc.spawn();
  } catch (err) {
    if (stopping !== null) return;
    scheduleRestart(svc, `${svc.name} could not be started (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, null);
    return;
  }
  const ready = svc.ready;
  // No deadline: a core waiting for its Redis becomes ready when Redis does. Ends when it exits.
  while (!child.process.exited && stopping === null) {
    if (await ready(child)) {
      if (child.process.exited || stopping !== null) return;
      child.readyAt = Date.now();
      say(`${svc.name} is ready again (pid ${child.process.pid})`);
      return;
    }
    await sleep(100);
  }
}

/** Starts the single watchdog of the private redis-servers (header), before the first of them. */
function startWatchdog(): void {
  const w = spawn('/bin/sh', ['-c', REDIS_WATCHDOG, 'zax-redis-watchdog'], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
  w.on('error', (err) => {
    warn(`could not start the redis-server watchdog (${err.message}); if this launcher is killed, stop redis-server yourself`);
  });
  w.stdin.on('error', () => {}); // a watchdog gone: nothing to tell
  watchdog = w;
  watchdogPipe = w.stdin;
}

/** Tells the watchdog which redis-server to kill at end-of-file (0: none). */
function tellWatchdog(pid: number): void {
  if (watchdogPipe !== null && !watchdogPipe.destroyed) watchdogPipe.write(`${pid}\n`);
}

/** Waits (READY_TIMEOUT_MS at most) until `check` holds; notes when it did. */
async function waitUntil(what: string, child: Child, check: () => Promise<boolean>): Promise<void> {
  try {
    await child.process.waitReady(what, check, READY_TIMEOUT_MS, 100);
  } catch (err) {
    if (!(err instanceof NotReadyError)) throw err;
    if (err.exit !== null) throw new Error(`${child.name} exited before it was ready${child.lastError !== null ? `: ${child.lastError}` : ''}`);
    throw new Error(`${what} was not ready within ${READY_TIMEOUT_MS / 1000} s`);
  }
  child.readyAt = Date.now();
}

/** Waits for GET /readyz = 200 on the port the child reported (or the configured one). */
function waitHttpReady(child: Child, host: string, configuredPort: number, scheme: 'http' | 'https'): Promise<number> {
  let port = 0;
  return waitUntil(`${child.name} /readyz`, child, async () => {
    port = child.listeningPort ?? configuredPort;
    return port !== 0 && httpOk(`${scheme}://${urlHost(host)}:${port}/readyz`);
  }).then(() => port);
}

async function stopChild(child: Child): Promise<void> {
  if (child.process.exited) return;
  say(`stopping ${child.name}`);
  await child.process.stop('SIGTERM', STOP_TIMEOUT_MS, () => warn(`${child.name} did not stop in time; killing it`));
}

/** Drops pending restarts, stops the gatekeeper, then the core, then Redis; once. */
function stopAll(code: number): Promise<never> {
  stopping ??= (async () => {
    for (const svc of Object.values(services)) if (svc.restartTimer !== null) clearTimeout(svc.restartTimer);
    for (const name of STOP_ORDER) {
      const child = services[name].current;
      if (child !== null) await stopChild(child);
    }
    process.exit(code);
  })();
  return stopping;
}

function envPort(env: NodeJS.ProcessEnv, name: string, def: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n > 65535) fail(`${name} must be a port number (0..65535), got "${raw}"`);
  return n;
}

/** REDIS_MAXMEMORY in bytes: a size in Redis's units (512mb, 2gb, 1000000), at least 16mb. */
function envMaxmemory(env: NodeJS.ProcessEnv): number {
  const raw = env.REDIS_MAXMEMORY === undefined || env.REDIS_MAXMEMORY === '' ? DEFAULT_REDIS_MAXMEMORY : env.REDIS_MAXMEMORY;
  const units: Record<string, number> = { '': 1, b: 1, k: 1e3, kb: 1024, m: 1e6, mb: 1024 ** 2, g: 1e9, gb: 1024 ** 3 };
  const m = /^(\d{1,15})(b|k|kb|m|mb|g|gb)?$/i.exec(raw);
  if (m === null) fail(`REDIS_MAXMEMORY must be a size such as 512mb or 2gb (units as Redis reads them: b, k, kb, m, mb, g, gb), got "${raw}"`);
  const bytes = Number(m[1]) * units[(m[2] ?? '').toLowerCase()]!;
  if (bytes < MIN_REDIS_MAXMEMORY) fail(`REDIS_MAXMEMORY must be at least 16mb (the relay's own keys need room), got "${raw}"`);
  if (!Number.isSafeInteger(bytes)) fail(`REDIS_MAXMEMORY is too large, got "${raw}"`);
  return bytes;
}

async function main(): Promise<void> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  const port = envPort(env, 'PORT', 8080);
  const host = env.HOST || '0.0.0.0';
  const corePort = envPort(env, 'CORE_PORT', 8081);
  const coreHost = env.CORE_HOST || '127.0.0.1';
  const maxmemory = envMaxmemory(env);

  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      if (stopping !== null) return;
      say(`${sig}: stopping`);
      void stopAll(0);
    });
  }
  // The parent (pnpm, a supervisor, a shell) killed outright: this process is re-parented, and
  // stops the relay rather than run on with nobody to stop it. (Nothing to watch when started by
  // the init process itself.)
  const parent = process.ppid;
  if (parent > 1) {
    setInterval(() => {
      if (process.ppid === parent || stopping !== null) return;
      say(`parent process ${parent} is gone: stopping`);
      void stopAll(0);
    }, PARENT_POLL_MS).unref();
  }
  // If the launcher itself dies, take the children along rather than leave them running.
  process.on('exit', () => {
    watchdog?.kill('SIGKILL');
    // A service is restarted only after its last process exited: the current ones are all there is.
    for (const { current: c } of Object.values(services)) c?.process.kill('SIGKILL');
  });

  // A store configured in any topology (a URL, a cluster seed list, sentinels) is used as it is.
  const storeSet = ['REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_SENTINELS'].find((v) => (env[v] ?? '').trim() !== '');
  if (storeSet === undefined) {
    const redisServer = new RedisServer(await freePort(), { args: ['--maxmemory', String(maxmemory), '--loglevel', 'warning'], spawn: { env, ...supervised('redis') } });
    startWatchdog();
    const spawnRedis = (): Promise<Child> => launch('redis', () => redisServer.spawn());
    let redis: Child;
    try {
      redis = await spawnRedis();
    } catch (err) {
      if (stopping !== null) return;
      const code = (err as NodeJS.ErrnoException).code;
      fail(
        code === 'ENOENT'
          ? 'redis-server was not found. Install Redis (for example `apt-get install redis-server`) or set REDIS_URL to a running Redis.'
          : `could not start redis-server (${code ?? 'error'}). Set REDIS_URL to a running Redis instead.`,
      );
    }
    await waitUntil('redis-server', redis, () => redisServer.ready());
    services.redis.spawn = spawnRedis;
    services.redis.ready = () => redisServer.ready();
    env.REDIS_URL = redisServer.url;
    say(`started a private memory-only redis-server on 127.0.0.1:${redisServer.port} (maxmemory ${maxmemory} bytes, noeviction)`);
  } else if (process.env.REDIS_MAXMEMORY) {
    say(`REDIS_MAXMEMORY applies to the private redis-server only; ${storeSet} is set, so it is not used`);
  }
  if (!env.INTERNAL_SECRET) {
    env.INTERNAL_SECRET = randomBytes(32).toString('base64url');
    say('INTERNAL_SECRET is not set: using a random one for this run');
  }

  const unbuilt = unbuiltTier();
  if (unbuilt !== null) throw new Error(`${unbuilt} is not built (${TIER_MAIN[unbuilt]} is missing): run \`pnpm build\` first`);

  // Either service speaks TLS on its main port when given a certificate (CORE_TLS_*, TLS_*).
  const coreScheme = env.CORE_TLS_CERT_FILE ? 'https' : 'http';
  const scheme = env.TLS_CERT_FILE ? 'https' : 'http';

  const core = await launchTier('core', env);
  const coreListening = await waitHttpReady(core, coreHost, corePort, coreScheme);
  // A restarted core listens where the first one did (CORE_PORT=0 included): CORE_URL stays right.
  const coreEnv = { ...env, CORE_PORT: String(coreListening) };
  services.core.spawn = () => launchTier('core', coreEnv);
  services.core.ready = () => httpOk(`${coreScheme}://${urlHost(coreHost)}:${coreListening}/readyz`);
  if (!env.CORE_URL) env.CORE_URL = `${coreScheme}://${urlHost(coreHost)}:${coreListening}`;

  const gatekeeper = await launchTier('gatekeeper', env);
  const gatekeeperListening = await waitHttpReady(gatekeeper, host, port, scheme);
  const gatekeeperEnv = { ...env, PORT: String(gatekeeperListening) };
  services.gatekeeper.spawn = () => launchTier('gatekeeper', gatekeeperEnv);
  services.gatekeeper.ready = () => httpOk(`${scheme}://${urlHost(host)}:${gatekeeperListening}/readyz`);

  // A child that died while the last one was getting ready has already stopped the relay.
  if (stopping !== null) return;
  supervising = true;
  process.stdout.write(`\nZax relay ready: ${scheme}://${urlHost(host)}:${gatekeeperListening}\n\n`);
}

main().catch((err: unknown) => {
  if (stopping !== null) return; // a stop signal arrived while starting: that stop is under way
  warn(err instanceof Error ? err.message : String(err));
  void stopAll(1);
});
