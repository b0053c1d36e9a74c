/**
 * Runs a bundled k6 script under Node, the way k6 would in miniature: each VU gets its own module
 * instance (its own init context and state), `options` decides VUs and duration/iterations,
 * setup/default/teardown run in order (VUs take turns, one synchronous iteration at a time), and the
 * thresholds in `options` are evaluated on the recorded metrics. An exception in an iteration, a
 * test.abort(), a threshold on an unknown metric or a failed threshold fails the run.
 */
import { register } from 'node:module';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { shutdown } from './http.js';
import { context, metrics, record, resetState, TestAbort, type MetricSink } from './state.js';

let installed = false;

/** Routes `k6` and `k6/*` imports to the stand-in (once per process). */
export function installStandIn(): void {
  if (installed) return;
  register('./loader.js', import.meta.url);
  installed = true;
}

const BUILTIN: Record<string, MetricSink['type']> = {
  http_reqs: 'counter',
  http_req_duration: 'trend',
  http_req_failed: 'rate',
  checks: 'rate',
  iterations: 'counter',
  iteration_duration: 'trend',
};

export interface ThresholdResult {
  metric: string;
  expression: string;
  value: number | null;
  ok: boolean;
}

export interface K6RunResult {
  script: string;
  vus: number;
  iterations: number;
  seconds: number;
  thresholds: ThresholdResult[];
  exceptions: string[];
  aborted: string | null;
  checks: { passes: number; fails: number };
  /** HTTP responses by status (from `http_reqs`; 0 = no response). */
  statuses: Record<string, number>;
  errors: string[];
  ok: boolean;
}

interface ScriptModule {
  options?: { vus?: number; duration?: string; iterations?: number; thresholds?: Record<string, (string | { threshold: string })[]> };
  setup?: () => unknown;
  default?: (data: unknown) => unknown;
  teardown?: (data: unknown) => unknown;
}

export function parseDuration(s: string): number {
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let consumed = 0;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    const n = Number(m[1]);
    total += m[2] === 'h' ? n * 3600 : m[2] === 'm' ? n * 60 : m[2] === 'ms' ? n / 1000 : n;
    consumed += m[0].length;
  }
  if (consumed !== s.length || s.length === 0) throw new Error(`bad duration "${s}"`);
  return total;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

function aggregate(m: MetricSink, tags: Record<string, string>, agg: string, seconds: number): number | null {
  const values = m.samples.filter((s) => Object.entries(tags).every(([k, v]) => s.tags[k] === v)).map((s) => s.value);
  switch (m.type) {
    case 'counter': {
      const sum = values.reduce((a, b) => a + b, 0);
      if (agg === 'count') return sum;
      if (agg === 'rate') return seconds > 0 ? sum / seconds : 0;
      break;
    }
    case 'rate':
      if (agg === 'rate') return values.length === 0 ? null : values.filter((v) => v !== 0).length / values.length;
      break;
    case 'gauge':
      if (agg === 'value') return values.length === 0 ? null : values[values.length - 1]!;
      break;
    case 'trend': {
      if (values.length === 0) return null;
      const sorted = [...values].sort((a, b) => a - b);
      if (agg === 'avg') return sorted.reduce((a, b) => a + b, 0) / sorted.length;
      if (agg === 'min') return sorted[0]!;
      if (agg === 'max') return sorted[sorted.length - 1]!;
      if (agg === 'med') return percentile(sorted, 50);
      if (agg === 'count') return sorted.length;
      const p = /^p\((\d+(?:\.\d+)?)\)$/.exec(agg);
      if (p !== null) return percentile(sorted, Number(p[1]));
      break;
    }
  }
  throw new Error(`aggregation ${agg} is not valid for ${m.type} metric ${m.name}`);
}

function compare(a: number, op: string, b: number): boolean {
  switch (op) {
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
    case '==':
    case '===':
      return a === b;
    case '!=':
      return a !== b;
  }
  throw new Error(`bad operator ${op}`);
}

function evaluateThresholds(thresholds: NonNullable<ScriptModule['options']>['thresholds'], seconds: number): ThresholdResult[] {
  const out: ThresholdResult[] = [];
  for (const [key, list] of Object.entries(thresholds ?? {})) {
    const km = /^([A-Za-z_][A-Za-z0-9_]*)(?:\{(.*)\})?$/.exec(key);
    if (km === null) throw new Error(`invalid threshold key ${key}`);
    const name = km[1]!;
    const tags: Record<string, string> = {};
    for (const pair of (km[2] ?? '').split(',').filter((x) => x.length > 0)) {
      const i = pair.indexOf(':');
      if (i <= 0) throw new Error(`invalid tag filter in threshold ${key}`);
      tags[pair.slice(0, i).trim()] = pair.slice(i + 1).trim().replace(/^["']|["']$/g, '');
    }
    const sinkFor = metrics.get(name) ?? (BUILTIN[name] !== undefined ? { name, type: BUILTIN[name], samples: [] } : undefined);
    if (sinkFor === undefined) throw new Error(`threshold on unknown metric ${name}`);
    for (const item of list) {
      const expression = typeof item === 'string' ? item : item.threshold;
      const em = /^\s*(avg|min|max|med|count|rate|value|p\(\d+(?:\.\d+)?\))\s*(<=|>=|===|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/.exec(expression);
      if (em === null) throw new Error(`invalid threshold expression "${expression}" on ${key}`);
      const value = aggregate(sinkFor, tags, em[1]!, seconds);
      out.push({ metric: key, expression, value, ok: value === null || compare(value, em[2]!, Number(em[3])) });
    }
  }
  return out;
}

const g = globalThis as unknown as { __ENV: Record<string, string>; __VU: number; __ITER: number };
let runs = 0;

/**
 * Runs one bundled script. `env` becomes `__ENV`; `maxSeconds` caps the run whatever the script's
 * options say.
 */
export async function runK6Script(bundle: string, env: Record<string, string>, maxSeconds = 30): Promise<K6RunResult> {
  installStandIn();
  resetState();
  g.__ENV = { ...env };
  g.__VU = 1;
  g.__ITER = 0;
  const run = ++runs;
  const load = async (vu: number): Promise<ScriptModule> => {
    g.__VU = vu;
    context.initContext = true;
    return (await import(`${pathToFileURL(bundle).href}?run=${run}&vu=${vu}`)) as ScriptModule;
  };
  const errors: string[] = [];
  const exceptions: string[] = [];
  let aborted: string | null = null;
  let iterations = 0;
  const first = await load(1);
  const options = first.options ?? {};
  const vus = options.vus ?? 1;
  const maxIterations = options.iterations ?? (options.duration === undefined ? 1 : Infinity);
  const seconds = Math.min(options.duration !== undefined ? parseDuration(options.duration) : Infinity, maxSeconds);
  if (typeof first.default !== 'function') errors.push('the script has no default function');
  const modules = [first];
  for (let vu = 2; vu <= vus; vu++) modules.push(await load(vu));

  // Thresholds must name known metrics (k6 refuses to start otherwise): check before running.
  try {
    evaluateThresholds(options.thresholds, 1);
  } catch (e) {
    errors.push(e instanceof Error ? e.message : String(e));
  }

  const t0 = performance.now();
  let data: unknown;
  if (errors.length === 0) {
    try {
      context.initContext = false;
      g.__VU = 0;
      data = await first.setup?.();
      const perVu = modules.map(() => 0);
      const deadline = t0 + seconds * 1000;
      outer: while (performance.now() < deadline && iterations < maxIterations) {
        for (let i = 0; i < modules.length && iterations < maxIterations; i++) {
          g.__VU = i + 1;
          g.__ITER = perVu[i]!;
          context.vu = i + 1;
          context.iteration = perVu[i]!;
          context.iterationInTest = iterations;
          const it0 = performance.now();
          try {
            await modules[i]!.default!(data);
          } catch (e) {
            if (e instanceof TestAbort) {
              aborted = e.message;
              break outer;
            }
            const msg = e instanceof Error ? `${e.message}` : String(e);
            if (exceptions.length < 10) exceptions.push(`VU ${i + 1} iteration ${perVu[i]}: ${msg}`);
          }
          record('iterations', 'counter', 1);
          record('iteration_duration', 'trend', performance.now() - it0);
          perVu[i]!++;
          iterations++;
          if (performance.now() >= deadline) break outer;
        }
      }
      g.__VU = 0;
      await first.teardown?.(data);
    } catch (e) {
      errors.push(`setup/teardown: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const elapsed = (performance.now() - t0) / 1000;
  let thresholds: ThresholdResult[] = [];
  if (errors.length === 0) {
    try {
      thresholds = evaluateThresholds(options.thresholds, elapsed);
    } catch (e) {
      errors.push(e instanceof Error ? e.message : String(e));
    }
  }
  const checkSamples = metrics.get('checks')?.samples ?? [];
  const passes = checkSamples.filter((s) => s.value !== 0).length;
  const statuses: Record<string, number> = {};
  for (const s of metrics.get('http_reqs')?.samples ?? []) {
    const status = s.tags.status ?? '0';
    statuses[status] = (statuses[status] ?? 0) + 1;
  }
  await shutdown();
  return {
    script: bundle,
    vus,
    iterations,
    seconds: elapsed,
    thresholds,
    exceptions,
    aborted,
    checks: { passes, fails: checkSamples.length - passes },
    statuses,
    errors,
    ok: errors.length === 0 && exceptions.length === 0 && aborted === null && iterations > 0 && thresholds.every((t) => t.ok),
  };
}
