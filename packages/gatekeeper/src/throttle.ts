/**
 * Per-client token buckets in the edge Redis (docs/PROTOCOL.md §7; DEVIATION D11: throttling → 429), so
 * every gatekeeper replica enforces one budget. Two budgets: handshakes (/start_session,
 * /verify_session) and requests (/prove, /command). One Lua script, one round trip per request;
 * a budget whose burst is 0 is unlimited and costs nothing. The paper's strict rule (one handshake
 * per 10 s per IP) is HANDSHAKE_BURST_PER_IP=1, HANDSHAKE_RATE_PER_IP_PER_MIN=6.
 * Redis failure → StoreUnavailableError (`storeCall`): fail closed with 503, like every other edge-store step.
 */
import { storeCall, type LatencySink } from '@zax/service';
import type { EdgeKeys } from './keys.js';
import type { Budget } from './metrics.js';
import type { EdgeRedis } from './redis.js';

/** A bucket key outlives a full refill by this much (it is full, hence deletable, after that). */
const BUCKET_TTL_MARGIN_MS = 1000;

export interface BucketSpec {
  /** Bucket size; 0 = unlimited. */
  readonly burst: number;
  readonly ratePerMin: number;
}

export interface Throttle {
  /** Whether `budget` is limited at all (burst > 0). */
  limited(budget: Budget): boolean;
  /** Takes a token: 0 when granted, else whole seconds (≥ 1) until the client may try again. */
  take(budget: Budget, client: string, nowMs: number): Promise<number>;
}

export function createThrottle(
  redis: EdgeRedis,
  keys: EdgeKeys,
  specs: Readonly<Record<Budget, BucketSpec>>,
  observe: LatencySink = () => {},
): Throttle {
  const timer = { redisCall: (_op: 'throttle', seconds: number) => observe(seconds) };
  // Script arguments are fixed per budget: built once.
  const args = {} as Record<Budget, { burst: string; rate: string; ttl: string } | null>;
  for (const budget of ['handshake', 'request'] as const) {
    const { burst, ratePerMin } = specs[budget];
    args[budget] =
      burst === 0
        ? null
        : { burst: String(burst), rate: String(ratePerMin), ttl: String(Math.ceil((burst * 60_000) / ratePerMin) + BUCKET_TTL_MARGIN_MS) };
  }
  return {
    limited: (budget) => args[budget] !== null,
    async take(budget, client, nowMs) {
      const a = args[budget];
      if (a === null) return 0;
      const waitMs = await storeCall('throttle', () => redis.zaxGkThrottle(keys.bucket(budget, client), String(Math.floor(nowMs)), a.burst, a.rate, a.ttl), timer);
      return waitMs <= 0 ? 0 : Math.max(1, Math.ceil(waitMs / 1000));
    },
  };
}
