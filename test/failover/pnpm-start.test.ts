/**
 * `pnpm start` on a replicated store: with REDIS_CLUSTER_NODES (a local 3+3 Redis Cluster) or
 * REDIS_SENTINELS + REDIS_SENTINEL_NAME (a 1+2 Sentinel group) set, the launcher starts no private
 * Redis, the relay comes up on that store, and the published glow.ts client exchanges messages
 * through it. SIGTERM stops it cleanly.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { loadGlow } from '../support/glow.js';
import { freePort } from '../support/redis-server.js';
import { startRedisCluster, startSentinelGroup } from '../support/redis-topology.js';
import { cleanEnv, killAll, run } from '../launcher/tree.js';

const glow = loadGlow();
type Mailbox = Awaited<ReturnType<typeof glow.Mailbox.new>>;

const stops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const s of stops.reverse()) await s().catch(() => undefined);
});

async function exchange(url: string): Promise<void> {
  const opened: Mailbox[] = [];
  const mailbox = async (name: string): Promise<Mailbox> => {
    const m = await glow.Mailbox.new(`${name}-${Math.random().toString(36).slice(2)}`);
    opened.push(m);
    return m;
  };
  try {
    const alice = await mailbox('alice');
    const bob = await mailbox('bob');
    await alice.keyRing.addGuest('Bob', bob.keyRing.getPubCommKey());
    await bob.keyRing.addGuest('Alice', alice.keyRing.getPubCommKey());
    const token = await alice.upload(url, 'Bob', 'hello over a replicated store');
    expect(await bob.count(url)).toBe(1);
    const [m] = await bob.download(url);
    expect(m).toMatchObject({ kind: 'message', data: 'hello over a replicated store', senderTag: 'Alice' });
    expect(await alice.messageStatus(url, token)).toBeGreaterThan(0);
    expect(await bob.delete(url, [m!.nonce])).toBe(0); // what is left in the mailbox
    expect(await bob.download(url)).toEqual([]);
  } finally {
    for (const m of opened) m.clearSession(url);
  }
}

describe.each([
  ['a Redis Cluster', async () => {
    const c = await startRedisCluster();
    stops.push(() => c.stop());
    return { REDIS_CLUSTER_NODES: c.seeds };
  }],
  ['a Sentinel group', async () => {
    const g = await startSentinelGroup();
    stops.push(() => g.stop());
    return { REDIS_SENTINELS: g.sentinels, REDIS_SENTINEL_NAME: g.name, REDIS_WAIT_REPLICAS: '1' };
  }],
] as const)('pnpm start on %s', (_name, startStore) => {
  it('starts no private Redis, serves glow.ts, and stops on SIGTERM', async () => {
    const storeEnv = await startStore();
    const [port, corePort] = [await freePort(), await freePort()];
    const pnpm = run(
      'pnpm',
      ['start'],
      cleanEnv({ ...storeEnv, PORT: String(port), HOST: '127.0.0.1', CORE_PORT: String(corePort), HANDSHAKE_BURST_PER_IP: '0', REQUEST_BURST_PER_IP: '0' }),
    );
    stops.push(async () => killAll([pnpm.child.pid!]));
    await pnpm.waitFor(new RegExp(`Zax relay ready: http://127\\.0\\.0\\.1:${port}\\n`));
    expect(pnpm.out() + pnpm.err()).not.toMatch(/started a private memory-only redis-server/);
    await exchange(`http://127.0.0.1:${port}`);
    process.kill(pnpm.child.pid!, 'SIGTERM');
    expect((await pnpm.exit).code).toBe(0);
  }, 120_000);
});
