/**
 * Starts real local Redis topologies for tests: a Redis Cluster (primaries with replicas, fast
 * failover) and a Sentinel group (one primary, replicas, sentinels), every process a private,
 * memory-only `redis-server` on free loopback ports, run by @zax/service's RedisServer. Nothing is
 * written to disk except Redis' own cluster and sentinel config files, in a private temp dir
 * removed on stop. Every process started here is killed on `stop()` and, as a last resort, when
 * the test process exits.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ManagedProcess, NotReadyError, RedisServer, type RedisServerOptions } from '@zax/service';
import { freePort } from './redis-server.js';

const HOST = '127.0.0.1';
const SLOTS = 16384;
const READY_TIMEOUT_MS = 10_000;

// ---------------------------------------------------------------------------------------------
// Process bookkeeping: every child and temp dir, so none outlives the test process.

const liveProcesses = new Set<ManagedProcess>();
const liveDirs = new Set<string>();
let exitHooked = false;

function killEverything(): void {
  for (const p of liveProcesses) p.kill('SIGKILL');
  for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
}

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', killEverything);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killEverything();
      // Alone on this signal: keep its default meaning (terminate) by raising it again unhandled.
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, onSignal);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSignal);
  }
}

/** Records a process just started, for `killEverything`, until it exits. */
function track(p: ManagedProcess, pids: number[]): void {
  liveProcesses.add(p);
  pids.push(p.pid);
  void p.exit.then(() => liveProcesses.delete(p));
}

/** Ports handed out by this module, so two nodes never get the same one from `freePort`. */
const handedOut = new Set<number>();

async function newPort(): Promise<number> {
  for (;;) {
    const p = await freePort();
    if (!handedOut.has(p)) {
      handedOut.add(p);
      return p;
    }
  }
}

/**
 * The kit's redis-server, ready only once the process answering on its port is the one it started
 * (INFO process_id): a free port may be taken by another Redis before this one binds it, and that
 * one's PONG must not pass for this one's.
 */
class OwnRedisServer extends RedisServer {
  override async ready(): Promise<boolean> {
    const pid = await query(this.port, async (r) => Number(/process_id:(\d+)/.exec(await r.info('server'))?.[1]), 500).catch(() => NaN);
    return pid === this.process.pid;
  }
}

/** What a node runs with besides its port: a sentinel's config file, the arguments after the kit's defaults. */
type NodeSetup = Pick<RedisServerOptions, 'configFile' | 'args'>;

const PORT_TAKEN = /already in use|could not create server tcp listening socket/i;

/** One redis-server (data node or sentinel) on the service kit's launcher, killed and started again at will. */
class Node {
  readonly pids: number[] = [];
  private server: RedisServer;
  private current: ManagedProcess | null = null;

  constructor(
    readonly kind: string,
    port: number,
    setup: NodeSetup = {},
  ) {
    this.server = this.serverFor(port, setup);
  }

  /** How it runs from its next start on: on a fresh port after its own was taken, as a replica of a new primary. */
  configure(port: number, setup: NodeSetup): void {
    this.server = this.serverFor(port, setup);
  }

  private serverFor(port: number, setup: NodeSetup): RedisServer {
    return new OwnRedisServer(port, {
      ...setup,
      readyTimeoutMs: READY_TIMEOUT_MS,
      spawn: {
        onSpawn: (p) => {
          this.current = p;
          track(p, this.pids);
        },
      },
    });
  }

  get port(): number {
    return this.server.port;
  }

  get label(): string {
    return `${this.kind} ${HOST}:${this.port}`;
  }

  get running(): boolean {
    return this.current !== null && !this.current.exited;
  }

  tail(): string {
    return this.current?.tail.join('\n') ?? '';
  }

  fail(what: string): Error {
    return new Error(`${this.label}: ${what}\n--- last output of ${this.label} ---\n${this.tail()}`);
  }

  /** Starts it and resolves once it answers on its port (checked to be this very process). */
  async start(): Promise<void> {
    if (this.running) throw this.fail('is already running');
    hookExit();
    try {
      await this.server.restart();
    } catch (e) {
      throw this.startError(e);
    }
  }

  /** Why a start failed; `portTaken` when another process had its port, so that fresh ports may help. */
  private startError(e: unknown): Error {
    if (!(e instanceof NotReadyError)) return this.fail(`could not be spawned: ${(e as Error).message}`);
    if (e.exit === null) return this.fail(`did not accept connections within ${READY_TIMEOUT_MS / 1000} s`);
    const err = this.fail(`exited (${e.exit.code ?? e.exit.signal}) before accepting connections`);
    return PORT_TAKEN.test(this.tail()) ? Object.assign(err, { portTaken: true }) : err;
  }

  /** Sends `signal` and resolves once the process is gone (immediately if it is not running). */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.current !== null) await this.current.stop(signal);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs `fn` on a short-lived connection to `port`; never retries, never queues. */
async function query<T>(port: number, fn: (r: Redis) => Promise<T>, timeoutMs = 2000): Promise<T> {
  const r = new Redis({
    host: HOST,
    port,
    lazyConnect: true,
    enableReadyCheck: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
  });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

const str = async (p: Promise<unknown>): Promise<string> => String(await p);

/** `key:value` lines of an INFO section or CLUSTER INFO. */
function fields(info: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of info.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return m;
}

/** Starts `nodes` one after another; a node whose port was taken meanwhile gets fresh ports. */
async function startAll(nodes: readonly Node[], reassign: (n: Node) => Promise<void>): Promise<void> {
  for (const n of nodes) {
    for (let attempt = 1; ; attempt++) {
      try {
        await n.start();
        break;
      } catch (e) {
        if ((e as { portTaken?: boolean }).portTaken !== true || attempt >= 5) throw e;
        await reassign(n);
      }
    }
  }
}

/** Polls `check` (null = healthy, else why not) until healthy; the error gives the last reason. */
async function waitFor(what: string, check: () => Promise<{ why: string; node?: Node } | null>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let why: { why: string; node?: Node } | null;
    try {
      why = await check();
    } catch (e) {
      why = { why: (e as Error).message };
    }
    if (why === null) return;
    if (Date.now() > deadline) {
      const tail = why.node === undefined ? '' : `\n--- last output of ${why.node.label} ---\n${why.node.tail()}`;
      throw new Error(`${what} not reached within ${timeoutMs} ms: ${why.why}${tail}`);
    }
    await sleep(100);
  }
}

/** After the kit's memory-only defaults. */
const dataNodeArgs = (dir: string): string[] => [
  '--dir', dir,
  // A replica's first sync starts at once instead of waiting 5 s for more replicas to join.
  '--repl-diskless-sync', 'yes',
  '--repl-diskless-sync-delay', '0',
];

// ---------------------------------------------------------------------------------------------
// Redis Cluster

export interface RedisClusterOptions {
  /** Default 3. */
  primaries?: number;
  /** Default 1. */
  replicasPerPrimary?: number;
  /** `cluster-node-timeout`; default 1500 ms (failover then takes some 2–4 s). */
  nodeTimeoutMs?: number;
  /** Go to every node's redis-server after the defaults. */
  extraArgs?: string[];
}

export interface ClusterNodeInfo {
  port: number;
  role: 'primary' | 'replica';
  /** A replica's primary. */
  primaryPort?: number;
}

export interface RedisClusterHandle {
  /** `127.0.0.1:port` of every node, comma-separated. */
  readonly seeds: string;
  /** `{ REDIS_CLUSTER_NODES: seeds }`. */
  readonly env: Record<string, string>;
  /** Every node's port, in start order. */
  readonly ports: readonly number[];
  /** The private temp dir (nodes.conf files); removed by `stop`. */
  readonly dir: string;
  /** The running nodes, each as it reports itself now (ROLE). */
  nodes(): Promise<ClusterNodeInfo[]>;
  /** The port of the primary serving `key`'s slot now (CLUSTER KEYSLOT + CLUSTER SLOTS). */
  primaryPortOfKey(key: string): Promise<number>;
  /** Signals the node on `port`; resolves once its process is gone. */
  kill(port: number, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a killed node again on the same ports with the same nodes.conf (a former primary rejoins as a replica). */
  restart(port: number): Promise<void>;
  /** Resolves when the cluster is whole again (see `startRedisCluster`); rejects with the reason after `timeoutMs`. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Every pid this handle ever started (nodes and redis-cli), for checking none is left. */
  pids(): number[];
  /** Kills every node and removes the temp dir. */
  stop(): Promise<void>;
}

interface ClusterNodesLine {
  id: string;
  port: number;
  flags: string[];
  masterId: string;
  slots: string;
}

function parseClusterNodes(text: string): ClusterNodesLine[] {
  const out: ClusterNodesLine[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(' ');
    if (f.length < 8) continue;
    const port = Number(/:(\d+)@/.exec(f[1] ?? '')?.[1]);
    out.push({ id: f[0] ?? '', port, flags: (f[2] ?? '').split(','), masterId: f[3] ?? '-', slots: f.slice(8).join(' ') });
  }
  return out;
}

/**
 * Starts a Redis Cluster on free loopback ports: `primaries` × (1 + `replicasPerPrimary`) nodes
 * joined by `redis-cli --cluster create`, and resolves once every node reports `cluster_state:ok`
 * with all 16384 slots covered, all nodes agree on the topology and every primary has its
 * replicas linked (`master_link_status:up`), so a failover test can start right away. A replica
 * always may take over (`cluster-replica-validity-factor 0`).
 */
export async function startRedisCluster(opts: RedisClusterOptions = {}): Promise<RedisClusterHandle> {
  const primaries = opts.primaries ?? 3;
  const replicasPerPrimary = opts.replicasPerPrimary ?? 1;
  const nodeTimeoutMs = opts.nodeTimeoutMs ?? 1500;
  const extraArgs = opts.extraArgs ?? [];
  if (primaries < 3) throw new Error('redis-cli --cluster create needs at least 3 primaries');
  const dir = mkdtempSync(join(tmpdir(), 'zax-redis-cluster-'));
  liveDirs.add(dir);
  const extraPids: number[] = [];

  const argsFor = (port: number, busPort: number): string[] => [
    // The bus port is chosen too: port + 10000 may be out of range for a high ephemeral port.
    '--cluster-port', String(busPort),
    '--cluster-enabled', 'yes',
    '--cluster-config-file', join(dir, `nodes-${port}.conf`),
    '--cluster-node-timeout', String(nodeTimeoutMs),
    '--cluster-replica-validity-factor', '0',
    ...dataNodeArgs(dir),
    ...extraArgs,
  ];
  const newNode = async (): Promise<Node> => {
    const port = await newPort();
    return new Node('cluster node', port, { args: argsFor(port, await newPort()) });
  };
  const assign = async (n: Node): Promise<void> => {
    const port = await newPort();
    n.configure(port, { args: argsFor(port, await newPort()) });
  };
  const all: Node[] = [];
  for (let i = 0; i < primaries * (1 + replicasPerPrimary); i++) all.push(await newNode());
  const byPort = (port: number): Node => {
    const n = all.find((x) => x.port === port);
    if (n === undefined) throw new Error(`no cluster node on port ${port} (nodes: ${all.map((x) => x.port).join(', ')})`);
    return n;
  };
  const running = (): Node[] => all.filter((n) => n.running);

  const stop = async (): Promise<void> => {
    await Promise.all(all.map((n) => n.kill('SIGKILL')));
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  };

  /** null when healthy, else the first reason found. */
  const health = async (): Promise<{ why: string; node?: Node } | null> => {
    const up = running();
    if (up.length === 0) return { why: 'no node is running' };
    let view: string | null = null;
    let viewOf: Node | null = null;
    const slotOwners = new Set<number>();
    for (const n of up) {
      const info = fields(await query(n.port, (r) => str(r.call('CLUSTER', 'INFO'))).catch((e: Error) => `error:${e.message}`));
      if (info.has('error')) return { why: `${n.label} does not answer: ${info.get('error')}`, node: n };
      if (info.get('cluster_state') !== 'ok') return { why: `${n.label} has cluster_state:${info.get('cluster_state')}`, node: n };
      if (info.get('cluster_slots_ok') !== String(SLOTS)) return { why: `${n.label} has cluster_slots_ok:${info.get('cluster_slots_ok')}`, node: n };
      const lines = parseClusterNodes(await query(n.port, (r) => str(r.call('CLUSTER', 'NODES'))));
      const ids = new Map(lines.map((l) => [l.id, l.port]));
      const mine: string[] = [];
      for (const l of lines) {
        const other = all.find((x) => x.port === l.port);
        if (other === undefined || !other.running) continue;
        const bad = l.flags.find((f) => f === 'fail' || f === 'fail?' || f === 'handshake' || f === 'noaddr');
        if (bad !== undefined) return { why: `${n.label} sees ${other.label} as ${bad}`, node: n };
        const isPrimary = l.flags.includes('master');
        if (isPrimary && l.slots !== '') slotOwners.add(l.port);
        mine.push(isPrimary ? `${l.port}:primary:${l.slots}` : `${l.port}:replica-of:${ids.get(l.masterId) ?? l.masterId}`);
      }
      const v = mine.sort().join('|');
      if (view === null) {
        view = v;
        viewOf = n;
      } else if (v !== view) {
        return { why: `${n.label} and ${viewOf?.label} do not agree yet on the topology (${v} vs ${view})`, node: n };
      }
    }
    if (slotOwners.size !== primaries) return { why: `${slotOwners.size} running primaries own slots, expected ${primaries}` };
    const linked = new Map<number, number>();
    for (const n of up) {
      const info = fields(await query(n.port, (r) => r.info('replication')));
      if (info.get('role') !== 'slave') continue;
      const primary = Number(info.get('master_port'));
      if (info.get('master_link_status') !== 'up') return { why: `${n.label}: link to primary ${primary} is ${info.get('master_link_status')}`, node: n };
      linked.set(primary, (linked.get(primary) ?? 0) + 1);
    }
    for (const p of slotOwners) {
      if ((linked.get(p) ?? 0) < replicasPerPrimary) return { why: `primary ${HOST}:${p} has ${linked.get(p) ?? 0} linked replicas, expected ${replicasPerPrimary}`, node: byPort(p) };
    }
    return null;
  };
  const waitHealthy = (timeoutMs = 20_000): Promise<void> => waitFor('a healthy cluster', health, timeoutMs);

  try {
    await startAll(all, assign);
    const seedsList = all.map((n) => `${HOST}:${n.port}`);
    await createCluster(seedsList, replicasPerPrimary, extraPids);
    await waitHealthy(30_000);
  } catch (e) {
    await stop();
    throw e;
  }

  const seeds = all.map((n) => `${HOST}:${n.port}`).join(',');
  return {
    seeds,
    env: { REDIS_CLUSTER_NODES: seeds },
    ports: all.map((n) => n.port),
    dir,
    async nodes() {
      const out: ClusterNodeInfo[] = [];
      for (const n of running()) {
        const role = (await query(n.port, (r) => r.call('ROLE'))) as unknown[];
        out.push(role[0] === 'master' ? { port: n.port, role: 'primary' } : { port: n.port, role: 'replica', primaryPort: Number(role[2]) });
      }
      return out;
    },
    async primaryPortOfKey(key) {
      let lastError: unknown = new Error('no cluster node is running');
      for (const n of running()) {
        try {
          return await query(n.port, async (r) => {
            const slot = Number(await r.call('CLUSTER', 'KEYSLOT', key));
            const ranges = (await r.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, ...unknown[]], ...unknown[]][];
            const hit = ranges.find(([from, to]) => slot >= from && slot <= to);
            if (hit === undefined) throw new Error(`slot ${slot} of ${JSON.stringify(key)} is not served (asked ${n.label})`);
            return Number(hit[2][1]);
          });
        } catch (e) {
          lastError = e;
        }
      }
      throw lastError;
    },
    kill: (port, signal = 'SIGKILL') => byPort(port).kill(signal),
    restart: (port) => byPort(port).start(),
    waitHealthy,
    pids: () => [...all.flatMap((n) => n.pids), ...extraPids],
    stop,
  };
}

/** `redis-cli --cluster create`, its output kept for the error. */
async function createCluster(seeds: readonly string[], replicas: number, pids: number[]): Promise<void> {
  hookExit();
  const what = `redis-cli --cluster create ${seeds.join(' ')}`;
  let covered = false;
  const cli = await ManagedProcess.spawn({
    name: 'redis-cli',
    command: 'redis-cli',
    args: ['--cluster', 'create', ...seeds, '--cluster-replicas', String(replicas), '--cluster-yes'],
    onSpawn: (p) => track(p, pids),
    onLine: (line) => {
      covered ||= /All 16384 slots covered/.test(line);
    },
  }).catch((e: Error) => {
    throw new Error(`${what} failed (${e.message})`);
  });
  const timer = setTimeout(() => cli.kill('SIGKILL'), 30_000);
  const { code, signal } = await cli.exit;
  await cli.ended;
  clearTimeout(timer);
  if (code !== 0 || !covered) throw new Error(`${what} failed (${code ?? signal})\n--- last output of redis-cli ---\n${cli.tail.join('\n')}`);
}

// ---------------------------------------------------------------------------------------------
// Redis Sentinel

export interface SentinelGroupOptions {
  /** Replicas of the primary; default 2. */
  replicas?: number;
  /** Default 3 (quorum: a majority). */
  sentinels?: number;
  /** The monitored primary's name; default 'zaxcore'. */
  name?: string;
  /** `sentinel down-after-milliseconds`; default 1000. */
  downAfterMs?: number;
  /** `sentinel failover-timeout`; default 3000 (a failed election is retried after twice this). */
  failoverTimeoutMs?: number;
  /** Go to every data node's redis-server (not the sentinels') after the defaults. */
  extraArgs?: string[];
}

export interface SentinelGroupHandle {
  /** The monitored primary's name. */
  readonly name: string;
  /** `127.0.0.1:port` of every sentinel, comma-separated. */
  readonly sentinels: string;
  /** `{ REDIS_SENTINELS: sentinels, REDIS_SENTINEL_NAME: name }`. */
  readonly env: Record<string, string>;
  /** Ports of the data nodes (the first one started as the primary). */
  readonly dataPorts: readonly number[];
  /** Ports of the sentinels. */
  readonly sentinelPorts: readonly number[];
  /** The private temp dir (sentinel config files); removed by `stop`. */
  readonly dir: string;
  /** The primary's port as a running sentinel reports it now (`SENTINEL get-master-addr-by-name`). */
  primaryPort(): Promise<number>;
  /** Signals the data node or sentinel on `port`; resolves once its process is gone. */
  kill(port: number, signal?: NodeJS.Signals): Promise<void>;
  /**
   * Starts a killed data node or sentinel again on the same port. A data node that is no longer
   * the primary comes back as a replica of the current one.
   */
  restart(port: number): Promise<void>;
  /** Resolves when the sentinels agree on one primary that has all its replicas linked; rejects with the reason after `timeoutMs`. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Every pid this handle ever started, for checking none is left. */
  pids(): number[];
  /** Kills every process and removes the temp dir. */
  stop(): Promise<void>;
}

/**
 * Starts one primary, `replicas` replicas and `sentinels` sentinels (quorum: a majority) on free
 * loopback ports, and resolves once every replica is linked and every sentinel knows the primary,
 * the replicas and the other sentinels.
 */
export async function startSentinelGroup(opts: SentinelGroupOptions = {}): Promise<SentinelGroupHandle> {
  const replicas = opts.replicas ?? 2;
  const sentinelCount = opts.sentinels ?? 3;
  const name = opts.name ?? 'zaxcore';
  const downAfterMs = opts.downAfterMs ?? 1000;
  const failoverTimeoutMs = opts.failoverTimeoutMs ?? 3000;
  const extraArgs = opts.extraArgs ?? [];
  const quorum = Math.floor(sentinelCount / 2) + 1;
  const dir = mkdtempSync(join(tmpdir(), 'zax-redis-sentinel-'));
  liveDirs.add(dir);

  const dataSetup = (primary: number | null): NodeSetup => ({
    args: [...dataNodeArgs(dir), ...(primary === null ? [] : ['--replicaof', HOST, String(primary)]), ...extraArgs],
  });
  const sentinelConf = (port: number): string => join(dir, `sentinel-${port}.conf`);
  const writeSentinelConf = (port: number, primary: number): void => {
    writeFileSync(
      sentinelConf(port),
      [
        `port ${port}`,
        `bind ${HOST}`,
        `dir ${dir}`,
        'sentinel resolve-hostnames no',
        `sentinel announce-ip ${HOST}`,
        `sentinel announce-port ${port}`,
        `sentinel monitor ${name} ${HOST} ${primary} ${quorum}`,
        `sentinel down-after-milliseconds ${name} ${downAfterMs}`,
        `sentinel failover-timeout ${name} ${failoverTimeoutMs}`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'),
    );
  };

  const data: Node[] = [];
  for (let i = 0; i <= replicas; i++) data.push(new Node(i === 0 ? 'primary' : 'replica', await newPort()));
  const primaryNode = data[0] as Node;
  const sentinelNodes: Node[] = [];
  for (let i = 0; i < sentinelCount; i++) sentinelNodes.push(new Node('sentinel', await newPort()));
  const all = [...data, ...sentinelNodes];
  const byPort = (port: number): Node => {
    const n = all.find((x) => x.port === port);
    if (n === undefined) throw new Error(`no data node or sentinel on port ${port} (data: ${data.map((x) => x.port).join(', ')}; sentinels: ${sentinelNodes.map((x) => x.port).join(', ')})`);
    return n;
  };

  const stop = async (): Promise<void> => {
    await Promise.all(all.map((n) => n.kill('SIGKILL')));
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  };

  /** The primary every running sentinel names, or why there is none. */
  const agreedPrimary = async (): Promise<{ port: number } | { why: string; node?: Node }> => {
    const seen = new Set<number>();
    const up = sentinelNodes.filter((s) => s.running);
    if (up.length === 0) return { why: 'no sentinel is running' };
    for (const s of up) {
      const addr = (await query(s.port, (r) => r.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)).catch(() => null)) as [string, string] | null;
      if (addr === null) return { why: `${s.label} does not name a primary`, node: s };
      seen.add(Number(addr[1]));
    }
    if (seen.size !== 1) return { why: `sentinels name different primaries: ${[...seen].join(', ')}` };
    return { port: [...seen][0] as number };
  };

  const health = async (): Promise<{ why: string; node?: Node } | null> => {
    const agreed = await agreedPrimary();
    if (!('port' in agreed)) return agreed;
    const primary = data.find((n) => n.port === agreed.port);
    if (primary === undefined || !primary.running) return { why: `the sentinels' primary ${HOST}:${agreed.port} is not running` };
    const pInfo = fields(await query(primary.port, (r) => r.info('replication')));
    if (pInfo.get('role') !== 'master') return { why: `${primary.label} reports role:${pInfo.get('role')}`, node: primary };
    const replicaPorts: number[] = [];
    for (const n of data) {
      if (n === primary || !n.running) continue;
      const info = fields(await query(n.port, (r) => r.info('replication')));
      if (info.get('role') !== 'slave' || info.get('master_port') !== String(primary.port) || info.get('master_link_status') !== 'up') {
        return { why: `${n.label} is not a linked replica of ${primary.port} (role:${info.get('role')} master_port:${info.get('master_port')} link:${info.get('master_link_status')})`, node: n };
      }
      replicaPorts.push(n.port);
    }
    const online = [...pInfo.entries()].filter(([k, v]) => /^slave\d+$/.test(k) && v.includes('state=online')).length;
    if (replicaPorts.length < replicas || online < replicas) return { why: `primary ${primary.port} has ${Math.min(online, replicaPorts.length)} linked replicas, expected ${replicas}`, node: primary };
    for (const s of sentinelNodes.filter((x) => x.running)) {
      const master = (await query(s.port, (r) => r.call('SENTINEL', 'MASTER', name))) as string[];
      const m = new Map<string, string>();
      for (let i = 0; i + 1 < master.length; i += 2) m.set(String(master[i]), String(master[i + 1]));
      if (m.get('flags') !== 'master') return { why: `${s.label} flags the primary ${m.get('flags')}`, node: s };
      if (m.get('num-other-sentinels') !== String(sentinelCount - 1)) return { why: `${s.label} knows ${m.get('num-other-sentinels')} other sentinels, expected ${sentinelCount - 1}`, node: s };
      const known = (await query(s.port, (r) => r.call('SENTINEL', 'REPLICAS', name))) as string[][];
      for (const p of replicaPorts) {
        const entry = known.map((kv) => new Map(kv.flatMap((v, i) => (i % 2 === 0 ? [[v, String(kv[i + 1])] as const] : [])))).find((e) => e.get('port') === String(p));
        if (entry === undefined) return { why: `${s.label} does not know replica ${p} yet`, node: s };
        if (entry.get('flags') !== 'slave') return { why: `${s.label} flags replica ${p} ${entry.get('flags')}`, node: s };
      }
      const ck = String(await query(s.port, (r) => r.call('SENTINEL', 'CKQUORUM', name)).catch((e: Error) => e.message));
      if (!ck.startsWith('OK')) return { why: `${s.label}: ${ck}`, node: s };
    }
    return null;
  };
  const waitHealthy = (timeoutMs = 20_000): Promise<void> => waitFor('a healthy sentinel group', health, timeoutMs);

  try {
    // The primary first, then its replicas; a port taken meanwhile is replaced by a fresh one.
    primaryNode.configure(primaryNode.port, dataSetup(null));
    await startAll([primaryNode], async (n) => n.configure(await newPort(), dataSetup(null)));
    for (const n of data.slice(1)) n.configure(n.port, dataSetup(primaryNode.port));
    await startAll(data.slice(1), async (n) => n.configure(await newPort(), dataSetup(primaryNode.port)));
    // Sentinels learn the replicas from the primary's INFO: start them once the replicas are linked.
    await waitFor(
      'replicas linked',
      async () => {
        const info = fields(await query(primaryNode.port, (r) => r.info('replication')));
        const online = [...info.entries()].filter(([k, v]) => /^slave\d+$/.test(k) && v.includes('state=online')).length;
        return online >= replicas ? null : { why: `primary has ${online} linked replicas, expected ${replicas}`, node: primaryNode };
      },
      15_000,
    );
    const sentinelOn = (s: Node, port: number): void => {
      writeSentinelConf(port, primaryNode.port);
      s.configure(port, { configFile: sentinelConf(port), args: ['--sentinel'] });
    };
    for (const s of sentinelNodes) sentinelOn(s, s.port);
    await startAll(sentinelNodes, async (s) => {
      rmSync(sentinelConf(s.port), { force: true });
      sentinelOn(s, await newPort());
    });
    await waitHealthy(30_000);
  } catch (e) {
    await stop();
    throw e;
  }

  const sentinels = sentinelNodes.map((s) => `${HOST}:${s.port}`).join(',');
  const primaryPort = async (): Promise<number> => {
    let lastError: unknown = new Error('no sentinel is running');
    for (const s of sentinelNodes.filter((x) => x.running)) {
      try {
        const addr = (await query(s.port, (r) => r.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name))) as [string, string] | null;
        if (addr !== null) return Number(addr[1]);
        lastError = new Error(`${s.label} does not know ${name}`);
      } catch (e) {
        lastError = e;
      }
    }
    throw lastError;
  };
  return {
    name,
    sentinels,
    env: { REDIS_SENTINELS: sentinels, REDIS_SENTINEL_NAME: name },
    dataPorts: data.map((n) => n.port),
    sentinelPorts: sentinelNodes.map((n) => n.port),
    dir,
    primaryPort,
    kill: (port, signal = 'SIGKILL') => byPort(port).kill(signal),
    async restart(port) {
      const n = byPort(port);
      if (data.includes(n)) {
        const current = await primaryPort();
        n.configure(n.port, dataSetup(current === n.port ? null : current));
      }
      await n.start();
    },
    waitHealthy,
    pids: () => all.flatMap((n) => n.pids),
    stop,
  };
}
