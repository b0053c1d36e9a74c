/**
 * The topology launchers start a real Redis Cluster and a real Sentinel group that ioredis'
 * Cluster and Sentinel clients use; a SIGKILLed primary is replaced, the client writes again (the
 * time it took is printed, never asserted), the killed node comes back as a replica, and nothing
 * is left running afterwards. Waits are event-driven with generous upper bounds.
 */
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { Cluster, Redis } from 'ioredis';
import { freshPrefix } from './prefix.js';
import { startRedisCluster, startSentinelGroup, type RedisClusterHandle, type SentinelGroupHandle } from './redis-topology.js';
import { until } from './until.js';

const handles: { stop(): Promise<void> }[] = [];
afterAll(async () => {
  for (const h of handles.splice(0)) await h.stop();
});

function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Writes `key` until a write succeeds; the time from `since` to that success. */
async function writeUntilAccepted(write: () => Promise<unknown>, since: number): Promise<number> {
  return until(
    'a write accepted after the failover',
    async () => {
      try {
        await write();
        return Date.now() - since;
      } catch {
        return undefined;
      }
    },
    30_000,
  );
}

describe('redis topology launchers', () => {
  it('cluster: keys across slots, a primary SIGKILLed is replaced, it rejoins as a replica, nothing left after stop', async () => {
    const started = Date.now();
    const cluster: RedisClusterHandle = await startRedisCluster();
    handles.push(cluster);
    console.log(`cluster of ${cluster.ports.length} nodes healthy after ${Date.now() - started} ms`);
    expect(cluster.env).toEqual({ REDIS_CLUSTER_NODES: cluster.seeds });
    expect(cluster.seeds.split(',')).toHaveLength(6);

    const before = await cluster.nodes();
    expect(before.filter((n) => n.role === 'primary')).toHaveLength(3);
    expect(before.filter((n) => n.role === 'replica')).toHaveLength(3);

    const client = new Cluster(
      cluster.seeds.split(',').map((s) => ({ host: '127.0.0.1', port: Number(s.split(':')[1]) })),
      { redisOptions: { connectTimeout: 500 }, retryDelayOnFailover: 100, retryDelayOnClusterDown: 100, slotsRefreshTimeout: 500 },
    );
    client.on('error', () => undefined);
    try {
      const prefix = freshPrefix('topo');
      const keys = Array.from({ length: 12 }, (_, i) => `${prefix}k${i}`);
      const owners = new Set<number>();
      for (const k of keys) owners.add(await cluster.primaryPortOfKey(k));
      expect(owners.size).toBeGreaterThan(1);
      const victimKey = keys[0] as string;
      for (const k of [...keys.slice(1), victimKey]) await client.set(k, `v:${k}`);
      for (const k of keys) expect(await client.get(k)).toBe(`v:${k}`);

      const victim = await cluster.primaryPortOfKey(victimKey);
      const replica = (await cluster.nodes()).find((n) => n.role === 'replica' && n.primaryPort === victim);
      expect(replica).toBeDefined();
      const replicaPort = (replica as { port: number }).port;
      // The replica has the last write of its primary (so everything before it) before the kill.
      await until('the replica has the key', async () => {
        const r = new Redis({ host: '127.0.0.1', port: replicaPort, lazyConnect: true });
        try {
          await r.connect();
          await r.call('READONLY');
          return (await r.get(victimKey)) === `v:${victimKey}`;
        } finally {
          r.disconnect();
        }
      });

      const killedAt = Date.now();
      await cluster.kill(victim);
      const pidsAfterKill = cluster.pids();
      expect(pidsAfterKill.length).toBeGreaterThan(6);
      const ms = await writeUntilAccepted(() => client.set(victimKey, 'after'), killedAt);
      console.log(`cluster failover: a write to the killed primary's slot succeeded ${ms} ms after SIGKILL (node timeout 1500 ms)`);

      // A replica took the slot over: usually the victim's own, but on a loaded machine the cluster
      // may have migrated another replica to it first, so any replica of the victim's will do.
      const newOwner = await cluster.primaryPortOfKey(victimKey);
      expect(newOwner).not.toBe(victim);
      expect(before.filter((n) => n.role === 'replica').map((n) => n.port)).toContain(newOwner);
      expect(await client.get(victimKey)).toBe('after');
      for (const k of keys.slice(1)) expect(await client.get(k)).toBe(`v:${k}`);

      const restartAt = Date.now();
      await cluster.restart(victim);
      await cluster.waitHealthy(20_000);
      console.log(`cluster: the killed node rejoined and the cluster was healthy ${Date.now() - restartAt} ms after its restart`);
      const after = await cluster.nodes();
      expect(after.find((n) => n.port === victim)).toEqual({ port: victim, role: 'replica', primaryPort: newOwner });
      expect(after.filter((n) => n.role === 'primary')).toHaveLength(3);
      for (const k of keys) await client.del(k); // one slot each
    } finally {
      client.disconnect();
    }

    const pids = cluster.pids();
    await cluster.stop();
    expect(pids.filter((p) => !gone(p))).toEqual([]);
    expect(existsSync(cluster.dir)).toBe(false);
    console.log(`cluster test took ${Date.now() - started} ms`);
  }, 90_000);

  it('sentinel: the primary SIGKILLed is replaced, the client writes again, it returns as a replica, nothing left after stop', async () => {
    const started = Date.now();
    const group: SentinelGroupHandle = await startSentinelGroup();
    handles.push(group);
    console.log(`sentinel group healthy after ${Date.now() - started} ms`);
    expect(group.name).toBe('zaxcore');
    expect(group.env).toEqual({ REDIS_SENTINELS: group.sentinels, REDIS_SENTINEL_NAME: 'zaxcore' });
    expect(group.sentinels.split(',')).toHaveLength(3);
    expect(group.dataPorts).toHaveLength(3);

    const victim = await group.primaryPort();
    expect(victim).toBe(group.dataPorts[0]);
    const client = new Redis({
      sentinels: group.sentinels.split(',').map((s) => ({ host: '127.0.0.1', port: Number(s.split(':')[1]) })),
      name: group.name,
      connectTimeout: 500,
      retryStrategy: () => 100,
    });
    client.on('error', () => undefined);
    try {
      const prefix = freshPrefix('topo');
      const keys = Array.from({ length: 5 }, (_, i) => `${prefix}k${i}`);
      for (const k of keys) await client.set(k, `v:${k}`);
      for (const k of keys) expect(await client.get(k)).toBe(`v:${k}`);
      const last = keys[keys.length - 1] as string;
      for (const port of group.dataPorts.slice(1)) {
        await until(`replica ${port} has the last key`, async () => {
          const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true });
          try {
            await r.connect();
            return (await r.get(last)) === `v:${last}`;
          } finally {
            r.disconnect();
          }
        });
      }

      const killedAt = Date.now();
      await group.kill(victim);
      const ms = await writeUntilAccepted(() => client.set(last, 'after'), killedAt);
      console.log(`sentinel failover: a write succeeded ${ms} ms after SIGKILL of the primary (down-after 1000 ms)`);

      // The sentinel the client asked may learn of the failover before the one primaryPort asks.
      await until('the sentinels name the new primary', async () => (await group.primaryPort()) !== victim);
      const promoted = await group.primaryPort();
      expect(promoted).not.toBe(victim);
      expect(group.dataPorts).toContain(promoted);
      expect(await client.get(last)).toBe('after');
      for (const k of keys.slice(0, -1)) expect(await client.get(k)).toBe(`v:${k}`);

      const restartAt = Date.now();
      await group.restart(victim);
      await group.waitHealthy(20_000);
      console.log(`sentinel: the old primary was a linked replica and the group healthy ${Date.now() - restartAt} ms after its restart`);
      const r = new Redis({ host: '127.0.0.1', port: victim, lazyConnect: true });
      try {
        await r.connect();
        const info = await r.info('replication');
        expect(info).toContain('role:slave');
        // Of the group's primary now: on a loaded machine the sentinels may have failed over once
        // more while the old primary came back, so it is not always the one promoted above.
        expect(info).toContain(`master_port:${await group.primaryPort()}`);
      } finally {
        r.disconnect();
      }
      await client.del(...keys);
    } finally {
      client.disconnect();
    }

    const pids = group.pids();
    await group.stop();
    expect(pids.filter((p) => !gone(p))).toEqual([]);
    expect(existsSync(group.dir)).toBe(false);
    console.log(`sentinel test took ${Date.now() - started} ms`);
  }, 90_000);
});
