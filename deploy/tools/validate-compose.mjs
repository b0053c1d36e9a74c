// Checks the relay's requirements on docker-compose.yml, after Compose itself has validated and
// resolved it (deploy/validate.sh pipes `docker-compose --env-file .env.example config` in here):
//
//   docker-compose --env-file .env.example config | node deploy/tools/validate-compose.mjs
//
// - scalable gatekeeper: no service has a container_name, the gatekeeper and the core publish no
//   port, the front is the only public service, Prometheus binds to loopback in its own profile;
// - segmentation, read off the networks (two services can talk iff they share one): the core is
//   reached only by the gatekeepers (and Prometheus), the core Redis only by the core, the edge
//   Redis only by the gatekeepers; every network but the front's public one is internal;
// - Redis memory only with noeviction and a password; adaptive difficulty on; the gatekeepers trust
//   X-Forwarded-For from the front's network only;
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
expectOnly('core', ['gatekeeper', 'prometheus', 'redis-core']); // a shared network works both ways
expectOnly('redis-core', ['core']);
expectOnly('redis-edge', ['gatekeeper']);
expectOnly('gatekeeper', ['front', 'core', 'redis-edge', 'prometheus']);

for (const name of ['redis-core', 'redis-edge']) {
  const s = services[name];
  if (!s) continue;
  const argv = Array.isArray(s.command) ? s.command : String(s.command ?? '').split(/\s+/);
  const after = (flag) => (argv.indexOf(flag) >= 0 ? argv[argv.indexOf(flag) + 1] : undefined);
  if (after('--save') !== '') bad(name, 'needs --save "" (no RDB)');
  if (after('--appendonly') !== 'no') bad(name, 'needs --appendonly no (no AOF)');
  if (after('--maxmemory-policy') !== 'noeviction') bad(name, 'needs --maxmemory-policy noeviction');
  if (!after('--maxmemory')) bad(name, 'needs --maxmemory');
  if (!after('--requirepass')) bad(name, 'needs --requirepass');
  if ((s.volumes ?? []).length > 0) bad(name, 'must not mount volumes (persistence off)');
  if (!s.healthcheck) bad(name, 'needs a healthcheck');
}

const env = (name) => services[name]?.environment ?? {};
const gk = env('gatekeeper');
if (!(Number(gk.DIFFICULTY_PERIOD_MIN) > 0)) bad('gatekeeper', 'adaptive difficulty must be on (DIFFICULTY_PERIOD_MIN > 0)');
const frontSubnets = (networks['front-net']?.ipam?.config ?? []).map((c) => c.subnet);
if (!frontSubnets.length || gk.TRUSTED_PROXIES !== frontSubnets.join(',')) bad('gatekeeper', 'TRUSTED_PROXIES must be the front network\'s subnet');
if (!String(gk.CORE_URL ?? '').startsWith('http://core:')) bad('gatekeeper', 'CORE_URL must point at the core service');
if (!String(gk.EDGE_REDIS_URL ?? '').includes('@redis-edge:')) bad('gatekeeper', 'EDGE_REDIS_URL must point at redis-edge with a password');
if (!String(env('core').REDIS_URL ?? '').includes('@redis-core:')) bad('core', 'REDIS_URL must point at redis-core with a password');
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
