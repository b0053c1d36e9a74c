/**
 * Which Redis a store runs on, read from the environment: a single server (`REDIS_URL`), a Redis
 * Cluster (`REDIS_CLUSTER_NODES`) or a primary watched by Redis Sentinel (`REDIS_SENTINELS` +
 * `REDIS_SENTINEL_NAME`). The gatekeeper's edge store reads the same names prefixed `EDGE_`.
 * Exactly one topology per store; every problem is reported as a readable line.
 */

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Credentials and TLS of the data nodes of a cluster or sentinel group (a URL carries its own). */
export interface NodeAuth {
  readonly username: string | null;
  readonly password: string | null;
  /** TLS to the data nodes (as `rediss://` does for a URL). */
  readonly tls: boolean;
}

export type RedisTopology =
  | { readonly kind: 'single'; readonly url: string }
  | ({ readonly kind: 'cluster'; readonly nodes: readonly HostPort[] } & NodeAuth)
  | ({
      readonly kind: 'sentinel';
      readonly sentinels: readonly HostPort[];
      readonly name: string;
      readonly sentinelPassword: string | null;
    } & NodeAuth);

export type Env = Readonly<Record<string, string | undefined>>;

/** The variable names of one store: `''` for the core store, `'EDGE_'` for the gatekeeper's edge store. */
export type StorePrefix = '' | 'EDGE_';

const TOPOLOGY_VARS = ['REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_SENTINELS'] as const;
const NODE_VARS = ['REDIS_USERNAME', 'REDIS_PASSWORD', 'REDIS_TLS', 'REDIS_SENTINEL_NAME', 'REDIS_SENTINEL_PASSWORD'] as const;

/** True if any topology variable of the store is set (non-empty). */
export function hasTopology(env: Env, p: StorePrefix): boolean {
  return TOPOLOGY_VARS.some((v) => nonEmpty(env[p + v]) !== undefined);
}

const nonEmpty = (s: string | undefined): string | undefined => (s === undefined || s.trim() === '' ? undefined : s.trim());

/** `host:port` or `[ipv6]:port`, comma-separated; problems name the variable. */
export function parseHostPorts(name: string, value: string, problems: string[]): HostPort[] {
  const out: HostPort[] = [];
  for (const raw of value.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(item);
    const port = m === null ? NaN : Number(m[3]);
    if (m === null || !(port >= 1 && port <= 65535)) {
      problems.push(`${name}: "${item}" is not host:port`);
      continue;
    }
    out.push({ host: (m[1] ?? m[2])!, port });
  }
  if (out.length === 0 && !problems.some((l) => l.startsWith(`${name}:`))) problems.push(`${name}: lists no host:port`);
  return out;
}

function bool(name: string, value: string | undefined, problems: string[]): boolean {
  const v = nonEmpty(value)?.toLowerCase();
  if (v === undefined || v === 'false' || v === '0' || v === 'no') return false;
  if (v === 'true' || v === '1' || v === 'yes') return true;
  problems.push(`${name}: must be true or false`);
  return false;
}

/**
 * The store's topology, or null when none of its topology variables is set (the caller decides:
 * the core requires one; the edge store falls back to the core store's). Problems are appended.
 */
export function parseTopology(env: Env, p: StorePrefix, problems: string[]): RedisTopology | null {
  const v = (name: string): string | undefined => nonEmpty(env[p + name]);
  const set = TOPOLOGY_VARS.filter((name) => v(name) !== undefined).map((name) => p + name);
  if (set.length > 1) {
    problems.push(`${set.join(', ')}: set only one of them (one Redis topology per store)`);
    return null;
  }
  const url = v('REDIS_URL');
  const clusterNodes = v('REDIS_CLUSTER_NODES');
  const sentinels = v('REDIS_SENTINELS');
  if (set.length === 0) {
    const stray = NODE_VARS.filter((name) => v(name) !== undefined).map((name) => p + name);
    if (stray.length > 0) problems.push(`${stray.join(', ')}: set without ${p}REDIS_CLUSTER_NODES or ${p}REDIS_SENTINELS`);
    return null;
  }
  if (url !== undefined) {
    if (!/^rediss?:\/\/[^\s]+$/.test(url)) problems.push(`${p}REDIS_URL: must be a redis:// or rediss:// URL`);
    const stray = NODE_VARS.filter((name) => v(name) !== undefined).map((name) => p + name);
    if (stray.length > 0) problems.push(`${stray.join(', ')}: only for ${p}REDIS_CLUSTER_NODES or ${p}REDIS_SENTINELS (a ${p}REDIS_URL carries its own credentials and TLS)`);
    return { kind: 'single', url };
  }
  const auth: NodeAuth = {
    username: v('REDIS_USERNAME') ?? null,
    password: env[p + 'REDIS_PASSWORD'] === undefined || env[p + 'REDIS_PASSWORD'] === '' ? null : env[p + 'REDIS_PASSWORD']!,
    tls: bool(`${p}REDIS_TLS`, env[p + 'REDIS_TLS'], problems),
  };
  if (clusterNodes !== undefined) {
    for (const name of ['REDIS_SENTINEL_NAME', 'REDIS_SENTINEL_PASSWORD']) {
      if (v(name) !== undefined) problems.push(`${p}${name}: only for ${p}REDIS_SENTINELS`);
    }
    return { kind: 'cluster', nodes: parseHostPorts(`${p}REDIS_CLUSTER_NODES`, clusterNodes, problems), ...auth };
  }
  const name = v('REDIS_SENTINEL_NAME');
  if (name === undefined) problems.push(`${p}REDIS_SENTINEL_NAME: is required with ${p}REDIS_SENTINELS (the name the sentinels monitor)`);
  const sentinelPassword = env[p + 'REDIS_SENTINEL_PASSWORD'];
  return {
    kind: 'sentinel',
    sentinels: parseHostPorts(`${p}REDIS_SENTINELS`, sentinels!, problems),
    name: name ?? '',
    sentinelPassword: sentinelPassword === undefined || sentinelPassword === '' ? null : sentinelPassword,
    ...auth,
  };
}

/** A topology given as a URL string is a single server. */
export const asTopology = (t: RedisTopology | string): RedisTopology => (typeof t === 'string' ? { kind: 'single', url: t } : t);

/** For logs and errors: where the store is, never a password. */
export function describeTopology(t: RedisTopology): string {
  const list = (hs: readonly HostPort[]): string => hs.map((h) => (h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`)).join(',');
  switch (t.kind) {
    case 'single': {
      try {
        const u = new URL(t.url);
        return `redis ${u.protocol}//${u.host}${u.pathname.length > 1 ? u.pathname : ''}`;
      } catch {
        return 'redis (unparsable URL)';
      }
    }
    case 'cluster':
      return `redis cluster via ${list(t.nodes)}${t.tls ? ' (tls)' : ''}`;
    case 'sentinel':
      return `redis sentinel "${t.name}" via ${list(t.sentinels)}${t.tls ? ' (tls)' : ''}`;
  }
}
