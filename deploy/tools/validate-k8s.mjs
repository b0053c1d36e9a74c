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
//    points at something that exists; NetworkPolicy is evaluated so that only gatekeeper pods reach
//    core pods, only core pods reach the core Redis, only gatekeeper pods reach the edge Redis.
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
    for (const v of ['INTERNAL_SECRET', 'REDIS_URL']) if (!env[v]) bad(core, `${v} is not set`);
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
  /** May pods of workload `src` open TCP `port` to pods of workload `dst` (ingress side, same namespace)? */
  const ingressAllows = (src, dst, port) => {
    const dstLabels = podsOf(dst).metadata?.labels;
    const applying = policies.filter((np) => (np.spec?.policyTypes ?? ['Ingress']).includes('Ingress') && matches(np.spec?.podSelector ?? {}, dstLabels));
    if (applying.length === 0) return true;
    return applying.some((np) =>
      (np.spec?.ingress ?? []).some((rule) => {
        const portOk = !rule.ports || rule.ports.some((p) => p.port === undefined || p.port === port || dst.spec?.template?.spec?.containers?.some((c) => (c.ports ?? []).some((cp) => cp.name === p.port && cp.containerPort === port)));
        const fromOk = !rule.from || rule.from.some((peer) => peer.podSelector !== undefined && peer.namespaceSelector === undefined && matches(peer.podSelector, podsOf(src).metadata?.labels));
        return portOk && fromOk;
      }),
    );
  };
  const expectOnly = (dstComponent, port, allowed) => {
    const dst = byComponent(dstComponent);
    if (!dst) return;
    for (const src of workloads) {
      const may = ingressAllows(src, dst, port);
      const should = component(src) === allowed;
      if (may !== should) problems.push(`${label}: NetworkPolicy: ${component(src)} ${may ? 'can' : 'cannot'} reach ${dstComponent}:${port} (only ${allowed} may)`);
    }
  };
  expectOnly('core', 8081, 'gatekeeper');
  expectOnly('redis-core', 6379, 'core');
  expectOnly('redis-edge', 6379, 'gatekeeper');
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
