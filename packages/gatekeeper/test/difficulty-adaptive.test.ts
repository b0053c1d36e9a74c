/**
 * Adaptive difficulty across replicas on real Redis with an injected clock (difficulty-adaptive.ts):
 * the lease (one replica writes), handshake counts summed over replicas, the core's load report
 * (404 today), the per-replica cache, and the grace window of docs/PROTOCOL.md §3.4 (§8.25, §8.26)
 * through the HTTP app.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { b64, h2, hasLowZeroBits, type LoadReport } from '@zax/protocol';
import { dropPrefix, freshPrefix } from '../../../test/support/prefix.js';
import { adaptiveDifficulty, type AdaptiveDifficulty, type AdaptiveOptions } from '../src/difficulty-adaptive.js';
import { difficultyStore, type DifficultyState, type DifficultyStore } from '../src/difficulty-store.js';
import { edgeKeys } from '../src/keys.js';
import { createMetrics, type GatekeeperMetrics, type RedisOp } from '../src/metrics.js';
import { connectRedis, redisReady, type EdgeRedis } from '../src/redis.js';
import { FAKE_PK, post, silentLog, startFakeCore, startGatekeeper, testClock, type FakeCore, type Gatekeeper } from './helpers.js';

const PERIOD_MS = 60_000;
/** A period boundary, so that the arithmetic below reads plainly. */
const T0 = Math.ceil(1_700_000_000_000 / PERIOD_MS) * PERIOD_MS;
/** tick = min(1000, period/8); a period is evaluated tick + 250 ms after it ends. */
const SETTLE_MS = 1250;
const GRACE_MS = 65_000;

let redis: EdgeRedis;
let prefix: string;
const clock = testClock(T0);
const stacks: AdaptiveDifficulty[] = [];

beforeEach(async () => {
  clock.ms = T0;
  prefix = freshPrefix('gk-dc');
  redis = connectRedis(inject('redisUrl'), { commandTimeoutMs: 1000 });
  await redisReady(redis);
});
afterEach(async () => {
  await Promise.all(stacks.splice(0).map((s) => s.controller.stop()));
  await dropPrefix(inject('redisUrl'), prefix);
  redis.disconnect();
});

interface StackOptions {
  base?: number;
  step?: number;
  max?: number;
  loadReport?: AdaptiveOptions['loadReport'];
  metrics?: GatekeeperMetrics;
  cacheMs?: number;
  /** @default the real store over the test prefix */
  store?: DifficultyStore;
}

/** One replica's provider + controller over the shared prefix (policy: min 10, f 2). */
function stack(o: StackOptions = {}): AdaptiveDifficulty {
  const s = adaptiveDifficulty({
    store: o.store ?? difficultyStore(redis, edgeKeys(prefix)),
    clock,
    policy: {
      base: o.base ?? 4,
      minRequests: 10,
      factor: 2,
      step: o.step ?? 3,
      max: o.max ?? 20,
      latencyP99Ms: 1000,
      eventLoopUtilization: 0.85,
      memoryRatio: 0.8,
      releaseRatio: 0.75,
    },
    periodMs: PERIOD_MS,
    graceMs: GRACE_MS,
    cacheMs: o.cacheMs ?? 1000,
    leaseMs: 10_000,
    loadReport: o.loadReport ?? (async () => null),
    log: silentLog,
    metrics: o.metrics ?? createMetrics(),
  });
  stacks.push(s);
  return s;
}

/** Moves the clock to just after the current period has ended and settled. */
function endPeriod(): void {
  clock.ms = (Math.floor(clock.ms / PERIOD_MS) + 1) * PERIOD_MS + SETTLE_MS;
}

const record = (s: AdaptiveDifficulty, n: number): void => {
  for (let i = 0; i < n; i++) s.provider.recordHandshake!(clock.ms);
};

const state = (): Promise<Record<string, string>> => redis.hgetall(`${prefix}{difficulty}:state`);

describe('lease and counting', () => {
  it('two controllers: one holds the lease and writes; handshakes are summed over both replicas', async () => {
    const mA = createMetrics();
    const mB = createMetrics();
    const a = stack({ metrics: mA });
    const b = stack({ metrics: mB });
    await a.controller.tick(); // takes the lease and publishes the last settled (empty) period: the base
    await b.controller.tick();
    expect([a.controller.leader, b.controller.leader]).toEqual([true, false]);
    expect(await redis.get(`${prefix}{difficulty}:lease`)).toBe(a.controller.owner);
    const first = await state();
    expect(first).toMatchObject({ d: '4', boost: '0', changes: '' });

    record(a, 12);
    record(b, 8); // 20 in all → base 4 + ⌊3·log2(2) + 0.5⌋ = 7
    endPeriod();
    await b.controller.tick(); // flushes b's counts; not the leader: writes nothing
    expect(await state()).toEqual(first);
    await a.controller.tick();
    expect(await state()).toMatchObject({ d: '7', period: String(T0 / PERIOD_MS) });
    const evaluations = async (m: GatekeeperMetrics): Promise<number> =>
      (await m.registry.getSingleMetric('zax_gatekeeper_difficulty_evaluations_total')!.get()).values[0]!.value;
    expect(await evaluations(mA)).toBe(2);
    expect(await evaluations(mB)).toBe(0);

    // both replicas announce it (b once its cache has aged)
    expect(await a.provider.current(clock.ms)).toBe(7);
    expect(await b.provider.current(clock.ms)).toBe(7);

    // a second tick in the same period evaluates nothing again
    await a.controller.tick();
    expect(await evaluations(mA)).toBe(2);
  });

  it('hands over: when the leader stops (releasing the lease) the other takes over and goes on', async () => {
    const a = stack();
    const b = stack();
    await a.controller.tick();
    await b.controller.tick();
    record(b, 40); // → 10
    endPeriod();
    await b.controller.tick();
    await a.controller.tick();
    expect((await state()).d).toBe('10');

    await a.controller.stop();
    expect(await redis.get(`${prefix}{difficulty}:lease`)).toBeNull();
    clock.ms += 4000; // a lease attempt is due (every leaseMs/3)
    await b.controller.tick();
    expect(b.controller.leader).toBe(true);
    endPeriod(); // C1 = 0, C2 = 40 → load 20 → rule 7: one step down
    await b.controller.tick();
    expect((await state()).d).toBe('7');
  });

  it('a controller that lost the lease writes nothing (the write is fenced)', async () => {
    const a = stack();
    await a.controller.tick();
    const before = await state();
    await redis.set(`${prefix}{difficulty}:lease`, 'someone-else');
    record(a, 40);
    endPeriod();
    await a.controller.tick(); // still believes it leads until its next lease attempt
    expect(await state()).toEqual(before);
    clock.ms += 4000;
    await a.controller.tick();
    expect(a.controller.leader).toBe(false);
  });

  it('keeps at most three periods of counters, each with a TTL', async () => {
    const a = stack();
    record(a, 3);
    await a.controller.tick();
    const key = `${prefix}{difficulty}:n:${T0 / PERIOD_MS}`;
    expect(await redis.get(key)).toBe('3');
    expect(await redis.pttl(key)).toBeGreaterThan(4 * PERIOD_MS);
  });
});

describe('the rule over time (base 4, min 10, f 2, step 3)', () => {
  it('rises with load, holds, and falls one step per period once the load is gone', async () => {
    const a = stack();
    await a.controller.tick();
    const timeline: number[] = [];
    for (const n of [9, 20, 40, 40, 0, 0, 0, 0, 0]) {
      record(a, n);
      endPeriod();
      await a.controller.tick();
      timeline.push(await a.provider.current(clock.ms));
    }
    // loads:  9, 24, 53, 66, 33, 13, 0, 0, 0
    // rules:  4,  7, 11, 12,  9,  4, 4, 4, 4
    // lowered at most one step (3) per period: 12 → 9 → 6 → 4
    expect(timeline).toEqual([4, 7, 11, 12, 9, 6, 4, 4, 4]);
  });
});

describe('the core load report', () => {
  const hot: LoadReport = {
    v: 1,
    periodStartMs: T0,
    periodEndMs: T0 + PERIOD_MS,
    replicas: 1,
    mints: 5,
    commands: 50,
    eventLoopUtilization: 0.97,
    latencyP99Ms: 40,
    redisUsedMemoryBytes: 1,
    redisMaxMemoryBytes: 0,
  };

  it('pushes the difficulty up one step per period while a signal is over its threshold, then releases it', async () => {
    let report: LoadReport | null = null;
    const a = stack({ loadReport: async () => report });
    await a.controller.tick();
    report = hot;
    const seen: number[] = [];
    for (let i = 0; i < 2; i++) {
      endPeriod();
      await a.controller.tick();
      seen.push(await a.provider.current(clock.ms));
    }
    report = null; // core unreachable: the push stays where it is
    endPeriod();
    await a.controller.tick();
    seen.push(await a.provider.current(clock.ms));
    report = { ...hot, eventLoopUtilization: 0.1 };
    for (let i = 0; i < 3; i++) {
      endPeriod();
      await a.controller.tick();
      seen.push(await a.provider.current(clock.ms));
    }
    expect(seen).toEqual([7, 10, 10, 7, 4, 4]);
  });
});

describe('the reader cache', () => {
  it('a replica announces a change within DIFFICULTY_CACHE_MS', async () => {
    const leader = stack();
    const other = stack({ cacheMs: 1000 });
    await leader.controller.tick();
    record(leader, 40);
    endPeriod();
    expect(await other.provider.current(clock.ms)).toBe(4); // read just before the change
    await leader.controller.tick();
    const changedAt = clock.ms;
    expect(await leader.provider.current(changedAt)).toBe(10);
    expect(await other.provider.current(changedAt + 999)).toBe(4); // its cache is younger than 1 s
    expect(await other.provider.current(changedAt + 1000)).toBe(10);
  });
});

/** Finds a diff_nonce valid at `lo` but not at `hi` for these tokens. */
function nonceBetween(ct: Buffer, rt: Buffer, lo: number, hi: number): Buffer {
  for (let i = 0; ; i++) {
    const n = Buffer.alloc(32);
    n.writeUInt32LE(i);
    const h = h2(ct, rt, n);
    if (hasLowZeroBits(h, lo) && !hasLowZeroBits(h, hi)) return n;
  }
}

describe('grace window through HTTP (§3.4 "Difficulty changes")', () => {
  const CT = Buffer.alloc(32, 0x31);
  const RT = Buffer.alloc(32, 0x41);
  const ID = b64(h2(CT));
  const ZERO_ANSWER = b64(h2(CT, RT));
  let core: FakeCore;
  let gk: Gatekeeper;
  beforeEach(async () => {
    core = await startFakeCore();
  });
  afterEach(async () => {
    await gk.close();
    await core.close();
  });

  const startGk = async (s: AdaptiveDifficulty): Promise<void> => {
    gk = await startGatekeeper({ coreUrl: core.url, clock, difficulty: s.provider, random: (n) => RT.subarray(0, n), env: { DIFFICULTY_GRACE_SEC: '65' } });
  };
  const verify = async (answer: string): Promise<number> => (await post(gk.port, '/verify_session', `${ID}\r\n${answer}`)).status;
  const announced = async (): Promise<string> => (await post(gk.port, '/start_session', b64(CT))).body.split('\r\n')[1]!;

  it('§8.25: after a change from 4 to 8, an answer valid at 4 is accepted for DIFFICULTY_GRACE_SEC, then rejected', async () => {
    const s = stack({ base: 4, step: 2 }); // load 40 → 4 + ⌊2·2 + 0.5⌋ = 8
    await startGk(s);
    await s.controller.tick();
    expect(await announced()).toBe('4');
    record(s, 40);
    endPeriod();
    await s.controller.tick();
    const changedAt = clock.ms;
    expect(await announced()).toBe('8');

    const at4 = b64(nonceBetween(CT, RT, 4, 8));
    const at8 = b64(nonceBetween(CT, RT, 8, 256));
    expect(await verify(at4)).toBe(200);
    expect(await verify(at8)).toBe(200);
    clock.ms = changedAt + GRACE_MS - 1;
    expect(await verify(at4)).toBe(200);
    clock.ms = changedAt + GRACE_MS;
    expect(await verify(at4)).toBe(401);
    expect(await verify(at8)).toBe(200);
    expect(core.mints).toHaveLength(1);
    // the answer is FAKE_PK throughout (the mint happened once; repeats come from the edge record)
    expect((await post(gk.port, '/verify_session', `${ID}\r\n${at8}`)).body).toBe(FAKE_PK);
  });

  it('§8.26: after a change from 0 to 4, both h2(ct‖rt) and a valid d=4 nonce are accepted in the window; afterwards only the nonce', async () => {
    const s = stack({ base: 0, step: 2 }); // load 40 → 0 + ⌊4.5⌋ = 4
    await startGk(s);
    await s.controller.tick();
    expect(await announced()).toBe('0');
    record(s, 40);
    endPeriod();
    await s.controller.tick();
    const changedAt = clock.ms;
    expect(await announced()).toBe('4');
    const nonce4 = b64(nonceBetween(CT, RT, 4, 256));
    expect(await verify(ZERO_ANSWER)).toBe(200);
    expect(await verify(nonce4)).toBe(200);
    clock.ms = changedAt + GRACE_MS;
    expect(await verify(nonce4)).toBe(200);
    const zeroStillFits = hasLowZeroBits(h2(CT, RT, h2(CT, RT)), 4);
    expect(await verify(ZERO_ANSWER)).toBe(zeroStillFits ? 200 : 401);
  });

  it('after a change from 4 to 0, both kinds are accepted in the window; afterwards only h2(ct‖rt)', async () => {
    const s = stack({ base: 0, step: 4 }); // load 20 → 4; a quiet period → 0 (one step of 4)
    await startGk(s);
    await s.controller.tick();
    record(s, 20);
    endPeriod();
    await s.controller.tick();
    expect(await announced()).toBe('4');
    clock.ms += 2 * GRACE_MS; // the 0 → 4 window is long over
    endPeriod(); // load ≤ 10 → rule 0: one step of 4 down
    await s.controller.tick();
    const changedAt = clock.ms;
    expect(await announced()).toBe('0');
    expect((await state()).changes).toBe(`${changedAt}:4:0`);
    const nonce4 = b64(nonceBetween(CT, RT, 4, 256));
    clock.ms = changedAt + 1000;
    expect(await verify(nonce4)).toBe(200);
    expect(await verify(ZERO_ANSWER)).toBe(200);
    clock.ms = changedAt + GRACE_MS;
    expect(await verify(nonce4)).toBe(401);
    expect(await verify(ZERO_ANSWER)).toBe(200);
  });
});

/** The real store, counting its state reads (the fresh re-read of /verify_session is one). */
function countingStore(): { store: DifficultyStore; reads: () => number } {
  let reads = 0;
  const observe = (op: RedisOp) => (): void => {
    if (op === 'difficulty_read') reads++;
  };
  return { store: difficultyStore(redis, edgeKeys(prefix), observe), reads: () => reads };
}

/**
 * The real store, whose state reads can be held: a read goes to Redis at once, its answer is
 * delivered only on release (a read under way while the leader publishes).
 */
function holdableStore(): { store: DifficultyStore; hold(): void; release(): void; sent: Promise<DifficultyState | null>[] } {
  const real = difficultyStore(redis, edgeKeys(prefix));
  let gate: Promise<void> | null = null;
  let open = (): void => {};
  const sent: Promise<DifficultyState | null>[] = [];
  return {
    sent,
    hold() {
      gate = new Promise((resolve) => (open = resolve));
    },
    release() {
      open();
      gate = null;
    },
    store: {
      ...real,
      read() {
        const answer = real.read();
        sent.push(answer);
        const g = gate;
        return g === null ? answer : answer.then(async (state) => (await g, state));
      },
    },
  };
}

describe('the fresh re-read before a refusal (two replicas, §3.4 "Difficulty changes")', () => {
  // A client starts on the leader just after it published 0 → 6 and verifies on the other replica,
  // whose cache, read before the change, is `age` ms old (DIFFICULTY_CACHE_MS 1000).
  const CT = Buffer.alloc(32, 0x51);
  const RT = Buffer.alloc(32, 0x61);
  const ID = b64(h2(CT));
  let core: FakeCore;
  const gks: Gatekeeper[] = [];
  beforeEach(async () => {
    core = await startFakeCore();
  });
  afterEach(async () => {
    await Promise.all(gks.splice(0).map((g) => g.close()));
    await core.close();
  });
  const replica = async (s: AdaptiveDifficulty): Promise<Gatekeeper> => {
    const gk = await startGatekeeper({ coreUrl: core.url, clock, prefix, difficulty: s.provider, random: (n) => RT.subarray(0, n), env: { DIFFICULTY_GRACE_SEC: '65' } });
    gks.push(gk);
    return gk;
  };

  it.each([0, 1, 50, 99, 100, 500, 999])('a cache %i ms old that predates the change: an answer at the announced difficulty is accepted', async (age) => {
    const leader = stack({ base: 0, step: 3 }); // load 40 → 0 + ⌊3·2 + 0.5⌋ = 6
    const reads = countingStore();
    const other = stack({ base: 0, step: 3, cacheMs: 1000, store: reads.store });
    const a = await replica(leader);
    const b = await replica(other);
    await leader.controller.tick();
    record(leader, 40);
    endPeriod();
    const readAt = clock.ms;
    // b reads the state (0) for an announcement, just before the leader publishes
    expect((await post(b.port, '/start_session', b64(Buffer.alloc(32, 0x52)))).body.split('\r\n')[1]).toBe('0');
    await leader.controller.tick();
    expect((await state()).changes).toBe(`${readAt}:0:6`);
    clock.ms = readAt + age;
    expect((await post(a.port, '/start_session', b64(CT))).body.split('\r\n')[1]).toBe('6');
    expect(await other.provider.current(clock.ms)).toBe(0); // still the cached value

    const before = reads.reads();
    const r = await post(b.port, '/verify_session', `${ID}\r\n${b64(nonceBetween(CT, RT, 6, 256))}`);
    expect(r.status).toBe(200);
    expect(r.body).toBe(FAKE_PK);
    expect(reads.reads() - before).toBe(1); // one re-read, after the cached list did not fit
    expect(await other.provider.current(clock.ms)).toBe(6); // and the cache took the new value

    // an answer that fits nothing is still refused, after one re-read of its own
    const wrong = b64(nonceBetween(CT, RT, 0, 1)); // not h2(ct‖rt), not even 1 zero bit
    const refused = await post(b.port, '/verify_session', `${ID}\r\n${wrong}`);
    expect(refused.status).toBe(401);
    expect(reads.reads() - before).toBe(2);
    expect(core.mints).toHaveLength(1);
  });

  it('a re-read waits for a read already under way (it may predate the change) and reads again', async () => {
    const leader = stack({ base: 0, step: 3 });
    const held = holdableStore();
    const other = stack({ base: 0, step: 3, cacheMs: 1000, store: held.store });
    await leader.controller.tick();
    record(leader, 40);
    endPeriod();
    expect(await other.provider.current(clock.ms)).toBe(0);
    clock.ms += 500;
    held.hold();
    // a verify that fitted nothing (a wrong answer) re-reads: Redis answers 0, held back
    const first = other.provider.accepted(clock.ms, true);
    expect(await held.sent.at(-1)).toMatchObject({ d: 0 });
    await leader.controller.tick(); // publishes 0 → 6
    // a verify of an answer at 6 (announced by the leader) that does not fit the cached 0
    const second = other.provider.accepted(clock.ms, true);
    held.release();
    expect(await first).toEqual([0]);
    expect(await second).toEqual([0, 6]);
    expect(held.sent).toHaveLength(3);
  });
});

describe('in the app', () => {
  it('DIFFICULTY_PERIOD_MIN=0 (the default) is the static DIFFICULTY: no controller, no difficulty keys', async () => {
    const gk = await startGatekeeper({ env: { DIFFICULTY: '3' } });
    try {
      expect(gk.app.controller).toBeNull();
      expect((await post(gk.port, '/start_session', b64(Buffer.alloc(32, 1)))).body.endsWith('\r\n3')).toBe(true);
      expect(await gk.redis.keys(`${gk.prefix}{difficulty}*`)).toEqual([]);
    } finally {
      await gk.close();
    }
  });

  it('polls the core with the secret; a 404 (no /internal/load yet) leaves the count rule working and the gatekeeper ready', async () => {
    const core = await startFakeCore();
    const c = testClock(T0);
    const gk = await startGatekeeper({
      coreUrl: core.url,
      clock: c,
      env: { DIFFICULTY_PERIOD_MIN: '1', DIFFICULTY: '2', DIFFICULTY_MIN_REQUESTS: '3', DIFFICULTY_STEP: '2' },
    });
    try {
      const ctrl = gk.app.controller!;
      expect(ctrl).not.toBeNull();
      await ctrl.tick();
      for (let i = 0; i < 6; i++) expect((await post(gk.port, '/start_session', b64(Buffer.alloc(32, i)))).status).toBe(200);
      c.ms = T0 + PERIOD_MS + SETTLE_MS;
      const polls = core.loadPolls;
      await ctrl.tick();
      expect(core.loadPolls).toBe(polls + 1);
      // load 6 > 3: 2 + ⌊2·log2(2) + 0.5⌋ = 4
      expect((await post(gk.port, '/start_session', b64(Buffer.alloc(32, 9)))).body.endsWith('\r\n4')).toBe(true);
      expect((await fetch(`http://127.0.0.1:${gk.port}/readyz`)).status).toBe(200);
    } finally {
      await gk.close();
      await core.close();
    }
  });
});
