/**
 * `pnpm start`: the whole relay on one machine. Starts a private memory-only redis-server when
 * REDIS_URL is unset, then the core, waits for its /readyz, then the gatekeeper, waits for its
 * /readyz, and prints the URL clients use. `pnpm start` runs this through scripts/start.js (which
 * builds first) as pnpm's direct child, so what pnpm forwards reaches this process.
 *
 * How it stops, however it is stopped:
 * - SIGINT, SIGTERM or SIGHUP (to this process, or to pnpm, which forwards them), or the parent
 *   going away (pnpm killed: the parent pid changes; polled every PARENT_POLL_MS): the gatekeeper,
 *   then the core, then Redis, each by SIGTERM and waited for (SIGKILL after STOP_TIMEOUT_MS); exit 0.
 * - A child that dies on its own: the same stop, exit 1.
 * - This process killed outright (SIGKILL, a crash): the core and the gatekeeper hold an IPC
 *   channel to it and drain and exit when it closes. redis-server has no such hook, so it gets a
 *   watchdog: a tiny `sh` that blocks reading a pipe whose write end is held by this launcher, the
 *   core and the gatekeeper (passed to them as fd 4, which they never touch; the core's cluster
 *   workers do not get it, but the core waits for them before it exits). When the last holder is
 *   gone the read sees end-of-file and the watchdog SIGKILLs redis-server, so Redis outlives the
 *   services' drain but nothing outlives the services.
 *   SIGKILL because every client is gone and the instance is memory-only: there is nothing to save
 *   and it cannot be refused. The watchdog is a child of this launcher, and is SIGKILLed in the same
 *   tick that redis-server's exit is reaped here, so it never signals a recycled pid. (The other
 *   option, making redis die with its parent via PR_SET_PDEATHSIG, is Linux-only and would stop
 *   Redis before the services finish draining.)
 *
 * Children run in their own process groups, so a terminal's Ctrl-C reaches only pnpm and this
 * launcher, and the stop order holds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CORE_MAIN = join(ROOT, 'packages/core/dist/main.js');
const GATEKEEPER_MAIN = join(ROOT, 'packages/gatekeeper/dist/main.js');

const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
const PARENT_POLL_MS = 250;

/** Blocks until its stdin reaches end-of-file, then SIGKILLs the pid given as $1 (see the header). */
const REDIS_WATCHDOG = 'read -r _; kill -KILL "$1" 2>/dev/null';

interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  /** Port from the child's `"msg":"listening"` log line, once seen. */
  listeningPort: number | null;
  /** The last error or fatal log line's message, to name the reason if it dies while starting. */
  lastError: string | null;
  exited: boolean;
  /** Resolves once it has exited and its output is read (up to a second: a process it started may hold the pipes). */
  readonly ended: Promise<void>;
}

const children: Child[] = [];
let stopping: Promise<never> | null = null;
/** The Redis watchdog (header), and its stdin: the write end the services also hold (fd 4). */
let watchdog: ChildProcess | null = null;
let watchdogPipe: Writable | null = null;

// A reader of our output that goes away (a closed terminal, a killed `| tee`) must not crash the
// launcher and leave the stop to the watchdogs: the lines are dropped instead.
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});

const say = (msg: string): void => {
  process.stdout.write(`[launcher] ${msg}\n`);
};

function fail(msg: string): never {
  process.stderr.write(`[launcher] ${msg}\n`);
  process.exit(1);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no free port'))));
    });
  });
}

/** Host part of a URL for a listening address: wildcard addresses are reached on loopback. */
function urlHost(host: string): string {
  if (host === '' || host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Passes a child's output through line by line, prefixed with its name; watches for "listening". */
function relayOutput(child: Child): void {
  const { proc, name } = child;
  if (proc.stdout) {
    createInterface({ input: proc.stdout }).on('line', (line) => {
      process.stdout.write(`[${name}] ${line}\n`);
      if (!line.startsWith('{')) return;
      try {
        const rec = JSON.parse(line) as { level?: unknown; msg?: unknown; port?: unknown };
        if (child.listeningPort === null && rec.msg === 'listening' && Number.isInteger(Number(rec.port))) child.listeningPort = Number(rec.port);
        if (typeof rec.level === 'number' && rec.level >= 50 && typeof rec.msg === 'string') child.lastError = rec.msg;
      } catch {
        // not JSON: ignore
      }
    });
  }
  if (proc.stderr) createInterface({ input: proc.stderr }).on('line', (line) => process.stderr.write(`[${name}] ${line}\n`));
}

/** Spawns a child; resolves once it is running, rejects with the spawn error (e.g. ENOENT). */
function launch(name: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<Child> {
  if (stopping !== null) return Promise.reject(new Error(`not starting ${name}: stopping`));
  return new Promise((resolve, reject) => {
    // Node children get an IPC channel (fd 3): it closes when this launcher dies, however it dies,
    // and they drain and exit on that. They also hold the Redis watchdog's pipe (fd 4; header).
    const stdio: (ChildProcess['stdin'] | 'ignore' | 'pipe' | 'ipc')[] =
      command === process.execPath ? ['ignore', 'pipe', 'pipe', 'ipc', ...(watchdogPipe !== null ? [watchdogPipe] : [])] : ['ignore', 'pipe', 'pipe'];
    const proc = spawn(command, args, { env, stdio, detached: true });
    const closed = new Promise<void>((r) => proc.once('close', () => r()));
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    const ended = exited.then(() => Promise.race([closed, sleep(1000)]));
    const child: Child = { name, proc, listeningPort: null, lastError: null, exited: false, ended };
    proc.once('error', reject);
    proc.once('spawn', () => {
      proc.off('error', reject);
      proc.on('error', () => {}); // kill() on a dead child must not throw
      children.push(child);
      relayOutput(child);
      say(`started ${name} (pid ${proc.pid})`);
      proc.once('exit', (code, signal) => {
        child.exited = true;
        if (stopping !== null) return;
        // Its last lines first, so that the message can give its last error (e.g. a port in use).
        void ended.then(() => {
          if (stopping !== null) return;
          const why = child.lastError !== null ? `: ${child.lastError}` : '';
          process.stderr.write(`[launcher] ${name} exited unexpectedly (${signal ?? `code ${code}`})${why}; stopping the relay\n`);
          void stopAll(1);
        });
      });
      resolve(child);
    });
  });
}

/** Starts the watchdog of redis-server `pid` (header); it is killed as soon as Redis has exited. */
function guardRedis(redis: ChildProcess): void {
  if (redis.exitCode !== null || redis.signalCode !== null) return; // already gone: nothing to guard
  const w = spawn('/bin/sh', ['-c', REDIS_WATCHDOG, 'zax-redis-watchdog', String(redis.pid)], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
  w.on('error', (err) => {
    process.stderr.write(`[launcher] could not start the redis-server watchdog (${err.message}); if this launcher is killed, stop redis-server yourself\n`);
  });
  w.stdin.on('error', () => {}); // never written to; its end-of-file is the signal
  watchdog = w;
  watchdogPipe = w.stdin;
  redis.once('exit', () => w.kill('SIGKILL'));
}

function redisPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let data = '';
    s.setTimeout(1000, () => s.destroy());
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      data += d.toString('latin1');
      if (data.includes('\r\n')) s.end();
    });
    s.on('close', () => resolve(data.startsWith('+PONG')));
    s.on('error', () => resolve(false));
  });
}

/**
 * GET → 200? Over https the certificate is not verified: this is a readiness probe of a process
 * this launcher just started on this machine, whose certificate may well be self-signed.
 */
function httpOk(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const get = url.startsWith('https:') ? https.get : http.get;
    const req = get(url, { timeout: 2000, agent: false, rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

async function waitUntil(what: string, child: Child, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exited) await child.ended;
    if (child.exited) throw new Error(`${child.name} exited before it was ready${child.lastError !== null ? `: ${child.lastError}` : ''}`);
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${what} was not ready within ${READY_TIMEOUT_MS / 1000} s`);
    await sleep(100);
  }
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
  if (child.exited) return;
  say(`stopping ${child.name}`);
  const exited = new Promise<void>((resolve) => child.proc.once('exit', () => resolve()));
  child.proc.kill('SIGTERM');
  const timer = setTimeout(() => {
    process.stderr.write(`[launcher] ${child.name} did not stop in time; killing it\n`);
    child.proc.kill('SIGKILL');
  }, STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

/** Stops the gatekeeper, then the core, then Redis (the reverse of the start order); once. */
function stopAll(code: number): Promise<never> {
  stopping ??= (async () => {
    for (const child of [...children].reverse()) await stopChild(child);
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

async function main(): Promise<void> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  const port = envPort(env, 'PORT', 8080);
  const host = env.HOST || '0.0.0.0';
  const corePort = envPort(env, 'CORE_PORT', 8081);
  const coreHost = env.CORE_HOST || '127.0.0.1';

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
    for (const c of children) if (!c.exited) c.proc.kill('SIGKILL');
  });

  if (!env.REDIS_URL) {
    const redisPort = await freePort();
    const args = ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction', '--loglevel', 'warning'];
    let redis: Child;
    try {
      redis = await launch('redis', 'redis-server', args, env);
    } catch (err) {
      if (stopping !== null) return;
      const code = (err as NodeJS.ErrnoException).code;
      fail(
        code === 'ENOENT'
          ? 'redis-server was not found. Install Redis (for example `apt-get install redis-server`) or set REDIS_URL to a running Redis.'
          : `could not start redis-server (${code ?? 'error'}). Set REDIS_URL to a running Redis instead.`,
      );
    }
    guardRedis(redis.proc);
    await waitUntil('redis-server', redis, () => redisPing(redisPort));
    env.REDIS_URL = `redis://127.0.0.1:${redisPort}`;
    say(`started a private memory-only redis-server on 127.0.0.1:${redisPort}`);
  }
  if (!env.INTERNAL_SECRET) {
    env.INTERNAL_SECRET = randomBytes(32).toString('base64url');
    say('INTERNAL_SECRET is not set: using a random one for this run');
  }

  for (const [name, file] of [['core', CORE_MAIN], ['gatekeeper', GATEKEEPER_MAIN]] as const) {
    if (!existsSync(file)) throw new Error(`${name} is not built (${file} is missing): run \`pnpm build\` first`);
  }

  // Either service speaks TLS on its main port when given a certificate (CORE_TLS_*, TLS_*).
  const coreScheme = env.CORE_TLS_CERT_FILE ? 'https' : 'http';
  const scheme = env.TLS_CERT_FILE ? 'https' : 'http';

  const core = await launch('core', process.execPath, [CORE_MAIN], env);
  const coreListening = await waitHttpReady(core, coreHost, corePort, coreScheme);
  if (!env.CORE_URL) env.CORE_URL = `${coreScheme}://${urlHost(coreHost)}:${coreListening}`;

  const gatekeeper = await launch('gatekeeper', process.execPath, [GATEKEEPER_MAIN], env);
  const gatekeeperListening = await waitHttpReady(gatekeeper, host, port, scheme);

  process.stdout.write(`\nZax relay ready: ${scheme}://${urlHost(host)}:${gatekeeperListening}\n\n`);
}

main().catch((err: unknown) => {
  if (stopping !== null) return; // a stop signal arrived while starting: that stop is under way
  process.stderr.write(`[launcher] ${err instanceof Error ? err.message : String(err)}\n`);
  void stopAll(1);
});
