/**
 * The operators' dashboard (deploy/grafana/zax-relay.json) and alert rules
 * (deploy/prometheus/alerts.yml) query only metrics the relay really exports. A real core and
 * gatekeeper run as processes (their main, so the process metrics are there too); both tiers'
 * /metrics are scraped on their admin ports, and every metric name used in a PromQL expression of
 * either file must be one of them: a renamed metric would otherwise leave an empty panel or an
 * alert that can never fire, and nothing would say so.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '@zax/service';
import { Relay } from '../support/relay.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DASHBOARD = 'deploy/grafana/zax-relay.json';
const ALERTS = 'deploy/prometheus/alerts.yml';

/** Series Prometheus makes itself for every target, not exported by the relay. */
const SCRAPE_SERIES = new Set(['up']);

/** PromQL words that are not metric names: functions, aggregations, keywords. */
const PROMQL_WORDS = new Set([
  'abs', 'absent', 'absent_over_time', 'and', 'avg', 'avg_over_time', 'bool', 'by', 'ceil', 'changes',
  'clamp', 'clamp_max', 'clamp_min', 'count', 'count_over_time', 'delta', 'deriv', 'floor',
  'group_left', 'group_right', 'histogram_quantile', 'idelta', 'ignoring', 'increase', 'irate',
  'label_replace', 'max', 'max_over_time', 'min', 'min_over_time', 'offset', 'on', 'or', 'quantile',
  'quantile_over_time', 'rate', 'resets', 'round', 'scalar', 'sort', 'sort_desc', 'sum',
  'sum_over_time', 'time', 'topk', 'bottomk', 'unless', 'vector', 'without',
]);

/** Every `expr` string anywhere in the dashboard's JSON model (panel targets, annotations). */
function dashboardExprs(): string[] {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k === 'expr' && typeof x === 'string') out.push(x);
        else walk(x);
      }
    }
  };
  walk(JSON.parse(readFileSync(`${ROOT}${DASHBOARD}`, 'utf8')));
  return out;
}

/** Every rule's `expr` in the rules file: a plain scalar on its line, or a block scalar under it. */
function alertExprs(): string[] {
  const lines = readFileSync(`${ROOT}${ALERTS}`, 'utf8').split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)(?:- )?expr:\s*(.*)$/.exec(lines[i]!);
    if (m === null) continue;
    const value = m[2]!.trim();
    if (!/^[|>][-+]?$/.test(value)) {
      out.push(value.replace(/^'(.*)'$/, '$1').replace(/^"(.*)"$/, '$1'));
      continue;
    }
    const indent = m[1]!.length;
    const block: string[] = [];
    while (i + 1 < lines.length && (lines[i + 1]!.trim() === '' || /^\s*/.exec(lines[i + 1]!)![0].length > indent)) block.push(lines[++i]!);
    out.push(block.join('\n'));
  }
  return out;
}

/**
 * The metric names an expression selects: what is left once strings, label matchers, ranges,
 * grouping clauses, comments, numbers, Grafana variables and PromQL's own words are taken out.
 */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/#.*$/gm, '')
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '$1')
    .replace(/\$\{?\w+\}?/g, '')
    .replace(/\b\d+(\.\d+)?(e[+-]?\d+)?\b/gi, '');
  const words = bare.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? [];
  return words.filter((w) => !PROMQL_WORDS.has(w) && !SCRAPE_SERIES.has(w));
}

/** The series names a /metrics text can produce: each family, with a histogram's or summary's own series. */
function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(name + s);
  }
  return names;
}

let relay: Relay;
let coreAdminUrl: string;
beforeAll(async () => {
  const coreAdminPort = await freePort();
  coreAdminUrl = `http://127.0.0.1:${coreAdminPort}`;
  relay = await Relay.start({ redisUrl: inject('redisUrl'), adminPorts: true, env: { CORE_ADMIN_PORT: String(coreAdminPort) } });
});
afterAll(async () => {
  await relay?.stop();
});

async function scrape(url: string): Promise<string> {
  const r = await fetch(`${url}/metrics`);
  expect(r.status).toBe(200);
  return r.text();
}

describe('dashboard and alert rules name only exported metrics', () => {
  it('every metric in their expressions is on a live /metrics of the gatekeeper or the core', async () => {
    const exported = new Set([...exportedNames(await scrape(relay.adminUrls[0]!)), ...exportedNames(await scrape(coreAdminUrl))]);
    const used = new Map<string, string>(); // name → where it is first used
    for (const [file, exprs] of [[DASHBOARD, dashboardExprs()], [ALERTS, alertExprs()]] as const) {
      expect(exprs.length, `${file}: no expressions found`).toBeGreaterThan(0);
      for (const e of exprs) for (const n of metricNames(e)) if (!used.has(n)) used.set(n, file);
    }
    // Not vacuous: both tiers' metrics are used, the process metrics too.
    const names = [...used.keys()];
    expect(names.some((n) => n.startsWith('zax_gatekeeper_'))).toBe(true);
    expect(names.some((n) => n.startsWith('zax_core_'))).toBe(true);
    expect(names.some((n) => n.includes('_nodejs_'))).toBe(true);
    const missing = names.filter((n) => !exported.has(n)).map((n) => `${used.get(n)}: ${n}`);
    expect(missing).toEqual([]);
  });
});
