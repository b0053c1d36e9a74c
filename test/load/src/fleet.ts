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
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Child, CORE_MAIN, freePort, GATEKEEPER_MAIN, redisPingable, waitFor } from './harness.js';

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
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    const c = new Child(
      'redis-server',
      spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    try {
      await waitFor('redis-server', c, () => redisPingable(url));
    } catch (e) {
      await c.stop('SIGKILL');
      throw e;
    }
    return {
      name,
      env: { REDIS_URL: url },
      nodeUrls: [url],
      pids: () => [c.pid],
      dead: () => (c.exited ? `redis-server exited:\n${c.tail.join('\n')}` : null),
      stop: () => c.stop('SIGKILL'),
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
    private readonly coreChildren: readonly Child[],
    private readonly gkChildren: readonly Child[],
    readonly prefix: string,
  ) {}

  get corePids(): number[] {
    return this.coreChildren.map((c) => c.pid);
  }

  get gatekeeperPids(): number[] {
    return this.gkChildren.map((c) => c.pid);
  }

  deadService(): string | null {
    for (const c of [...this.coreChildren, ...this.gkChildren]) if (c.exited) return `${c.name} exited:\n${c.tail.join('\n')}`;
    return null;
  }

  static async start(opts: FleetOptions): Promise<Fleet> {
    for (const main of [CORE_MAIN, GATEKEEPER_MAIN]) {
      if (!existsSync(main)) throw new Error(`${main} is missing: build the relay first (pnpm build)`);
    }
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
    const started: Child[] = [];
    const launch = (name: string, main: string, env: Record<string, string>): Child => {
      const c = new Child(name, spawn(process.execPath, [main], { env: { ...common, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
      started.push(c);
      return c;
    };
    const ready = (port: number) => async (): Promise<boolean> => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200;
    try {
      const corePorts: number[] = [];
      const cores: Child[] = [];
      for (let i = 0; i < opts.cores; i++) {
        const port = await freePort();
        corePorts.push(port);
        cores.push(launch(`core${i + 1}`, CORE_MAIN, { CORE_PORT: String(port), CORE_HOST: '127.0.0.1', CORE_WORKERS: String(opts.workers) }));
      }
      for (let i = 0; i < cores.length; i++) await waitFor(cores[i]!.name, cores[i]!, ready(corePorts[i]!), 30_000);
      const gks: Child[] = [];
      const urls: string[] = [];
      const admins: string[] = [];
      for (let i = 0; i < opts.gatekeepers; i++) {
        const port = await freePort();
        const admin = await freePort();
        urls.push(`http://127.0.0.1:${port}`);
        admins.push(`http://127.0.0.1:${admin}`);
        gks.push(
          launch(`gatekeeper${i + 1}`, GATEKEEPER_MAIN, {
            PORT: String(port),
            HOST: '127.0.0.1',
            ADMIN_PORT: String(admin),
            CORE_URL: `http://127.0.0.1:${corePorts[i % corePorts.length]}`,
          }),
        );
      }
      for (let i = 0; i < gks.length; i++) await waitFor(gks[i]!.name, gks[i]!, ready(Number(new URL(urls[i]!).port)), 30_000);
      return new Fleet(urls, admins, cores, gks, prefix);
    } catch (e) {
      for (const c of started.reverse()) await c.stop('SIGKILL');
      throw e;
    }
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
    for (const c of this.gkChildren) await c.stop();
    for (const c of this.coreChildren) await c.stop();
  }

  killNow(): void {
    for (const c of [...this.gkChildren, ...this.coreChildren]) if (!c.exited) c.proc.kill('SIGKILL');
  }
}
