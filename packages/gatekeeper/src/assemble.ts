/**
 * The parts of a gatekeeper both of its hosts build the same way — its own process (main.ts) and
 * an application that mounts it (mount.ts): the edge Redis connection, waited for when it is a
 * cluster or sentinel group, and the app over it. The hosts differ in what surrounds it: the
 * process owns sockets, TLS and signals; a mounted gatekeeper only hands out its handler.
 */
import { randomBytes, systemClock } from '@zax/protocol';
import { describeTopology, type Logger } from '@zax/service';
import { createApp, type App, type AppDeps } from './app.js';
import type { Config } from './config.js';
import { connectRedis, redisReady, type EdgeRedis } from './redis.js';

export interface AssembledGatekeeper {
  readonly app: App;
  readonly redis: EdgeRedis;
  /** Stops the app (hands over the difficulty lease), then closes the edge Redis. */
  close(): Promise<void>;
}

/**
 * Connects the edge store and builds the app. A cluster or sentinel group none of whose listed
 * nodes answers within REDIS_STARTUP_WAIT_SEC is a wrong seed list: the connection is dropped and
 * this throws. (A single Redis may be starting after the gatekeeper: requests get 503 until it is up.)
 */
export async function assembleGatekeeper(
  config: Config,
  log: Logger,
  extras: Pick<AppDeps, 'metrics' | 'coreCa' | 'dashboard'> = {},
): Promise<AssembledGatekeeper> {
  const redis = connectRedis(config.edgeRedis, { commandTimeoutMs: config.redisCommandTimeoutMs, log });
  if (config.edgeRedis.kind !== 'single') {
    try {
      await redisReady(redis, config.redisStartupWaitSec * 1000);
    } catch {
      redis.disconnect();
      throw new Error(`cannot reach the edge store within ${config.redisStartupWaitSec} s (REDIS_STARTUP_WAIT_SEC): check the seed list (${describeTopology(config.edgeRedis)})`);
    }
  }
  const app = createApp({ config, redis, clock: systemClock, random: randomBytes, log, ...withoutUndefined(extras) });
  return {
    app,
    redis,
    close: async () => {
      await app.close();
      await redis.quit().then(
        () => undefined,
        () => redis.disconnect(),
      );
    },
  };
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
