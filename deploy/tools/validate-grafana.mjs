// Checks the Grafana dashboard deploy/grafana/zax-relay.json offline.
//
//   node deploy/tools/validate-grafana.mjs RULES_OUT [deploy/grafana/zax-relay.json]
//
// 1. The model: JSON; a title and a uid; a `datasource` template variable of type prometheus, and
//    every panel and query using it (`${datasource}`), so an import binds to the operator's
//    Prometheus; unique panel ids; panels inside the 24-column grid, not overlapping; every
//    non-row panel has at least one query, and every query an `expr` and a unique refId.
// 2. The queries: each `expr`, with Grafana's variables replaced ($__rate_interval → 1m, ...), is
//    written to RULES_OUT as a recording rule, so that `promtool check rules RULES_OUT` (run by
//    deploy/validate.sh) parses every query as PromQL. That each names a metric the relay exports
//    is checked against a live /metrics by test/repo/dashboard-metrics.test.ts.
import { readFileSync, writeFileSync } from 'node:fs';

const [rulesOut, file = new URL('../grafana/zax-relay.json', import.meta.url).pathname] = process.argv.slice(2);
if (rulesOut === undefined) {
  console.error('usage: validate-grafana.mjs RULES_OUT [dashboard.json]');
  process.exit(2);
}
const problems = [];
let model;
try {
  model = JSON.parse(readFileSync(file, 'utf8'));
} catch (e) {
  console.error(`grafana: ${file}: ${e.message}`);
  process.exit(1);
}

if (typeof model.title !== 'string' || model.title === '') problems.push('no title');
if (typeof model.uid !== 'string' || model.uid === '') problems.push('no uid');
const vars = model.templating?.list ?? [];
const ds = vars.find((v) => v.name === 'datasource');
if (ds === undefined || ds.type !== 'datasource' || ds.query !== 'prometheus') {
  problems.push('no template variable "datasource" of type datasource (query prometheus)');
}
const usesVariable = (d, where) => {
  if (d === undefined) return; // inherits the panel's
  if (d?.uid !== '${datasource}') problems.push(`${where}: datasource is not \${datasource}`);
};

/** Grafana's built-in variables, replaced by a valid value for parsing. */
const GRAFANA_VARS = [
  [/\$__rate_interval|\$\{__rate_interval\}/g, '1m'],
  [/\$__interval|\$\{__interval\}/g, '1m'],
  [/\$__range|\$\{__range\}/g, '1h'],
];

const ids = new Set();
const cells = new Map();
const exprs = [];
const panels = [...(model.panels ?? [])];
for (const p of model.panels ?? []) for (const c of p.panels ?? []) panels.push(c);
if (panels.length === 0) problems.push('no panels');
for (const p of panels) {
  const name = `panel ${p.id} "${p.title}"`;
  if (!Number.isInteger(p.id)) problems.push(`${name}: no integer id`);
  else if (ids.has(p.id)) problems.push(`${name}: id used twice`);
  ids.add(p.id);
  const g = p.gridPos ?? {};
  if (![g.x, g.y, g.w, g.h].every(Number.isInteger) || g.x < 0 || g.y < 0 || g.w < 1 || g.h < 1 || g.x + g.w > 24) {
    problems.push(`${name}: gridPos ${JSON.stringify(g)} is not inside the 24-column grid`);
  } else {
    for (let y = g.y; y < g.y + g.h; y++) {
      for (let x = g.x; x < g.x + g.w; x++) {
        const other = cells.get(`${x},${y}`);
        if (other !== undefined) {
          problems.push(`${name}: overlaps panel ${other}`);
          y = Infinity;
          break;
        }
        cells.set(`${x},${y}`, p.id);
      }
    }
  }
  if (p.type === 'row') continue;
  usesVariable(p.datasource, name);
  const targets = p.targets ?? [];
  if (targets.length === 0) problems.push(`${name}: no query`);
  const refs = new Set();
  for (const t of targets) {
    usesVariable(t.datasource, `${name} query ${t.refId}`);
    if (typeof t.refId !== 'string' || refs.has(t.refId)) problems.push(`${name}: missing or repeated refId ${t.refId}`);
    refs.add(t.refId);
    if (typeof t.expr !== 'string' || t.expr.trim() === '') {
      problems.push(`${name} query ${t.refId}: no expr`);
      continue;
    }
    let expr = t.expr;
    for (const [re, value] of GRAFANA_VARS) expr = expr.replace(re, value);
    if (/\$/.test(expr)) problems.push(`${name} query ${t.refId}: unknown variable in ${JSON.stringify(t.expr)}`);
    exprs.push({ record: `grafana:panel_${p.id}_${t.refId}`.toLowerCase(), expr });
  }
}

// One recording rule per query; JSON strings are valid YAML scalars.
const rules = ['groups:', '  - name: grafana-dashboard-queries', '    rules:'];
for (const { record, expr } of exprs) rules.push(`      - record: ${record}`, `        expr: ${JSON.stringify(expr)}`);
writeFileSync(rulesOut, `${rules.join('\n')}\n`);

if (problems.length > 0) {
  for (const p of problems) console.error(`grafana: ${p}`);
  process.exit(1);
}
console.log(`grafana: ${panels.length} panels, ${exprs.length} queries; model OK`);
