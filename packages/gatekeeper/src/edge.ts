/**
 * The gatekeeper's request context, built once per app from its dependencies: the stores, the core
 * client, the difficulty provider, the throttle, the body and response budgets, metrics and the
 * error path. Route handlers and guards receive it; nothing here is per request.
 */
import { errorPath, type ErrorPath, type Logger } from '@zax/service';
import type { Clock } from '@zax/protocol';
import type { IncomingMessage } from 'node:http';
import { clientIdentity } from './client-ip.js';
import type { Config } from './config.js';
import { createCoreClient, type CoreClient } from './core-client.js';
import { adaptiveDifficulty, type DifficultyController } from './difficulty-adaptive.js';
import { difficultyStore } from './difficulty-store.js';
import { staticDifficulty, type DifficultyProvider } from './difficulty.js';
import type { ForwardDeps } from './forward.js';
import type { HandshakeDeps } from './handshake/deps.js';
import { handshakeStore, type HandshakeStore } from './handshake/store.js';
import { edgeKeys } from './keys.js';
import { BodyWatch, ByteBudget } from './limits.js';
import type { Budget, GatekeeperMetrics } from './metrics.js';
import type { EdgeRedis } from './redis.js';
import { createThrottle, type Throttle } from './throttle.js';
import { transportOf, type TransportOf } from './transport.js';

export interface EdgeDeps {
  readonly config: Config;
  readonly redis: EdgeRedis;
  readonly clock: Clock;
  readonly random: (n: number) => Uint8Array;
  readonly log: Logger;
  readonly metrics: GatekeeperMetrics;
  readonly difficulty?: DifficultyProvider;
  readonly coreCa?: string | Buffer;
}

export interface Edge {
  readonly config: Config;
  readonly log: Logger;
  readonly metrics: GatekeeperMetrics;
  readonly redis: EdgeRedis;
  readonly store: HandshakeStore;
  readonly core: CoreClient;
  readonly difficulty: DifficultyProvider;
  /** The adaptive controller, when this app runs one (DIFFICULTY_PERIOD_MIN > 0). */
  readonly controller: DifficultyController | null;
  readonly throttle: Throttle;
  /** The client's throttle key (its address, or /64 for IPv6). */
  readonly identify: (req: IncomingMessage) => string;
  readonly transport: TransportOf;
  /** Request-body bytes in flight (MAX_BODY_BYTES_IN_FLIGHT, …_PER_IP). */
  readonly bodies: ByteBudget;
  /** The body-rate watch (BODY_MIN_BYTES_PER_SEC, BODY_IDLE_TIMEOUT_MS). */
  readonly watch: BodyWatch;
  readonly handshake: HandshakeDeps;
  readonly forward: ForwardDeps;
  /** The one error path: writes the refusal and returns its status. */
  readonly fail: ErrorPath;
  /** API requests in flight (MAX_IN_FLIGHT_REQUESTS). */
  inFlight: number;
  /** Whole milliseconds now. */
  nowMs(): number;
  /** Takes a token of `budget` for `client`: 0, or the seconds until it has one (counted as throttled). */
  takeToken(budget: Budget, client: string): Promise<number>;
  close(): Promise<void>;
}

export function createEdge(deps: EdgeDeps): Edge {
  const { config, redis, log, metrics } = deps;
  const keys = edgeKeys(config.edgeRedisPrefix);
  const observe = metrics.redis.bind(metrics);
  const store = handshakeStore(redis, keys, observe);
  const core = createCoreClient({
    coreUrl: config.coreUrl,
    internalSecret: config.internalSecret,
    timeoutMs: config.coreTimeoutMs,
    log,
    ...(deps.coreCa !== undefined ? { ca: deps.coreCa } : {}),
  });
  const { difficulty, controller } = difficultyOf(deps, core, observe, keys);
  metrics.difficulty(() => difficulty.last?.() ?? config.difficulty);
  metrics.difficultyMax(config.difficultyPeriodMin > 0 ? config.difficultyMax : 0);

  const throttle = createThrottle(
    redis,
    keys,
    {
      handshake: { burst: config.handshakeBurstPerIp, ratePerMin: config.handshakeRatePerIpPerMin },
      request: { burst: config.requestBurstPerIp, ratePerMin: config.requestRatePerIpPerMin },
    },
    metrics.redis('throttle'),
  );
  const bodies = new ByteBudget(config.maxBodyBytesInFlight, config.maxBodyBytesInFlightPerIp);
  const held = new ByteBudget(config.maxResponseBytesHeld, config.maxResponseBytesHeld);
  metrics.bytesInFlight(() => bodies.inFlight, () => held.inFlight);
  const watch = new BodyWatch({ minBytesPerSec: config.bodyMinBytesPerSec, graceMs: config.bodyGraceMs, idleTimeoutMs: config.bodyIdleTimeoutMs });
  const nowMs = (): number => Math.floor(deps.clock.nowMs());

  const edge: Edge = {
    config,
    log,
    metrics,
    redis,
    store,
    core,
    difficulty,
    controller,
    throttle,
    identify: clientIdentity(config),
    transport: transportOf(config),
    bodies,
    watch,
    handshake: { config, store, clock: deps.clock, random: deps.random, difficulty, core, log, metrics },
    forward: {
      core,
      store,
      log,
      held,
      armWriteTimeout: (res) =>
        res.setTimeout(config.writeTimeoutMs, () => {
          metrics.writeTimeout();
          res.destroy();
        }),
    },
    fail: errorPath({
      retryAfterSec: config.busyRetryAfterSec,
      unexpected: 'busy',
      log,
    }),
    inFlight: 0,
    nowMs,
    async takeToken(budget, client) {
      if (!throttle.limited(budget)) return 0;
      const waitSec = await throttle.take(budget, client, nowMs());
      if (waitSec > 0) metrics.throttled(budget);
      return waitSec;
    },
    async close() {
      await controller?.stop();
      watch.close();
      core.close();
    },
  };
  metrics.inFlight(() => edge.inFlight);
  return edge;
}

/**
 * The difficulty provider: the one given, else the adaptive controller (started here, stopped by
 * close) when DIFFICULTY_PERIOD_MIN > 0, else the static DIFFICULTY.
 */
function difficultyOf(
  deps: EdgeDeps,
  core: CoreClient,
  observe: GatekeeperMetrics['redis'],
  keys: ReturnType<typeof edgeKeys>,
): { difficulty: DifficultyProvider; controller: DifficultyController | null } {
  const { config } = deps;
  if (deps.difficulty !== undefined) return { difficulty: deps.difficulty, controller: null };
  if (config.difficultyPeriodMin <= 0) return { difficulty: staticDifficulty(config.difficulty), controller: null };
  const adaptive = adaptiveDifficulty({
    store: difficultyStore(deps.redis, keys, observe),
    clock: deps.clock,
    policy: {
      base: config.difficulty,
      minRequests: config.difficultyMinRequests,
      factor: config.difficultyOverloadFactor,
      step: config.difficultyStep,
      max: config.difficultyMax,
      latencyP99Ms: config.difficultyLatencyP99Ms,
      eventLoopUtilization: config.difficultyEventLoopUtilization,
      memoryRatio: config.difficultyMemoryRatio,
      releaseRatio: config.difficultyReleaseRatio,
    },
    periodMs: Math.max(1, Math.round(config.difficultyPeriodMin * 60_000)),
    graceMs: config.difficultyGraceSec * 1000,
    cacheMs: config.difficultyCacheMs,
    leaseMs: config.difficultyLeaseMs,
    loadReport: () => core.load(),
    log: deps.log,
    metrics: deps.metrics,
  });
  adaptive.controller.start();
  return { difficulty: adaptive.provider, controller: adaptive.controller };
}
