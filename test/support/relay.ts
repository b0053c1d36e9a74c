/**
 * Runs a whole relay (core + gatekeeper) as real processes from the built `dist/`, against a given
 * Redis under a fresh prefix, for end-to-end, interop and fault tests. Also runs either service
 * alone so a test can kill and restart it.
 */
import { readFileSync } from 'node:fs';
import { freePort, loopbackRelayEnv, startNodeService, TIER_MAIN, type ManagedProcess } from '@zax/service';
import { dropPrefix, freshPrefix } from './prefix.js';
import { storeEnv } from './store.js';

export const CORE_MAIN = TIER_MAIN.core;
export const GATEKEEPER_MAIN = TIER_MAIN.gatekeeper;

/** How the readiness probe reaches a service that serves HTTPS on its port. */
export interface ProbeTls {
  /** PEM of the CA that signed the service's certificate. */
  readonly ca: string | Buffer;
}

export class ServiceProcess {
  private child: ManagedProcess | null = null;
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
    this.child = await startNodeService(this.main, {
      name: this.name,
      env: { PATH: process.env.PATH ?? '', ...this.env },
      keepLines: Infinity,
      onSpawn: (p) => (this.child = p),
      onLine: (line) => {
        if (line.length === 0) return;
        this.logs.push(line);
        for (const w of [...this.watchers]) w(line);
      },
      readyz: `${this.tls === null ? 'http' : 'https'}://127.0.0.1:${this.port}/readyz`,
      ...(this.tls !== null ? { ca: this.tls.ca } : {}),
    });
  }

  /**
   * Resolves with the first line logged from now on that `match` accepts (an event, not a poll);
   * rejects if the process exits first.
   */
  waitForLog(match: (line: string) => boolean): Promise<string> {
    const child = this.child?.proc;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.reject(new Error(`${this.name} is not running`));
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
    return (await this.child?.stop(signal))?.code ?? null;
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
      ...loopbackRelayEnv({ corePort, port: gkPort, prefix: this.prefix, throttling: opts.throttling === true }),
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
