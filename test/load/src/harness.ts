/**
 * Starts a private relay for a benchmark: a memory-only `redis-server` on a free loopback port, then
 * the core and the gatekeeper from their built `dist/` (throttling off), and stops them again. Logs
 * are drained and only the last lines are kept, for a useful error if a service dies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url)); // test/load/dist → repo root
export const CORE_MAIN = `${ROOT}packages/core/dist/main.js`;
export const GATEKEEPER_MAIN = `${ROOT}packages/gatekeeper/dist/main.js`;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A child process with the last lines of its output kept (for an error message if it dies). */
export class Child {
  readonly tail: string[] = [];
  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    const keep = (b: Buffer): void => {
      for (const line of b.toString('utf8').split('\n')) {
        if (line.length === 0) continue;
        this.tail.push(line);
        if (this.tail.length > 30) this.tail.shift();
      }
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get exited(): boolean {
    return this.proc.exitCode !== null || this.proc.signalCode !== null;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.kill(signal);
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    await gone;
    clearTimeout(timer);
  }
}

/** Whether a Redis at `url` answers PING now (one attempt, no retry). */
export async function redisPingable(url: string): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } finally {
    r.disconnect();
  }
}

export async function waitFor(what: string, child: Child, probe: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exited) throw new Error(`${what} exited (${child.proc.exitCode ?? child.proc.signalCode}) before it was ready:\n${child.tail.join('\n')}`);
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what} not ready after ${timeoutMs} ms:\n${child.tail.join('\n')}`);
    await sleep(50);
  }
}

export interface LocalRelayOptions {
  /** Extra environment for both services (e.g. DIFFICULTY=4, CORE_WORKERS=2). */
  env?: Record<string, string>;
  /** Use this Redis instead of starting one (its CPU is then only seen through INFO). */
  redisUrl?: string;
  /** Run the services under `node --cpu-prof`, writing to `<dir>/core` and `<dir>/gatekeeper` (profile.ts). */
  profileDir?: string;
}

export class LocalRelay {
  private constructor(
    readonly url: string,
    readonly redisUrl: string,
    private redis: Child | null,
    private core: Child,
    private gatekeeper: Child,
    /** The environment both services run with (ports, prefix, secret and `opts.env`). */
    readonly env: Readonly<Record<string, string>>,
    private readonly relaunch: (name: 'core' | 'gatekeeper') => Promise<Child>,
    private readonly respawnRedis: (() => Promise<Child>) | null,
  ) {}

  /** Sends `signal` to one process of the relay (a fault: SIGKILL, SIGSTOP, SIGCONT). */
  signal(name: 'redis' | 'core' | 'gatekeeper', signal: NodeJS.Signals): void {
    const c = name === 'redis' ? this.redis : name === 'core' ? this.core : this.gatekeeper;
    if (c === null) throw new Error('this relay uses an outside Redis');
    c.proc.kill(signal);
  }

  /** SIGKILLs the core or the gatekeeper (if still running) and starts it again; resolves once it is ready. */
  async restart(name: 'core' | 'gatekeeper'): Promise<void> {
    await (name === 'core' ? this.core : this.gatekeeper).stop('SIGKILL');
    const c = await this.relaunch(name);
    if (name === 'core') this.core = c;
    else this.gatekeeper = c;
  }

  /** SIGKILLs the private redis-server and starts an empty one on the same port; resolves once it answers. */
  async restartRedisEmpty(): Promise<void> {
    if (this.redis === null || this.respawnRedis === null) throw new Error('this relay uses an outside Redis');
    await this.redis.stop('SIGKILL');
    this.redis = await this.respawnRedis();
  }

  get pids(): { core: number; gatekeeper: number; redis: number | null } {
    return { core: this.core.pid, gatekeeper: this.gatekeeper.pid, redis: this.redis?.pid ?? null };
  }

  /** A service that died during the run, with its last log lines. */
  deadService(): string | null {
    for (const c of [this.redis, this.core, this.gatekeeper]) if (c !== null && c.exited) return `${c.name} exited:\n${c.tail.join('\n')}`;
    return null;
  }

  static async start(opts: LocalRelayOptions = {}): Promise<LocalRelay> {
    for (const main of [CORE_MAIN, GATEKEEPER_MAIN]) {
      if (!existsSync(main)) throw new Error(`${main} is missing: build the relay first (pnpm build)`);
    }
    let redis: Child | null = null;
    let redisUrl = opts.redisUrl;
    const started: Child[] = [];
    try {
      let respawnRedis: (() => Promise<Child>) | null = null;
      if (redisUrl === undefined) {
        const port = await freePort();
        const url = `redis://127.0.0.1:${port}`;
        respawnRedis = async (): Promise<Child> => {
          const c = new Child(
            'redis-server',
            spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], {
              stdio: ['ignore', 'pipe', 'pipe'],
            }),
          );
          started.push(c);
          await waitFor('redis-server', c, () => redisPingable(url));
          return c;
        };
        redis = await respawnRedis();
        redisUrl = url;
      }
      const corePort = await freePort();
      const gkPort = await freePort();
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? '',
        REDIS_URL: redisUrl,
        REDIS_PREFIX: `bench${randomBytes(3).toString('hex')}:`,
        INTERNAL_SECRET: randomBytes(24).toString('hex'),
        CORE_PORT: String(corePort),
        CORE_HOST: '127.0.0.1',
        CORE_URL: `http://127.0.0.1:${corePort}`,
        PORT: String(gkPort),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        // Throttling off: the whole load comes from one address.
        HANDSHAKE_BURST_PER_IP: '0',
        REQUEST_BURST_PER_IP: '0',
        ...opts.env,
      };
      const launch = (name: string, main: string): Child => {
        // V8 writes the profile when the process exits normally (SIGTERM → drain → exit 0).
        const nodeArgs = opts.profileDir !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${opts.profileDir}/${name}`] : [];
        const c = new Child(name, spawn(process.execPath, [...nodeArgs, main], { env, stdio: ['ignore', 'pipe', 'pipe'] }));
        started.push(c);
        return c;
      };
      const ready = (port: number) => async (): Promise<boolean> => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200;
      const relaunch = async (name: 'core' | 'gatekeeper'): Promise<Child> => {
        const c = launch(name, name === 'core' ? CORE_MAIN : GATEKEEPER_MAIN);
        await waitFor(name, c, ready(name === 'core' ? corePort : gkPort));
        return c;
      };
      const core = await relaunch('core');
      const gatekeeper = await relaunch('gatekeeper');
      return new LocalRelay(`http://127.0.0.1:${gkPort}`, redisUrl, redis, core, gatekeeper, env, relaunch, respawnRedis);
    } catch (e) {
      for (const c of started.reverse()) await c.stop('SIGKILL');
      throw e;
    }
  }

  async stop(): Promise<void> {
    await this.gatekeeper.stop();
    await this.core.stop();
    await this.redis?.stop('SIGKILL');
  }

  /** Kills everything at once (signal handlers, crashes). */
  killNow(): void {
    for (const c of [this.gatekeeper, this.core, this.redis]) if (c !== null && !c.exited) c.proc.kill('SIGKILL');
  }
}
