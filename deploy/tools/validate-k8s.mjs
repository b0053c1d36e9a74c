// Validates rendered Kubernetes manifests (the output of `kubectl kustomize <overlay>`), offline.
//
//   node deploy/tools/validate-k8s.mjs <label>=<rendered.yaml> ...
//
// 1. Schema: every object against the Kubernetes OpenAPI schema of its apiVersion/kind, as compiled
//    into JSON-schema validators (ajv) by the `kubernetes-models` package (types, formats, enums,
//    required fields). An apiVersion/kind it does not know is an error.
// 2. Strict: no unknown fields (what kubeconform's -strict and `kubectl --validate=strict` catch: a
//    misspelt or misplaced field is otherwise silently dropped by the API server). The objects are
//    type-checked with TypeScript against the same package's interfaces, which carry the OpenAPI
//    property lists; excess-property checks flag every unknown field.
// 3. Relay policy and references: the relay's requirements in deploy/README.md and docs/DESIGN.md (probes,
//    resources, non-root read-only containers without capabilities, memory-only Redis with
//    noeviction and a password, adaptive difficulty on, TLS on the Ingress, HPA, PDBs), and that
//    every Service, probe, HPA, PDB, NetworkPolicy, Ingress backend and ConfigMap/Secret reference
//    points at something that exists; the core's store topology (exactly one of REDIS_URL,
//    REDIS_SENTINELS, REDIS_CLUSTER_NODES; for Sentinel: every sentinel it names is a pod of a
//    headless StatefulSet, three or more sentinels, data nodes and sentinels spread over nodes
//    with PDBs, REDIS_WAIT_REPLICAS between 1 and the replicas there are, memory-only volumes);
//    NetworkPolicy is evaluated (ingress and egress) so that only gatekeeper pods reach core
//    pods, only core pods (and, replicated, the store's own nodes and sentinels) reach the core
//    Redis and its sentinels, only gatekeeper pods reach the edge Redis.
// Exit 1 with one line per problem.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';

const TOOLS = dirname(fileURLToPath(import.meta.url));
const problems = [];
const args = process.argv.slice(2);
if (args.length === 0) {
  process.stderr.write('usage: node validate-k8s.mjs <label>=<rendered.yaml> ...\n');
  process.exit(2);
}

/** @returns {{label: string, objects: object[]}[]} */
function load() {
  return args.map((arg) => {
    const eq = arg.indexOf('=');
    const [label, file] = eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, arg];
    const objects = [];
    for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
      if (doc.errors.length > 0) problems.push(`${label}: YAML: ${doc.errors[0].message}`);
      const obj = doc.toJS();
      if (obj !== null && obj !== undefined) objects.push(obj);
    }
    if (objects.length === 0) problems.push(`${label}: no objects rendered`);
    return { label, objects };
  });
}

const idOf = (o) => `${o.kind ?? '?'}/${o.metadata?.name ?? '?'}`;
/** `apps/v1` + `Deployment` → `kubernetes-models/apps/v1/Deployment`; core group `v1` → `kubernetes-models/v1/...`. */
const modelPath = (o) => `kubernetes-models/${o.apiVersion}/${o.kind}`;

// ---- 1. schema -------------------------------------------------------------------------------
async function checkSchemas(label, objects) {
  for (const o of objects) {
    if (typeof o.apiVersion !== 'string' || typeof o.kind !== 'string' || !/^[A-Za-z0-9.\/-]+$/.test(o.apiVersion) || !/^[A-Za-z]+$/.test(o.kind)) {
      problems.push(`${label}: ${idOf(o)}: missing or malformed apiVersion/kind`);
      continue;
    }
    let Model;
    try {
      Model = (await import(modelPath(o)))[o.kind];
    } catch {
      Model = undefined;
    }
    if (typeof Model !== 'function') {
      problems.push(`${label}: ${idOf(o)}: no Kubernetes schema for ${o.apiVersion} ${o.kind}`);
      continue;
    }
    try {
      new Model(o).validate();
    } catch (err) {
      problems.push(`${label}: ${idOf(o)}: schema: ${String(err.message ?? err).split('\n').join('; ')}`);
    }
  }
}

// ---- 2. strict: unknown fields ---------------------------------------------------------------
function checkStrict(sets) {
  const dir = mkdtempSync(join(TOOLS, '.tmp-strict-'));
  try {
    const file = join(dir, 'manifests.ts');
    const lines = [];
    const owners = []; // line index → "label: Kind/name"
    sets.forEach(({ label, objects }) => {
      objects.forEach((o, i) => {
        if (typeof o.apiVersion !== 'string' || typeof o.kind !== 'string') return;
        const body = JSON.stringify(o, null, 2).split('\n');
        const start = lines.length;
        lines.push(`export const o${lines.length}_${i}: import(${JSON.stringify(modelPath(o))}).I${o.kind} = ${body[0]}`, ...body.slice(1));
        lines[lines.length - 1] += ';';
        for (let l = start; l < lines.length; l++) owners[l] = `${label}: ${idOf(o)}`;
      });
    });
    writeFileSync(file, `${lines.join('\n')}\n`);
    const program = ts.createProgram([file], {
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      types: [],
    });
    for (const d of ts.getPreEmitDiagnostics(program)) {
      const msg = ts.flattenDiagnosticMessageText(d.messageText, ' ');
      if (d.file === undefined || d.start === undefined) {
        problems.push(`strict check: ${msg}`);
        continue;
      }
      const { line } = d.file.getLineAndCharacterOfPosition(d.start);
      problems.push(`${owners[line] ?? '?'}: strict: ${lines[line]?.trim()} — ${msg}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- 3. relay policy and references ----------------------------------------------------------
const matches = (selector, labels) =>
  selector !== undefined &&
  Object.entries(selector.matchLabels ?? selector).every(([k, v]) => labels?.[k] === v) &&
  (selector.matchExpressions ?? []).length === 0;

function checkPolicy(label, objects) {
  const bad = (o, msg) => problems.push(`${label}: ${idOf(o)}: ${msg}`);
  const byKind = (kind) => objects.filter((o) => o.kind === kind);
  const named = (kind, name) => objects.find((o) => o.kind === kind && o.metadata?.name === name);
  const workloads = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
  const podsOf = (w) => w.spec?.template ?? {};
  const component = (w) => podsOf(w).metadata?.labels?.['app.kubernetes.io/component'];
  const byComponent = (c) => workloads.find((w) => component(w) === c);

  for (const c of ['gatekeeper', 'core', 'redis-core', 'redis-edge']) {
    if (byComponent(c) === undefined) problems.push(`${label}: no workload for component ${c}`);
  }

  // Namespaced objects all land in one namespace.
  const namespaces = new Set(objects.filter((o) => o.kind !== 'Namespace').map((o) => o.metadata?.namespace));
  if (namespaces.size !== 1 || namespaces.has(undefined)) problems.push(`${label}: objects must share one namespace, got ${[...namespaces].join(', ')}`);

  for (const w of workloads) {
    const pod = podsOf(w).spec ?? {};
    if (!matches(w.spec?.selector, podsOf(w).metadata?.labels)) bad(w, 'selector does not match its pod template labels');
    if (pod.automountServiceAccountToken !== false) bad(w, 'automountServiceAccountToken must be false');
    for (const c of pod.containers ?? []) {
      const sc = c.securityContext ?? {};
      const where = `container ${c.name}`;
      if (!(sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot)) bad(w, `${where}: runAsNonRoot must be true`);
      if ((sc.runAsUser ?? pod.securityContext?.runAsUser ?? 0) === 0) bad(w, `${where}: runAsUser must be a non-zero UID`);
      if (sc.readOnlyRootFilesystem !== true) bad(w, `${where}: readOnlyRootFilesystem must be true`);
      if (sc.allowPrivilegeEscalation !== false) bad(w, `${where}: allowPrivilegeEscalation must be false`);
      if (!(sc.capabilities?.drop ?? []).includes('ALL')) bad(w, `${where}: capabilities must drop ALL`);
      if ((sc.seccompProfile ?? pod.securityContext?.seccompProfile)?.type !== 'RuntimeDefault') bad(w, `${where}: seccompProfile RuntimeDefault`);
      if (!c.readinessProbe || !c.livenessProbe) bad(w, `${where}: needs readiness and liveness probes`);
      if (!c.resources?.requests?.memory || !c.resources?.requests?.cpu || !c.resources?.limits?.memory) {
        bad(w, `${where}: needs cpu+memory requests and a memory limit`);
      }
      const portNames = new Set((c.ports ?? []).map((p) => p.name));
      for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe]) {
        const port = probe?.httpGet?.port ?? probe?.tcpSocket?.port;
        if (typeof port === 'string' && !portNames.has(port)) bad(w, `${where}: probe port ${port} is not a container port`);
      }
      // ConfigMap / Secret references resolve (optional ones may be absent).
      const ref = (kind, name, key, optional) => {
        const target = named(kind, name);
        if (target === undefined) {
          if (!optional) bad(w, `${where}: ${kind} ${name} is not rendered`);
        } else if (key !== undefined && !(key in (target.data ?? {})) && !(key in (target.stringData ?? {})) && !optional) {
          bad(w, `${where}: ${kind} ${name} has no key ${key}`);
        }
      };
      for (const e of c.envFrom ?? []) {
        if (e.configMapRef) ref('ConfigMap', e.configMapRef.name, undefined, e.configMapRef.optional);
        if (e.secretRef) ref('Secret', e.secretRef.name, undefined, e.secretRef.optional);
      }
      for (const e of c.env ?? []) {
        const cm = e.valueFrom?.configMapKeyRef;
        const s = e.valueFrom?.secretKeyRef;
        if (cm) ref('ConfigMap', cm.name, cm.key, cm.optional);
        if (s) ref('Secret', s.name, s.key, s.optional);
      }
    }
  }

  // The relay's containers, their settings and the Redis stores.
  const envOf = (w) => {
    const c = podsOf(w).spec?.containers?.[0] ?? {};
    const env = {};
    for (const e of c.envFrom ?? []) Object.assign(env, named('ConfigMap', e.configMapRef?.name)?.data ?? {});
    for (const e of c.env ?? []) env[e.name] = e.value ?? `<${e.valueFrom ? 'ref' : ''}>`;
    return env;
  };
  const gk = byComponent('gatekeeper');
  const core = byComponent('core');
  if (gk) {
    const env = envOf(gk);
    if (!(Number(env.DIFFICULTY_PERIOD_MIN) > 0)) bad(gk, 'adaptive difficulty must be on (DIFFICULTY_PERIOD_MIN > 0)');
    for (const v of ['INTERNAL_SECRET', 'EDGE_REDIS_URL', 'CORE_URL', 'TRUSTED_PROXIES']) if (!env[v]) bad(gk, `${v} is not set`);
    if (podsOf(gk).spec?.containers?.[0]?.args?.[0] !== 'gatekeeper') bad(gk, 'must run the image with the argument "gatekeeper"');
  }
  if (core) {
    const env = envOf(core);
    for (const v of ['INTERNAL_SECRET']) if (!env[v]) bad(core, `${v} is not set`);
    const topologies = ['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'].filter((v) => env[v]);
    if (topologies.length !== 1) bad(core, `exactly one of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES must be set, got ${topologies.join(', ') || 'none'}`);
    if (env.CORE_HOST !== '0.0.0.0') bad(core, 'CORE_HOST must be 0.0.0.0 to be reachable from the gatekeepers');
    if (podsOf(core).spec?.containers?.[0]?.args?.[0] !== 'core') bad(core, 'must run the image with the argument "core"');
  }
  for (const c of ['redis-core', 'redis-edge']) {
    const w = byComponent(c);
    if (!w) continue;
    if (w.kind !== 'StatefulSet') bad(w, 'Redis runs as a StatefulSet');
    if ((w.spec?.volumeClaimTemplates ?? []).length > 0) bad(w, 'Redis must not persist (no volumeClaimTemplates)');
    const argv = [...(podsOf(w).spec?.containers?.[0]?.command ?? []), ...(podsOf(w).spec?.containers?.[0]?.args ?? [])];
    const after = (flag) => (argv.indexOf(flag) >= 0 ? argv[argv.indexOf(flag) + 1] : undefined);
    if (after('--save') !== '') bad(w, 'Redis needs --save "" (no RDB)');
    if (after('--appendonly') !== 'no') bad(w, 'Redis needs --appendonly no (no AOF)');
    if (after('--maxmemory-policy') !== 'noeviction') bad(w, 'Redis needs --maxmemory-policy noeviction');
    if (!after('--maxmemory')) bad(w, 'Redis needs --maxmemory');
    if (!after('--requirepass')) bad(w, 'Redis needs --requirepass');
  }

  // The core store replicated with Sentinel (REDIS_SENTINELS): the sentinels named are pods of a
  // headless StatefulSet, the data nodes too, both spread over nodes and covered by a PDB.
  const sentinelComponent = (() => {
    const env = core ? envOf(core) : {};
    if (!env.REDIS_SENTINELS) return undefined;
    if (!env.REDIS_SENTINEL_NAME) bad(core, 'REDIS_SENTINELS without REDIS_SENTINEL_NAME');
    for (const v of ['REDIS_PASSWORD', 'REDIS_SENTINEL_PASSWORD']) if (!env[v]) bad(core, `${v} is not set (the store's password, with REDIS_SENTINELS)`);
    /** `<statefulset>-<n>.<service>` → the StatefulSet, when n is one of its pods and the Service is its headless governing Service. */
    const podOf = (host) => {
      const m = /^([a-z0-9-]+)-([0-9]+)\.([a-z0-9-]+)$/.exec(host);
      const w = m && byKind('StatefulSet').find((x) => x.metadata?.name === m[1] && x.spec?.serviceName === m[3]);
      if (!w) return undefined;
      if (!(Number(m[2]) < (w.spec?.replicas ?? 1))) return undefined;
      return w;
    };
    const headless = (w, what) => {
      const svc = named('Service', w.spec?.serviceName);
      if (svc && svc.spec?.clusterIP !== 'None') bad(svc, `governs the ${what} StatefulSet: must be headless (clusterIP: None) for per-pod names`);
      if (svc && svc.spec?.publishNotReadyAddresses !== true) bad(svc, `governs the ${what} StatefulSet: publishNotReadyAddresses must be true (replicas sync before they are ready)`);
      return svc;
    };
    const spread = (w, what) => {
      const labels = podsOf(w).metadata?.labels;
      const terms = podsOf(w).spec?.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
      if (!terms.some((t) => t.topologyKey === 'kubernetes.io/hostname' && matches(t.labelSelector, labels))) bad(w, `${what}: needs required pod anti-affinity on kubernetes.io/hostname (one per node)`);
      if (!byKind('PodDisruptionBudget').some((p) => matches(p.spec?.selector, labels))) bad(w, `${what}: no PodDisruptionBudget`);
      for (const v of podsOf(w).spec?.volumes ?? []) {
        if (v.emptyDir && v.emptyDir.medium !== 'Memory') bad(w, `${what}: emptyDir ${v.name} must be medium Memory (nothing of the store on a disk)`);
        if (v.persistentVolumeClaim || v.hostPath) bad(w, `${what}: volume ${v.name} would put the store on a disk`);
      }
    };
    const hosts = env.REDIS_SENTINELS.split(',').map((h) => h.trim());
    const sentinels = new Set();
    for (const hp of hosts) {
      const [host, port] = hp.split(':');
      const w = podOf(host);
      if (!w) { bad(core, `REDIS_SENTINELS: ${host} is not a pod of a rendered StatefulSet (<statefulset>-<n>.<service>)`); continue; }
      sentinels.add(w);
      const svc = named('Service', w.spec?.serviceName);
      if (!(svc?.spec?.ports ?? []).some((p) => String(p.port) === port)) bad(core, `REDIS_SENTINELS: ${hp}: port ${port} is not a port of Service ${svc?.metadata?.name}`);
    }
    if (sentinels.size !== 1) { if (sentinels.size > 1) bad(core, 'REDIS_SENTINELS names pods of more than one StatefulSet'); return undefined; }
    const s = [...sentinels][0];
    const n = s.spec?.replicas ?? 1;
    if (n < 3 || n % 2 === 0) bad(s, `${n} sentinels: run an odd number, three or more`);
    if (new Set(hosts).size !== n) bad(core, `REDIS_SENTINELS names ${new Set(hosts).size} sentinels, the StatefulSet runs ${n}`);
    headless(s, 'sentinel');
    spread(s, 'sentinels');
    const senv = envOf(s);
    if (senv.STORE_NAME !== undefined && senv.STORE_NAME !== env.REDIS_SENTINEL_NAME) bad(s, `monitors ${senv.STORE_NAME}, the core asks for ${env.REDIS_SENTINEL_NAME}`);
    const quorum = Number(senv.STORE_QUORUM ?? 2);
    if (!(quorum > n / 2 && quorum <= n)) bad(s, `quorum ${quorum} of ${n} sentinels: more than half, at most all`);
    const data = byComponent('redis-core');
    if (data) {
      const r = data.spec?.replicas ?? 1;
      if (r < 2) bad(data, 'a replicated store needs two data nodes or more');
      headless(data, 'data');
      spread(data, 'data nodes');
      const nodes = `${senv.STORE_NODES ?? ''}`.split(',').filter(Boolean);
      const expected = Array.from({ length: r }, (_, i) => `${data.metadata?.name}-${i}.${data.spec?.serviceName}`);
      if (nodes.join(',') !== expected.join(',')) bad(s, `STORE_NODES must list the data nodes ${expected.join(',')}, got ${nodes.join(',')}`);
      if (envOf(data).STORE_NODES !== senv.STORE_NODES) bad(data, 'STORE_NODES differs from the sentinels\'');
      const wait = Number(env.REDIS_WAIT_REPLICAS ?? 0);
      if (!(wait >= 1 && wait <= r - 1)) bad(core, `REDIS_WAIT_REPLICAS=${env.REDIS_WAIT_REPLICAS ?? ''}: between 1 and ${r - 1} (the replicas a primary has), so that a failover loses no acknowledged upload`);
    }
    return component(s);
  })();

  // Services select pods and name ports those pods have.
  for (const s of byKind('Service')) {
    const targets = workloads.filter((w) => matches(s.spec?.selector, podsOf(w).metadata?.labels));
    if (targets.length === 0) {
      bad(s, 'selector matches no workload');
      continue;
    }
    if (s.spec?.type === 'LoadBalancer' || s.spec?.type === 'NodePort') bad(s, 'only the Ingress is public: no LoadBalancer/NodePort Services');
    for (const p of s.spec?.ports ?? []) {
      if (typeof p.targetPort !== 'string') continue;
      const ok = targets.every((w) => (podsOf(w).spec?.containers ?? []).some((c) => (c.ports ?? []).some((cp) => cp.name === p.targetPort)));
      if (!ok) bad(s, `targetPort ${p.targetPort} is not a port of the selected pods`);
    }
  }
  for (const w of byKind('StatefulSet')) {
    if (!named('Service', w.spec?.serviceName)) bad(w, `serviceName ${w.spec?.serviceName} is not rendered`);
  }

  // HPA on the gatekeeper; PDBs select workloads.
  const hpas = byKind('HorizontalPodAutoscaler');
  if (!hpas.some((h) => h.spec?.scaleTargetRef?.kind === 'Deployment' && h.spec?.scaleTargetRef?.name === gk?.metadata?.name)) {
    problems.push(`${label}: no HorizontalPodAutoscaler on the gatekeeper Deployment`);
  }
  for (const h of hpas) {
    const t = h.spec?.scaleTargetRef;
    const target = named(t?.kind, t?.name);
    if (!target) bad(h, `scaleTargetRef ${t?.kind}/${t?.name} is not rendered`);
    else if (target.spec?.replicas !== undefined) bad(target, 'has spec.replicas although an HPA scales it (every apply would reset the count)');
    if (!(h.spec?.minReplicas <= h.spec?.maxReplicas)) bad(h, 'minReplicas > maxReplicas');
  }
  const pdbs = byKind('PodDisruptionBudget');
  for (const p of pdbs) if (!workloads.some((w) => matches(p.spec?.selector, podsOf(w).metadata?.labels))) bad(p, 'selector matches no workload');
  for (const w of [gk, core]) if (w && !pdbs.some((p) => matches(p.spec?.selector, podsOf(w).metadata?.labels))) bad(w, 'no PodDisruptionBudget');

  // Ingress: TLS for every host, backends exist.
  const ingresses = byKind('Ingress');
  if (ingresses.length === 0) problems.push(`${label}: no Ingress`);
  for (const ing of ingresses) {
    const tlsHosts = new Set((ing.spec?.tls ?? []).flatMap((t) => t.hosts ?? []));
    for (const rule of ing.spec?.rules ?? []) {
      if (!tlsHosts.has(rule.host)) bad(ing, `host ${rule.host} has no TLS`);
      for (const path of rule.http?.paths ?? []) {
        const b = path.backend?.service;
        const svc = named('Service', b?.name);
        if (!svc) bad(ing, `backend Service ${b?.name} is not rendered`);
        else if (!(svc.spec?.ports ?? []).some((p) => p.name === b.port?.name || p.port === b.port?.number)) bad(ing, `backend port of ${b.name} does not exist`);
        else if (!matches(svc.spec?.selector, podsOf(gk ?? {}).metadata?.labels)) bad(ing, 'the Ingress must route to the gatekeepers only');
      }
    }
  }

  // NetworkPolicy: who may open a connection to whom, inside the namespace.
  const policies = byKind('NetworkPolicy');
  for (const np of policies) {
    const sel = np.spec?.podSelector ?? {};
    if (Object.keys(sel.matchLabels ?? {}).length > 0 && !workloads.some((w) => matches(sel, podsOf(w).metadata?.labels))) bad(np, 'podSelector matches no workload');
  }
  /** Does a NetworkPolicy peer (same namespace) select the pods of workload `w`? */
  const peerSelects = (peer, w) => peer.podSelector !== undefined && peer.namespaceSelector === undefined && peer.ipBlock === undefined && matches(peer.podSelector, podsOf(w).metadata?.labels);
  /** Does a rule's port list admit TCP `port` on the pods of workload `dst`? */
  const portOk = (rule, dst, port) =>
    !rule.ports || rule.ports.some((p) => (p.protocol ?? 'TCP') === 'TCP' && (p.port === undefined || p.port === port || (podsOf(dst).spec?.containers ?? []).some((c) => (c.ports ?? []).some((cp) => cp.name === p.port && cp.containerPort === port))));
  /** May pods of workload `src` open TCP `port` to pods of workload `dst` (both policy sides, same namespace)? */
  const reach = (src, dst, port) => {
    const applying = (type, w) => policies.filter((np) => (np.spec?.policyTypes ?? (type === 'Ingress' ? ['Ingress'] : [])).includes(type) && matches(np.spec?.podSelector ?? {}, podsOf(w).metadata?.labels));
    const inbound = applying('Ingress', dst);
    const ingressOk = inbound.length === 0 || inbound.some((np) => (np.spec?.ingress ?? []).some((rule) => portOk(rule, dst, port) && (!rule.from || rule.from.some((peer) => peerSelects(peer, src)))));
    const outbound = applying('Egress', src);
    const egressOk = outbound.length === 0 || outbound.some((np) => (np.spec?.egress ?? []).some((rule) => portOk(rule, dst, port) && (!rule.to || rule.to.some((peer) => peerSelects(peer, dst)))));
    return ingressOk && egressOk;
  };
  const expectOnly = (dstComponent, port, allowed) => {
    const dst = byComponent(dstComponent);
    if (!dst) return;
    for (const src of workloads) {
      const may = reach(src, dst, port);
      const should = allowed.includes(component(src));
      if (may !== should) problems.push(`${label}: NetworkPolicy: ${component(src)} ${may ? 'can' : 'cannot'} reach ${dstComponent}:${port} (only ${allowed.join(', ')} may)`);
    }
  };
  expectOnly('core', 8081, ['gatekeeper']);
  if (sentinelComponent) {
    const store = ['core', 'redis-core', sentinelComponent];
    expectOnly('redis-core', 6379, store);
    const sentinelPort = Number(named('Service', byComponent(sentinelComponent)?.spec?.serviceName)?.spec?.ports?.[0]?.port ?? 26379);
    expectOnly(sentinelComponent, sentinelPort, store);
  } else {
    expectOnly('redis-core', 6379, ['core']);
  }
  expectOnly('redis-edge', 6379, ['gatekeeper']);
}

const sets = load();
for (const { label, objects } of sets) {
  await checkSchemas(label, objects);
  checkPolicy(label, objects);
}
checkStrict(sets);

for (const { label, objects } of sets) process.stdout.write(`validate-k8s: ${label}: ${objects.length} objects\n`);
if (problems.length > 0) {
  for (const p of problems) process.stderr.write(`validate-k8s: ${p}\n`);
  process.exit(1);
}
process.stdout.write('validate-k8s: schema, strict fields and relay policy OK\n');
