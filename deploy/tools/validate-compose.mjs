// Checks the relay's requirements on docker-compose.yml (alone, or with an override such as
// deploy/compose/sentinel.yml), after Compose itself has validated and resolved it
// (deploy/validate.sh writes `docker-compose --env-file .env.example -f ... config` to a file):
//
//   node deploy/tools/validate-compose.mjs resolved.yml
//
// - scalable gatekeeper: no service has a container_name, the gatekeeper and the core publish no
//   port, the front is the only public service, Prometheus binds to loopback in its own profile;
// - segmentation, read off the networks (two services can talk iff they share one): the core is
//   reached only by the gatekeepers (and Prometheus), the core store (redis-core, and with Sentinel
//   every redis-core-* node and sentinel) only by the core and its own members, the edge Redis
//   only by the gatekeepers; every network but the front's public one is internal;
// - Redis memory only (no volume but a read-only script) with noeviction and a password; the
//   core's store topology: exactly one of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES, and for
//   Sentinel three or more sentinels that are services of the store, a sane quorum, the nodes'
//   list, REDIS_WAIT_REPLICAS between 1 and the replicas there are, start-up after all of them;
// - adaptive difficulty on; the gatekeepers trust X-Forwarded-For from the front's network only;
// - depends_on waits for service_healthy, and every service waited for has a health check;
// - the files the services mount exist (Caddy config, Prometheus config).
import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';

const config = parse(readFileSync(process.argv[2] ?? 0, 'utf8'));
const problems = [];
const services = config?.services ?? {};
const networks = config?.networks ?? {};
const bad = (name, msg) => problems.push(`${name}: ${msg}`);

for (const name of ['redis-core', 'redis-edge', 'core', 'gatekeeper', 'front', 'prometheus']) {
  if (!services[name]) problems.push(`service ${name} is missing`);
}

// The stores: redis-core and, replicated, every redis-core-* service (nodes and sentinels).
const coreStore = Object.keys(services).filter((n) => /^redis-core(-|$)/.test(n));
const edgeStore = Object.keys(services).filter((n) => /^redis-edge(-|$)/.test(n));
const argvOf = (s) => (Array.isArray(s.command) ? s.command : String(s.command ?? '').split(/\s+/));
/** 'data' or 'sentinel' for a service started by redis-store.sh, 'redis-server' for a plain Redis. */
const storeMode = (s) => {
  const argv = argvOf(s);
  return argv[0] === 'sh' && /redis-store\.sh$/.test(argv[1] ?? '') ? argv[2] : 'redis-server';
};
const dataNodes = coreStore.filter((n) => storeMode(services[n]) !== 'sentinel');
const sentinelNodes = coreStore.filter((n) => storeMode(services[n]) === 'sentinel');

const netsOf = (s) => (Array.isArray(s.networks) ? s.networks : Object.keys(s.networks ?? { default: null }));
const talk = (a, b) => netsOf(services[a]).some((n) => netsOf(services[b]).includes(n));

for (const [name, s] of Object.entries(services)) {
  if (s.container_name !== undefined) bad(name, 'container_name prevents scaling');
  const ports = s.ports ?? [];
  if (name === 'prometheus') {
    if (!(s.profiles ?? []).length) bad(name, 'must be in an optional profile');
    for (const p of ports) if (!String(typeof p === 'object' ? p.host_ip : p).startsWith('127.0.0.1')) bad(name, 'publish on 127.0.0.1 only');
  } else if (name !== 'front' && ports.length > 0) {
    bad(name, 'must not publish ports (only the front is public)');
  }
  for (const [dep, how] of Object.entries(Array.isArray(s.depends_on) ? {} : (s.depends_on ?? {}))) {
    if (how?.condition !== 'service_healthy') bad(name, `depends_on ${dep}: use condition service_healthy`);
    if (!services[dep]?.healthcheck) bad(name, `depends_on ${dep}, which has no healthcheck`);
  }
  if (Array.isArray(s.depends_on)) bad(name, 'depends_on must wait for service_healthy');
  for (const n of netsOf(s)) {
    if (!(n in networks) && n !== 'default') bad(name, `network ${n} is not declared`);
    if (n !== 'public' && n !== 'prometheus-ui' && networks[n]?.internal !== true) bad(name, `network ${n} must be internal`);
  }
  for (const v of s.volumes ?? []) {
    const src = typeof v === 'string' ? v.split(':')[0] : v.source;
    if (typeof src === 'string' && src.startsWith('/') && /\/deploy\/(caddy|prometheus)\b/.test(src) && !existsSync(src)) bad(name, `mounts ${src}, which does not exist`);
  }
}
if (!(services.front?.ports ?? []).some((p) => String(typeof p === 'object' ? p.target : p).endsWith('443'))) bad('front', 'must publish 443');

// Who can open a connection to whom.
const expectOnly = (target, allowed) => {
  if (!services[target]) return;
  for (const other of Object.keys(services)) {
    if (other === target) continue;
    const may = talk(other, target);
    if (may !== allowed.includes(other)) bad(target, `${other} ${may ? 'shares' : 'does not share'} a network with it (allowed: ${allowed.join(', ')})`);
  }
};
expectOnly('core', ['gatekeeper', 'prometheus', ...coreStore]); // a shared network works both ways
for (const n of coreStore) expectOnly(n, ['core', ...coreStore]);
for (const n of edgeStore) expectOnly(n, ['gatekeeper', ...edgeStore]);
expectOnly('gatekeeper', ['front', 'core', ...edgeStore, 'prometheus']);

for (const name of [...coreStore, ...edgeStore]) {
  const s = services[name];
  const argv = argvOf(s);
  const after = (flag) => (argv.indexOf(flag) >= 0 ? argv[argv.indexOf(flag) + 1] : undefined);
  if (storeMode(s) !== 'sentinel') {
    if (after('--save') !== '') bad(name, 'needs --save "" (no RDB)');
    if (after('--appendonly') !== 'no') bad(name, 'needs --appendonly no (no AOF)');
    if (after('--maxmemory-policy') !== 'noeviction') bad(name, 'needs --maxmemory-policy noeviction');
    if (!after('--maxmemory')) bad(name, 'needs --maxmemory');
    if (!after('--requirepass')) bad(name, 'needs --requirepass');
  } else if (!s.environment?.REDISCLI_AUTH) {
    bad(name, 'a sentinel needs its password (REDISCLI_AUTH)');
  }
  // Persistence off: no volume but a read-only bind mount of an existing file (redis-store.sh).
  for (const v of s.volumes ?? []) {
    const [src, , mode] = typeof v === 'string' ? v.split(':') : [v.source, v.target, v.read_only ? 'ro' : 'rw'];
    if (!(typeof src === 'string' && src.startsWith('/') && mode === 'ro' && existsSync(src))) bad(name, `must not mount volumes (persistence off), only read-only files: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  }
  if (!(s.tmpfs ?? []).some((t) => String(t).startsWith('/data'))) bad(name, '/data must be a tmpfs (memory)');
  if (!s.healthcheck) bad(name, 'needs a healthcheck');
}

const env = (name) => services[name]?.environment ?? {};
const gk = env('gatekeeper');
if (!(Number(gk.DIFFICULTY_PERIOD_MIN) > 0)) bad('gatekeeper', 'adaptive difficulty must be on (DIFFICULTY_PERIOD_MIN > 0)');
const frontSubnets = (networks['front-net']?.ipam?.config ?? []).map((c) => c.subnet);
if (!frontSubnets.length || gk.TRUSTED_PROXIES !== frontSubnets.join(',')) bad('gatekeeper', 'TRUSTED_PROXIES must be the front network\'s subnet');
if (!String(gk.CORE_URL ?? '').startsWith('http://core:')) bad('gatekeeper', 'CORE_URL must point at the core service');
if (!String(gk.EDGE_REDIS_URL ?? '').includes('@redis-edge:')) bad('gatekeeper', 'EDGE_REDIS_URL must point at redis-edge with a password');
// The core store's topology: exactly one; a single Redis by URL, or the Sentinel group.
const coreEnv = env('core');
const topologies = ['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'].filter((v) => String(coreEnv[v] ?? '') !== '');
if (topologies.length !== 1) bad('core', `exactly one of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES must be set (empty is unset), got ${topologies.join(', ') || 'none'}`);
if (coreEnv.REDIS_URL && !String(coreEnv.REDIS_URL).includes('@redis-core:')) bad('core', 'REDIS_URL must point at redis-core with a password');
if (coreEnv.REDIS_URL && coreStore.length > 1) bad('core', `REDIS_URL with a replicated store (${coreStore.join(', ')}): use REDIS_SENTINELS`);
if (coreEnv.REDIS_SENTINELS) {
  const storeEnv = (n) => services[n]?.environment ?? {};
  for (const v of ['REDIS_SENTINEL_NAME', 'REDIS_PASSWORD', 'REDIS_SENTINEL_PASSWORD']) if (!coreEnv[v]) bad('core', `${v} is not set (with REDIS_SENTINELS)`);
  const named = String(coreEnv.REDIS_SENTINELS).split(',').map((hp) => hp.trim());
  for (const hp of named) {
    const [host, port] = hp.split(':');
    if (!sentinelNodes.includes(host)) bad('core', `REDIS_SENTINELS: ${host} is not a sentinel of the core store (${sentinelNodes.join(', ') || 'none'})`);
    if (port !== '26379') bad('core', `REDIS_SENTINELS: ${hp}: the sentinels listen on 26379`);
  }
  if (new Set(named).size !== sentinelNodes.length) bad('core', `REDIS_SENTINELS names ${new Set(named).size} sentinels, the store runs ${sentinelNodes.length}`);
  if (sentinelNodes.length < 3 || sentinelNodes.length % 2 === 0) bad('core', `${sentinelNodes.length} sentinels: run an odd number, three or more`);
  if (dataNodes.length < 2) bad('core', 'a replicated store needs two data nodes or more');
  const wait = Number(coreEnv.REDIS_WAIT_REPLICAS ?? 0);
  if (!(wait >= 1 && wait <= dataNodes.length - 1)) bad('core', `REDIS_WAIT_REPLICAS=${coreEnv.REDIS_WAIT_REPLICAS ?? ''}: between 1 and ${dataNodes.length - 1} (the replicas a primary has), so that a failover loses no acknowledged upload`);
  for (const n of coreStore) {
    const e = storeEnv(n);
    if (e.STORE_SELF !== n) bad(n, `STORE_SELF must be its service name ${n}`);
    if (e.STORE_NAME !== coreEnv.REDIS_SENTINEL_NAME) bad(n, `STORE_NAME ${e.STORE_NAME} is not the core's REDIS_SENTINEL_NAME ${coreEnv.REDIS_SENTINEL_NAME}`);
    if (String(e.STORE_NODES ?? '').split(',').join(',') !== ['redis-core', ...dataNodes.filter((d) => d !== 'redis-core')].join(',')) bad(n, `STORE_NODES must list the data nodes, redis-core first: ${dataNodes.join(',')}`);
    if (String(e.STORE_SENTINELS ?? '').split(',').sort().join(',') !== [...sentinelNodes].sort().join(',')) bad(n, `STORE_SENTINELS must list the sentinels ${sentinelNodes.join(',')}`);
    const quorum = Number(e.STORE_QUORUM ?? 2);
    if (!(quorum > sentinelNodes.length / 2 && quorum <= sentinelNodes.length)) bad(n, `quorum ${quorum} of ${sentinelNodes.length} sentinels: more than half, at most all`);
    if (e.REDISCLI_AUTH !== coreEnv.REDIS_PASSWORD) bad(n, 'its password (REDISCLI_AUTH) is not the core\'s REDIS_PASSWORD');
    const deps = services.core?.depends_on ?? {};
    if (!Array.isArray(deps) && !deps[n]) bad('core', `must start after ${n} is healthy (depends_on)`);
  }
}
if (env('core').CORE_HOST !== '0.0.0.0') bad('core', 'CORE_HOST must be 0.0.0.0 inside its container');
for (const name of ['core', 'gatekeeper']) {
  const s = services[name];
  if (!s) continue;
  if (!s.healthcheck) bad(name, 'needs a healthcheck');
  if (s.read_only !== true) bad(name, 'read_only root filesystem');
  if (!(s.cap_drop ?? []).includes('ALL')) bad(name, 'cap_drop ALL');
  if (String(env(name).INTERNAL_SECRET ?? '') === '') bad(name, 'INTERNAL_SECRET is empty');
}

// Prometheus scrapes every replica of both services on their admin ports.
const promMount = (services.prometheus?.volumes ?? [])
  .map((v) => (typeof v === 'string' ? v.split(':') : [v.source, v.target]))
  .find(([, target]) => target === '/etc/prometheus/prometheus.yml');
if (!promMount) bad('prometheus', 'no /etc/prometheus/prometheus.yml mounted');
else if (existsSync(promMount[0])) {
  let prom;
  try {
    prom = parse(readFileSync(promMount[0], 'utf8'));
  } catch (err) {
    bad('prometheus', `${promMount[0]}: ${err.message}`);
  }
  const scrapes = (service, port) =>
    (prom?.scrape_configs ?? []).some((job) =>
      [...(job.dns_sd_configs ?? []).filter((sd) => (sd.names ?? []).includes(service) && String(sd.port) === String(port)),
       ...(job.static_configs ?? []).filter((sc) => (sc.targets ?? []).includes(`${service}:${port}`))].length > 0);
  if (prom !== undefined && !Array.isArray(prom?.scrape_configs)) bad('prometheus', `${promMount[0]}: no scrape_configs`);
  else if (prom !== undefined) {
    if (!env('gatekeeper').ADMIN_PORT || !scrapes('gatekeeper', env('gatekeeper').ADMIN_PORT)) bad('prometheus', 'must scrape every gatekeeper on ADMIN_PORT');
    if (!env('core').CORE_ADMIN_PORT || !scrapes('core', env('core').CORE_ADMIN_PORT)) bad('prometheus', 'must scrape every core on CORE_ADMIN_PORT');
  }
}

if (problems.length > 0) {
  for (const p of problems) process.stderr.write(`validate-compose: ${p}\n`);
  process.exit(1);
}
process.stdout.write(`validate-compose: ${Object.keys(services).length} services, relay policy OK\n`);
