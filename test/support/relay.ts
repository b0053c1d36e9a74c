/**
 * Runs a whole relay (core + gatekeeper) as real processes from the built `dist/`, against a given
 * Redis under a fresh prefix, for end-to-end, interop and fault tests. Also runs either service
 * alone so a test can kill and restart it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { fileURLToPath } from 'node:url';
import { freePort } from './redis-server.js';
import { dropPrefix, freshPrefix } from './prefix.js';
import { storeEnv } from './store.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CORE_MAIN = `${ROOT}packages/core/dist/main.js`;
export const GATEKEEPER_MAIN = `${ROOT}packages/gatekeeper/dist/main.js`;

/** How the readiness probe reaches a service that serves HTTPS on its port. */
export interface ProbeTls {
  /** PEM of the CA that signed the service's certificate. */
  readonly ca: string | Buffer;
}

export class ServiceProcess {
  private child: ChildProcess | null = null;
  readonly logs: string[] = [];
  /** Called with every new log line (waitForLog). */
  private readonly watchers = new Set<(line: string) => void>();
  constructor(
    readonly name: string,
    readonly main: string,
    readonly env: Record<string, string>,
    readonly port: number,
    /** Set when the service serves HTTPS on `port`: the probe then uses https with this CA. */
    readonly tls: ProbeTls | null = null,
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
    // Lines can arrive split over chunks: each stream keeps its unfinished last line.
    const add = (line: string): void => {
      if (line.length === 0) return;
      this.logs.push(line);
      for (const w of [...this.watchers]) w(line);
    };
    for (const stream of [child.stdout!, child.stderr!]) {
      let rest = '';
      stream.on('data', (b: Buffer) => {
        const lines = (rest + b.toString('utf8')).split('\n');
        rest = lines.pop()!;
        for (const line of lines) add(line);
      });
      stream.on('end', () => add(rest));
    }
    await waitReady(`${this.tls === null ? 'http' : 'https'}://127.0.0.1:${this.port}/readyz`, child, () => this.logs.join('\n'), this.tls);
  }

  /**
   * Resolves with the first line logged from now on that `match` accepts (an event, not a poll);
   * rejects if the process exits first.
   */
  waitForLog(match: (line: string) => boolean): Promise<string> {
    const child = this.child;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return Promise.reject(new Error(`${this.name} is not running`));
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null): void => {
        this.watchers.delete(watch);
        reject(new Error(`${this.name} exited (${code}) while a log line was awaited`));
      };
      const watch = (line: string): void => {
        if (!match(line)) return;
        this.watchers.delete(watch);
        child.off('exit', onExit);
        resolve(line);
      };
      this.watchers.add(watch);
      child.once('exit', onExit);
    });
  }

  /** Sends a signal (e.g. SIGHUP) without waiting for anything. */
  signal(signal: NodeJS.Signals): void {
    this.child?.kill(signal);
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

/** GET over https trusting `ca`; resolves with the status. */
function httpsStatus(url: string, ca: string | Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, agent: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function waitReady(url: string, child: ChildProcess, logs: () => string, tls: ProbeTls | null = null): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`process exited with ${child.exitCode} before ready:\n${logs()}`);
    try {
      const status = tls === null ? (await fetch(url)).status : await httpsStatus(url, tls.ca);
      if (status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`not ready: ${url}\n${logs()}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

export interface RelayOptions {
  /** A redis:// URL or a test/support/store.ts spec (cluster, sentinel). */
  redisUrl: string;
  /** Extra environment for both services (e.g. DIFFICULTY, SESSION_TTL_SEC). */
  env?: Record<string, string>;
  /** Extra environment for the gatekeepers only, over `env` (e.g. LOG_LEVEL). */
  gatekeeperEnv?: Record<string, string>;
  prefix?: string;
  /** Gatekeeper processes sharing the edge Redis (replicas behind one URL). @default 1 */
  gatekeepers?: number;
  /** Give each gatekeeper an ADMIN_PORT of its own (`adminUrls`). @default false */
  adminPorts?: boolean;
  /**
   * Keep the gatekeeper's per-client budgets (docs/PROTOCOL.md §7 defaults). Off by default: suites
   * drive hundreds of handshakes from 127.0.0.1 within a minute. `env` overrides either way.
   * @default false
   */
  throttling?: boolean;
  /**
   * The gatekeepers terminate TLS with these files (TLS_CERT_FILE, TLS_KEY_FILE): `url`/`urls` are
   * then `https://127.0.0.1:…`, and the readiness probe trusts `caFile`. Admin ports stay plain HTTP.
   */
  tls?: TlsFiles;
  /** The core serves HTTPS with these files (CORE_TLS_*); the gatekeepers reach it with CORE_CA_FILE = `caFile`. */
  coreTls?: TlsFiles;
}

/** A server certificate (PEM chain), its key, and the CA that signed it (PEM files). */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
}

export class Relay {
  readonly core: ServiceProcess;
  /** The first gatekeeper (`gatekeepers[0]`). */
  readonly gatekeeper: ServiceProcess;
  /** Every gatekeeper replica, all on the same edge Redis and prefix. */
  readonly gatekeepers: ServiceProcess[];
  readonly prefix: string;
  /** The first gatekeeper's URL. */
  readonly url: string;
  /** Each gatekeeper's URL, in the order of `gatekeepers`. */
  readonly urls: string[];
  /** Each gatekeeper's admin URL when `adminPorts` was asked for, else empty. */
  readonly adminUrls: string[];
  readonly redisUrl: string;

  private constructor(opts: RelayOptions, corePort: number, gkPorts: number[], adminPorts: number[]) {
    const gkPort = gkPorts[0]!;
    this.prefix = opts.prefix ?? freshPrefix('relay');
    this.redisUrl = opts.redisUrl;
    const env: Record<string, string> = {
      ...storeEnv(opts.redisUrl),
      REDIS_PREFIX: this.prefix,
      INTERNAL_SECRET: randomBytes(24).toString('hex'),
      CORE_PORT: String(corePort),
      CORE_HOST: '127.0.0.1',
      CORE_URL: `http://127.0.0.1:${corePort}`,
      PORT: String(gkPort),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      ...(opts.throttling === true ? {} : { HANDSHAKE_BURST_PER_IP: '0', REQUEST_BURST_PER_IP: '0' }),
      ...(opts.tls !== undefined ? { TLS_CERT_FILE: opts.tls.certFile, TLS_KEY_FILE: opts.tls.keyFile } : {}),
      ...(opts.coreTls !== undefined
        ? {
            CORE_TLS_CERT_FILE: opts.coreTls.certFile,
            CORE_TLS_KEY_FILE: opts.coreTls.keyFile,
            CORE_URL: `https://127.0.0.1:${corePort}`,
            CORE_CA_FILE: opts.coreTls.caFile,
          }
        : {}),
      ...opts.env,
    };
    const probe = (files: TlsFiles | undefined): ProbeTls | null => (files === undefined ? null : { ca: readFileSync(files.caFile) });
    this.core = new ServiceProcess('core', CORE_MAIN, env, corePort, probe(opts.coreTls));
    this.gatekeepers = gkPorts.map(
      (port, i) =>
        new ServiceProcess(
          i === 0 ? 'gatekeeper' : `gatekeeper-${i + 1}`,
          GATEKEEPER_MAIN,
          { ...env, ...opts.gatekeeperEnv, PORT: String(port), ...(adminPorts[i] !== undefined ? { ADMIN_PORT: String(adminPorts[i]) } : {}) },
          port,
          probe(opts.tls),
        ),
    );
    this.gatekeeper = this.gatekeepers[0]!;
    this.urls = gkPorts.map((p) => `${opts.tls !== undefined ? 'https' : 'http'}://127.0.0.1:${p}`);
    this.adminUrls = adminPorts.map((p) => `http://127.0.0.1:${p}`);
    this.url = this.urls[0]!;
  }

  static async start(opts: RelayOptions): Promise<Relay> {
    const n = opts.gatekeepers ?? 1;
    const gkPorts: number[] = [];
    const adminPorts: number[] = [];
    for (let i = 0; i < n; i++) {
      gkPorts.push(await freePort());
      if (opts.adminPorts === true) adminPorts.push(await freePort());
    }
    const relay = new Relay(opts, await freePort(), gkPorts, adminPorts);
    await relay.core.start();
    await Promise.all(relay.gatekeepers.map((g) => g.start()));
    return relay;
  }

  /** Stops every service and removes every key under the relay's prefix. */
  async stop(): Promise<void> {
    await Promise.all(this.gatekeepers.map((g) => g.stop()));
    await this.core.stop();
    await dropPrefix(this.redisUrl, this.prefix);
  }

  get logs(): string[] {
    return [...this.core.logs, ...this.gatekeepers.flatMap((g) => g.logs)];
  }
}

/** POST a raw body; returns status, headers and text. */
export async function post(url: string, body: string | Uint8Array, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; text: string }> {
  const r = await fetch(url, { method: 'POST', body: body as BodyInit, headers: { 'content-type': 'text/plain', ...headers } });
  return { status: r.status, headers: r.headers, text: await r.text() };
}
