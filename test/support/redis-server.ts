/**
 * Starts and stops a private, memory-only `redis-server` on a free loopback port, for tests and for
 * fault tests that stop Redis on purpose. Never touches the machine's shared Redis.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

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

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
  /** Starts it again on the same port (after stop). */
  restart(): Promise<void>;
  /**
   * Freezes the process (SIGSTOP): connections stay open, nothing is answered until `thaw`. A
   * stall that lasts exactly as long as the test wants, unlike CLIENT PAUSE (whose UNPAUSE waits
   * for the pause to end on Redis 7.0).
   */
  freeze(): void;
  /** Lets a frozen process go on (SIGCONT); what was sent meanwhile is answered then. */
  thaw(): void;
}

/** `extraArgs` go to redis-server after the defaults (e.g. `['--maxmemory', '8mb']`). */
export async function startRedisServer(port?: number, extraArgs: readonly string[] = []): Promise<RedisServer> {
  const p = port ?? (await freePort());
  let child: ChildProcess | null = null;
  const launch = async (): Promise<void> => {
    child = spawn(
      'redis-server',
      ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction', ...extraArgs],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + 10_000;
    for (;;) {
      const r = new Redis({ port: p, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      r.on('error', () => undefined); // the probe's failures are expected until the server listens
      try {
        await r.connect();
        await r.ping();
        r.disconnect();
        return;
      } catch {
        r.disconnect();
        if (Date.now() > deadline) throw new Error(`redis-server on port ${p} did not start`);
        await new Promise((res) => setTimeout(res, 50));
      }
    }
  };
  await launch();
  return {
    url: `redis://127.0.0.1:${p}`,
    port: p,
    async stop() {
      const c = child as ChildProcess | null;
      if (c === null || c.exitCode !== null || c.signalCode !== null) return;
      await new Promise<void>((res) => {
        c.once('exit', () => res());
        c.kill('SIGKILL');
      });
    },
    async restart() {
      await launch();
    },
    freeze() {
      (child as ChildProcess | null)?.kill('SIGSTOP');
    },
    thaw() {
      (child as ChildProcess | null)?.kill('SIGCONT');
    },
  };
}
