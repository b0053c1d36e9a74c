/**
 * Starts and stops a private, memory-only `redis-server` (@zax/service's RedisServer) on a free
 * loopback port, for tests and for fault tests that stop or freeze Redis on purpose. Never touches
 * the machine's shared Redis.
 */
import { RedisServer as PrivateRedis } from '@zax/service';

export { freePort } from '@zax/service';

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
  const server = await PrivateRedis.start({ port, args: extraArgs, readyTimeoutMs: 10_000 });
  return {
    url: server.url,
    port: server.port,
    stop: () => server.stop(),
    restart: () => server.restart(),
    freeze: () => server.signal('SIGSTOP'),
    thaw: () => server.signal('SIGCONT'),
  };
}
