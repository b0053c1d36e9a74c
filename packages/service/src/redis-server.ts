/**
 * A private `redis-server` on a loopback port: memory-only (no RDB snapshots, no append-only file),
 * `noeviction` (the relay never wants keys dropped behind its back), started and waited for until it
 * answers PING, stopped by SIGKILL (nothing to save). `pnpm start` runs one when no store is
 * configured; tests and benchmarks run their own, never the machine's shared Redis.
 */
import { connect } from 'node:net';
import { ManagedProcess, type ManagedProcessOptions } from './managed-process.js';
import { freePort } from './ports.js';

/** Does a Redis on 127.0.0.1:`port` answer PING now? (One attempt, a second at most.) */
export function redisPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
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

export interface RedisServerOptions {
  /** @default a free port */
  readonly port?: number;
  /** More redis-server arguments, after the defaults (e.g. `['--maxmemory', '8mb']`). */
  readonly args?: readonly string[];
  /** How the process is run (its own group, its output, a hook once it runs). */
  readonly spawn?: Pick<ManagedProcessOptions, 'detached' | 'onLine' | 'onSpawn' | 'env'>;
  /** How long to wait for the first PING. @default 20 s */
  readonly readyTimeoutMs?: number;
}

export class RedisServer {
  private current: ManagedProcess | null = null;

  /** One on `port`, not started yet (see `spawn`, `restart`). */
  constructor(
    readonly port: number,
    private readonly opts: Omit<RedisServerOptions, 'port'> = {},
  ) {}

  /** Starts one and waits until it answers; rejects with the spawn error (ENOENT: not installed) or a NotReadyError. */
  static async start(opts: RedisServerOptions = {}): Promise<RedisServer> {
    const server = new RedisServer(opts.port ?? (await freePort()), opts);
    await server.restart();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** The process running now (the last one started). */
  get process(): ManagedProcess {
    return this.current!;
  }

  /** Starts a process on this port without waiting for it (see `ready`). */
  async spawn(): Promise<ManagedProcess> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction', ...(this.opts.args ?? [])];
    this.current = await ManagedProcess.spawn({ name: 'redis-server', command: 'redis-server', args, ...this.opts.spawn });
    return this.current;
  }

  /** Does it answer PING now? */
  ready(): Promise<boolean> {
    return redisPing(this.port);
  }

  /** Starts it (again, after `stop`) on the same port, empty, and waits until it answers; SIGKILLs it if it does not. */
  async restart(): Promise<void> {
    const p = await this.spawn();
    try {
      await p.waitReady(`PING on port ${this.port}`, () => this.ready(), this.opts.readyTimeoutMs ?? 20_000);
    } catch (e) {
      await p.stop('SIGKILL');
      throw e;
    }
  }

  /** Sends a signal (SIGSTOP, SIGCONT…) to the process running now. */
  signal(signal: NodeJS.Signals): void {
    this.current?.kill(signal);
  }

  /** SIGKILLs it (memory-only: nothing to save) and resolves once it is gone. */
  async stop(): Promise<void> {
    await this.current?.stop('SIGKILL');
  }
}
