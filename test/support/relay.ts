/**
 * Runs a whole relay (core + gatekeeper) as real processes from the built `dist/`, against a given
 * Redis under a fresh prefix, for end-to-end, interop and fault tests. Also runs either service
 * alone so a test can kill and restart it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { freePort } from './redis-server.js';
import { dropPrefix, freshPrefix } from './prefix.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CORE_MAIN = `${ROOT}packages/core/dist/main.js`;
export const GATEKEEPER_MAIN = `${ROOT}packages/gatekeeper/dist/main.js`;

export class ServiceProcess {
  private child: ChildProcess | null = null;
  readonly logs: string[] = [];
  constructor(
    readonly name: string,
    readonly main: string,
    readonly env: Record<string, string>,
    readonly port: number,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    const child = spawn(process.execPath, [this.main], {
      env: { PATH: process.env.PATH ?? '', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const collect = (b: Buffer): void => {
      for (const line of b.toString('utf8').split('\n')) if (line.length > 0) this.logs.push(line);
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    await waitReady(`http://127.0.0.1:${this.port}/readyz`, child, () => this.logs.join('\n'));
  }

  /** SIGTERM (graceful) or SIGKILL (crash); resolves with the exit code once the process is gone. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const c = this.child;
    if (c === null || c.exitCode !== null || c.signalCode !== null) return c?.exitCode ?? null;
    return new Promise((resolve) => {
      c.once('exit', (code) => resolve(code));
      c.kill(signal);
    });
  }
}

async function waitReady(url: string, child: ChildProcess, logs: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`process exited with ${child.exitCode} before ready:\n${logs()}`);
    try {
      const r = await fetch(url);
      if (r.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`not ready: ${url}\n${logs()}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

export interface RelayOptions {
  redisUrl: string;
  /** Extra environment for both services (e.g. DIFFICULTY, SESSION_TTL_SEC). */
  env?: Record<string, string>;
  prefix?: string;
}

export class Relay {
  readonly core: ServiceProcess;
  readonly gatekeeper: ServiceProcess;
  readonly prefix: string;
  readonly url: string;
  readonly redisUrl: string;

  private constructor(opts: RelayOptions, corePort: number, gkPort: number) {
    this.prefix = opts.prefix ?? freshPrefix('relay');
    this.redisUrl = opts.redisUrl;
    const env: Record<string, string> = {
      REDIS_URL: opts.redisUrl,
      REDIS_PREFIX: this.prefix,
      INTERNAL_SECRET: randomBytes(24).toString('hex'),
      CORE_PORT: String(corePort),
      CORE_HOST: '127.0.0.1',
      CORE_URL: `http://127.0.0.1:${corePort}`,
      PORT: String(gkPort),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      ...opts.env,
    };
    this.core = new ServiceProcess('core', CORE_MAIN, env, corePort);
    this.gatekeeper = new ServiceProcess('gatekeeper', GATEKEEPER_MAIN, env, gkPort);
    this.url = `http://127.0.0.1:${gkPort}`;
  }

  static async start(opts: RelayOptions): Promise<Relay> {
    const relay = new Relay(opts, await freePort(), await freePort());
    await relay.core.start();
    await relay.gatekeeper.start();
    return relay;
  }

  /** Stops both services and removes every key under the relay's prefix. */
  async stop(): Promise<void> {
    await this.gatekeeper.stop();
    await this.core.stop();
    await dropPrefix(this.redisUrl, this.prefix);
  }

  get logs(): string[] {
    return [...this.core.logs, ...this.gatekeeper.logs];
  }
}

/** POST a raw body; returns status, headers and text. */
export async function post(url: string, body: string | Uint8Array, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; text: string }> {
  const r = await fetch(url, { method: 'POST', body: body as BodyInit, headers: { 'content-type': 'text/plain', ...headers } });
  return { status: r.status, headers: r.headers, text: await r.text() };
}
