/**
 * Adaptive difficulty across replicas (docs/PROTOCOL.md §3.4, docs/DESIGN.md "Who owns which state").
 *
 * - Every replica counts its successful /start_session and /verify_session calls per period in
 *   memory and adds them to the period's counter in the edge Redis on every tick (no Redis call on
 *   the request path).
 * - One replica at a time holds a short lease. At each period boundary (plus a settling delay, so
 *   every replica's counts are in) it reads the last three counters, polls the core's
 *   `GET /internal/load`, computes the next value (difficulty.ts `nextDifficulty`) and publishes it
 *   with the changes of the last grace window. The write is fenced by the lease and the period.
 * - Every replica reads the published value, cached for DIFFICULTY_CACHE_MS, so all announce the
 *   same difficulty; a proof is accepted at any difficulty in effect during the last
 *   DIFFICULTY_GRACE_SEC (for a change to or from 0, both kinds of answer). A cache may predate a
 *   change another replica already announces, so a verify that fits nothing cached reads the
 *   published value once more before refusing.
 * - A core that cannot be reached (or does not serve /internal/load yet: 404) leaves the
 *   core-pressure part where it is; the handshake-count rule goes on. The gatekeeper stays ready.
 */
import { randomBytes } from 'node:crypto';
import type { Clock, LoadReport } from '@zax/protocol';
import { memoryRatio, nextDifficulty, type DifficultyPolicy, type DifficultyProvider } from './difficulty.js';
import type { DifficultyChange, DifficultyState, DifficultyStore } from './difficulty-store.js';
import { everyInterval, type Logger } from '@zax/service';
import type { GatekeeperMetrics } from './metrics.js';

/** Most changes kept in the published state, however short the periods. */
const MAX_CHANGES = 32;

export interface AdaptiveOptions {
  readonly store: DifficultyStore;
  readonly clock: Clock;
  readonly policy: DifficultyPolicy;
  /** DIFFICULTY_PERIOD_MIN in ms; > 0. */
  readonly periodMs: number;
  /** DIFFICULTY_GRACE_SEC in ms. */
  readonly graceMs: number;
  /** DIFFICULTY_CACHE_MS */
  readonly cacheMs: number;
  /** DIFFICULTY_LEASE_MS */
  readonly leaseMs: number;
  /** The core's load, or null when it cannot be had (unreachable, 404, bad body). */
  readonly loadReport: () => Promise<LoadReport | null>;
  readonly log: Logger;
  readonly metrics: GatekeeperMetrics;
  /** Lease owner id. @default random */
  readonly owner?: string;
}

export interface DifficultyController {
  readonly owner: string;
  /** Interval of the background loop, ms. */
  readonly tickMs: number;
  /** Whether this replica held the lease at its last attempt. */
  readonly leader: boolean;
  /** One round: flush counts, take or renew the lease, evaluate a finished period if leader. */
  tick(): Promise<void>;
  /** Starts the background loop (unref'd timer). */
  start(): void;
  /** Stops the loop, flushes counts and gives up the lease. */
  stop(): Promise<void>;
}

export interface AdaptiveDifficulty {
  readonly provider: DifficultyProvider;
  readonly controller: DifficultyController;
}

interface Cached {
  readonly state: DifficultyState | null;
  readonly readAtMs: number;
}

export function adaptiveDifficulty(o: AdaptiveOptions): AdaptiveDifficulty {
  const { store, clock, policy, periodMs, graceMs, log, metrics } = o;
  const base = policy.base;
  const clamp = (d: number): number => Math.max(base, Math.min(policy.max, d));

  // ---- reader (every replica) ----
  let cached: Cached | null = null;
  let reading: Promise<void> | null = null;
  let lastAnnounced = base;
  const warnRead = everyInterval(5000, (skipped) => log.warn({ skipped }, 'cannot read the difficulty from the edge redis; keeping the last value'));

  const refresh = (nowMs: number): Promise<void> =>
    (reading ??= store
      .read()
      .then((state) => {
        cached = { state, readAtMs: nowMs };
        acceptedMemo = null;
      })
      .catch(() => {
        // Keep the last value; try again on the next call after a short pause.
        warnRead();
        if (cached !== null) cached = { state: cached.state, readAtMs: nowMs - o.cacheMs + Math.min(o.cacheMs, 250) };
      })
      .finally(() => {
        reading = null;
      }));

  const stale = (nowMs: number, maxAgeMs: number): boolean =>
    cached === null || nowMs - cached.readAtMs >= maxAgeMs || nowMs < cached.readAtMs;

  const currentOf = (c: Cached | null): number => clamp(c?.state?.d ?? base);

  /** The accepted list for the cached state, valid until `untilMs` (then a grace entry lapses). */
  let acceptedMemo: { list: readonly number[]; untilMs: number; fromMs: number } | null = null;
  const acceptedOf = (nowMs: number): readonly number[] => {
    if (acceptedMemo !== null && nowMs < acceptedMemo.untilMs && nowMs >= acceptedMemo.fromMs) return acceptedMemo.list;
    const d = currentOf(cached);
    let zero = d === 0;
    let easiest = d === 0 ? Infinity : d;
    let untilMs = Infinity;
    for (const c of cached?.state?.changes ?? []) {
      if (nowMs - c.atMs >= graceMs) continue;
      untilMs = Math.min(untilMs, c.atMs + graceMs);
      if (c.from === 0) zero = true;
      else easiest = Math.min(easiest, c.from);
    }
    // Non-zero difficulties nest (an answer with 8 low zero bits has 4), so the easiest one is
    // enough; 0 is a different kind of answer and is kept beside it.
    const list: number[] = [];
    if (zero) list.push(0);
    if (easiest !== Infinity) list.push(easiest);
    acceptedMemo = { list: Object.freeze(list), untilMs, fromMs: nowMs };
    return acceptedMemo.list;
  };

  const provider: DifficultyProvider = {
    async current(nowMs) {
      if (stale(nowMs, o.cacheMs)) await refresh(nowMs);
      return (lastAnnounced = currentOf(cached));
    },
    async accepted(nowMs, fresh) {
      if (fresh === true) {
        // The answer may have been solved against a change published after the cache was read,
        // however young the cache: only a read sent after this call is sure to see it. A read
        // already under way may have been answered before the change: wait for it and read again
        // (the calls that arrive meanwhile share that one read).
        if (reading !== null) await reading;
        await refresh(nowMs);
      } else if (stale(nowMs, o.cacheMs)) {
        await refresh(nowMs);
      }
      return acceptedOf(nowMs);
    },
    last: () => lastAnnounced,
    recordHandshake(nowMs) {
      const p = Math.floor(nowMs / periodMs);
      pending.set(p, (pending.get(p) ?? 0) + 1);
    },
  };

  // ---- counting (every replica) ----
  const pending = new Map<number, number>();
  const counterTtlMs = 4 * periodMs + 60_000;
  const flush = async (): Promise<void> => {
    const nowPeriod = Math.floor(clock.nowMs() / periodMs);
    for (const [p, n] of [...pending]) {
      pending.delete(p);
      try {
        await store.addCount(p, n, counterTtlMs);
      } catch {
        // Put them back for the next tick unless they are too old to matter.
        if (p > nowPeriod - 3) pending.set(p, (pending.get(p) ?? 0) + n);
      }
    }
  };

  // ---- controller (the lease holder) ----
  const owner = o.owner ?? randomBytes(8).toString('hex');
  const tickMs = Math.max(50, Math.min(1000, Math.round(periodMs / 8)));
  /** A period is evaluated this long after it ends: every replica has flushed its counts by then. */
  const settleMs = tickMs + 250;
  const stateTtlMs = Math.max(3_600_000, 10 * periodMs, 2 * graceMs);
  let leader = false;
  let lastLeaseAttemptMs = -Infinity;
  let lastEvaluated = -Infinity;
  let evaluating: Promise<void> | null = null;
  let timer: NodeJS.Timeout | null = null;
  const warnTick = everyInterval(5000, (skipped) => log.warn({ skipped }, 'difficulty controller: edge redis unavailable'));

  const evaluate = async (nowMs: number): Promise<void> => {
    const q = Math.floor((nowMs - settleMs) / periodMs) - 1;
    if (q <= lastEvaluated) return;
    const state = await store.read();
    if (state !== null && state.period >= q) {
      lastEvaluated = state.period;
      return;
    }
    const reportP = o.loadReport().catch(() => null);
    const counts = await store.counts([q, q - 1, q - 2]);
    const report = await reportP;
    metrics.coreLoadPoll(report === null ? 'unavailable' : 'ok');
    if (report !== null) metrics.coreLoad(report.latencyP99Ms, report.eventLoopUtilization, memoryRatio(report));
    const prev = state ?? { d: base, boost: 0, period: -1, changes: [] };
    const step = nextDifficulty(prev, [counts[0]!, counts[1]!, counts[2]!], report, policy);
    const changes: DifficultyChange[] = prev.changes.filter((c) => nowMs - c.atMs < graceMs);
    if (step.d !== prev.d) changes.push({ atMs: nowMs, from: prev.d, to: step.d });
    const next: DifficultyState = { d: step.d, boost: step.boost, period: q, changes: changes.slice(-MAX_CHANGES) };
    const written = await store.write(owner, next, nowMs, stateTtlMs);
    lastEvaluated = q;
    if (!written) return;
    metrics.difficultyEvaluated();
    // The leader announces its own decision at once; the others within DIFFICULTY_CACHE_MS.
    cached = { state: next, readAtMs: nowMs };
    acceptedMemo = null;
    const fields = { period: q, counts, load: step.load, rule: step.rule, boost: step.boost, pressure: step.pressure };
    if (step.d !== prev.d) log.info({ from: prev.d, to: step.d, ...fields }, 'difficulty changed');
    else log.debug({ d: step.d, ...fields }, 'difficulty evaluated');
  };

  const leaderStep = async (): Promise<void> => {
    const nowMs = clock.nowMs();
    if (nowMs - lastLeaseAttemptMs >= o.leaseMs / 3 || nowMs < lastLeaseAttemptMs) {
      lastLeaseAttemptMs = nowMs;
      try {
        leader = await store.lease(owner, o.leaseMs);
      } catch {
        leader = false;
        warnTick();
      }
      metrics.setLeader(leader);
    }
    if (!leader) return;
    try {
      await evaluate(nowMs);
    } catch {
      warnTick();
    }
  };

  const controller: DifficultyController = {
    owner,
    tickMs,
    get leader() {
      return leader;
    },
    async tick() {
      await flush();
      evaluating ??= leaderStep().finally(() => {
        evaluating = null;
      });
      await evaluating;
    },
    start() {
      if (timer !== null) return;
      timer = setInterval(() => void controller.tick(), tickMs);
      timer.unref();
      void controller.tick();
    },
    async stop() {
      if (timer !== null) clearInterval(timer);
      timer = null;
      await evaluating;
      await flush();
      if (leader) {
        leader = false;
        metrics.setLeader(false);
        await store.release(owner).catch(() => undefined);
      }
    },
  };

  return { provider, controller };
}
