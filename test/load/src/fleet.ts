/**
 * A relay of several processes on loopback, for the scaling runs (scaling.ts): a Redis store (one
 * private memory-only `redis-server`, or a local Redis Cluster of 3 primaries + 3 replicas from
 * test/support/redis-topology.ts), then `cores` core processes (each with `CORE_WORKERS` workers)
 * and `gatekeepers` gatekeeper processes, each on its own port with its own ADMIN_PORT for
 * `/metrics`. Gatekeeper i talks to core i mod `cores` (one CORE_URL each). All of them share one
 * key prefix, so the gatekeepers share the edge store (handshakes, adaptive difficulty) and the
 * cores the message store.
 */
import { pidAlive } from './cpu.js';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort, RedisServer, startRelayProcesses, type ManagedProcess, type ReadyServiceOptions } from '@zax/service';
import { deadProcess, stopService } from './harness.js';

export type TopologyName = 'single' | 'cluster';

/** A running Redis store the fleets of one round share. */
export interface Store {
  readonly name: TopologyName;
  /** REDIS_URL or REDIS_CLUSTER_NODES for the services. */
  readonly env: Readonly<Record<string, string>>;
  /** One redis:// URL per node (primaries and replicas), for INFO. */
  readonly nodeUrls: readonly string[];
  /** Every redis-server pid (for /proc CPU). */
  pids(): number[];
  /** A node that died, if any. */
  dead(): string | null;
  stop(): Promise<void>;
}

interface ClusterHandleLike {
  readonly seeds: string;
  readonly env: Record<string, string>;
  readonly ports: readonly number[];
  pids(): number[];
  stop(): Promise<void>;
}

/**
 * test/support/redis-topology.ts, compiled by `tsc -p test/load/tsconfig.support.json` into
 * dist/support/ (the load tool's own tsconfig compiles src/ only). Loaded on demand.
 */
async function loadTopology(): Promise<{ startRedisCluster(opts?: { primaries?: number; replicasPerPrimary?: number }): Promise<ClusterHandleLike> }> {
  const url = new URL('./support/redis-topology.js', import.meta.url);
  if (!existsSync(fileURLToPath(url))) {
    throw new Error(`${fileURLToPath(url)} is missing: compile it with tsc -p test/load/tsconfig.support.json (pnpm bench:scaling does)`);
  }
  return (await import(url.href)) as { startRedisCluster(opts?: { primaries?: number; replicasPerPrimary?: number }): Promise<ClusterHandleLike> };
}

export async function startStore(name: TopologyName): Promise<Store> {
  if (name === 'single') {
    const redis = await RedisServer.start();
    return {
      name,
      env: { REDIS_URL: redis.url },
      nodeUrls: [redis.url],
      pids: () => [redis.process.pid],
      dead: () => deadProcess([redis.process]),
      stop: () => redis.stop(),
    };
  }
  const { startRedisCluster } = await loadTopology();
  const h = await startRedisCluster({ primaries: 3, replicasPerPrimary: 1 });
  const nodePids = h.pids().filter(pidAlive); // redis-cli has exited by now: only the nodes remain
  return {
    name,
    env: { ...h.env },
    nodeUrls: h.ports.map((p) => `redis://127.0.0.1:${p}`),
    pids: () => nodePids,
    dead: () => {
      const gone = nodePids.filter((p) => !pidAlive(p));
      return gone.length > 0 ? `cluster node pid(s) ${gone.join(', ')} exited` : null;
    },
    stop: () => h.stop(),
  };
}

export interface FleetShape {
  gatekeepers: number;
  /** Core processes (each its own port; gatekeeper i → core i mod cores). */
  cores: number;
  /** CORE_WORKERS of each core process. */
  workers: number;
}

export interface FleetOptions extends FleetShape {
  store: Store;
  /** Extra environment for every service (after the defaults). */
  env?: Record<string, string>;
}

export class Fleet {
  private constructor(
    readonly gatekeeperUrls: readonly string[],
    readonly adminUrls: readonly string[],
    private readonly coreChildren: readonly ManagedProcess[],
    private readonly gkChildren: readonly ManagedProcess[],
    readonly prefix: string,
  ) {}

  get corePids(): number[] {
    return this.coreChildren.map((c) => c.pid);
  }

  get gatekeeperPids(): number[] {
    return this.gkChildren.map((c) => c.pid);
  }

  deadService(): string | null {
    return deadProcess([...this.coreChildren, ...this.gkChildren]);
  }

  static async start(opts: FleetOptions): Promise<Fleet> {
    const prefix = `scale${randomBytes(3).toString('hex')}:`;
    const common: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      ...opts.store.env,
      REDIS_PREFIX: prefix,
      INTERNAL_SECRET: randomBytes(24).toString('hex'),
      LOG_LEVEL: 'info',
      // Throttling off: the whole load comes from one address.
      HANDSHAKE_BURST_PER_IP: '0',
      REQUEST_BURST_PER_IP: '0',
      ...opts.env,
    };
    const service = (name: string, port: number, env: Record<string, string>): ReadyServiceOptions => ({
      name,
      env: { ...common, ...env },
      readyz: `http://127.0.0.1:${port}/readyz`,
      readyTimeoutMs: 30_000,
    });
    const cores: ReadyServiceOptions[] = [];
    const corePorts: number[] = [];
    for (let i = 0; i < opts.cores; i++) {
      const port = await freePort();
      corePorts.push(port);
      cores.push(service(`core${i + 1}`, port, { CORE_PORT: String(port), CORE_HOST: '127.0.0.1', CORE_WORKERS: String(opts.workers) }));
    }
    const gatekeepers: ReadyServiceOptions[] = [];
    const urls: string[] = [];
    const admins: string[] = [];
    for (let i = 0; i < opts.gatekeepers; i++) {
      const port = await freePort();
      const admin = await freePort();
      urls.push(`http://127.0.0.1:${port}`);
      admins.push(`http://127.0.0.1:${admin}`);
      gatekeepers.push(
        service(`gatekeeper${i + 1}`, port, {
          PORT: String(port),
          HOST: '127.0.0.1',
          ADMIN_PORT: String(admin),
          CORE_URL: `http://127.0.0.1:${corePorts[i % corePorts.length]}`,
        }),
      );
    }
    const started = await startRelayProcesses(cores, gatekeepers);
    return new Fleet(urls, admins, started.cores, started.gatekeepers, prefix);
  }

  /**
   * What every gatekeeper announces now: first the difficulty its `/start_session` answers (line 2;
   * the value clients get, asked of all gatekeepers at once), then its `/metrics` on ADMIN_PORT:
   * `zax_gatekeeper_difficulty` (the value it last announced, read without I/O) and whether it holds
   * the controller lease (`zax_gatekeeper_difficulty_leader`).
   */
  async difficulties(): Promise<{ metric: number | null; leader: boolean; announced: number | null }[]> {
    const announced = await Promise.all(
      this.gatekeeperUrls.map((url) =>
        fetch(`${url}/start_session`, { method: 'POST', body: randomBytes(32).toString('base64'), headers: { 'content-type': 'text/plain' } })
          .then(async (r) => (r.status === 200 ? await r.text() : ''))
          .catch(() => '')
          .then((text) => {
            const line2 = text.split('\r\n')[1];
            return line2 !== undefined && /^\d+$/.test(line2) ? Number(line2) : null;
          }),
      ),
    );
    const metrics = await Promise.all(
      this.adminUrls.map((url) =>
        fetch(`${url}/metrics`)
          .then((r) => r.text())
          .catch(() => ''),
      ),
    );
    return metrics.map((text, i) => {
      const gauge = (name: string): number | null => {
        const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm').exec(text);
        return m === null ? null : Number(m[1]);
      };
      return { metric: gauge('zax_gatekeeper_difficulty'), leader: gauge('zax_gatekeeper_difficulty_leader') === 1, announced: announced[i] ?? null };
    });
  }

  async stop(): Promise<void> {
    for (const c of this.gkChildren) await stopService(c);
    for (const c of this.coreChildren) await stopService(c);
  }

  killNow(): void {
    for (const c of [...this.gkChildren, ...this.coreChildren]) c.kill('SIGKILL');
  }
}
