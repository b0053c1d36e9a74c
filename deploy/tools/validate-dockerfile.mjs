// Lints deploy/Dockerfile and checks the relay's requirements on it.
//
//   node deploy/tools/validate-dockerfile.mjs [deploy/Dockerfile]
//
// 1. Lint: the `dockerfile-utils` validator (the engine of the Dockerfile language server): unknown
//    instructions, bad flags and arguments, malformed JSON forms, missing FROM, ... Its warnings fail
//    too.
// 2. Relay requirements (deploy/README.md): multi-stage; the build stage runs deploy/build.sh (the one
//    recipe CI also runs, deploy/check-build.sh); every base image has an explicit tag (not latest);
//    the final stage installs nothing (no apt-get/npm/pnpm/yarn: no build tools), copies its files
//    from the build stage, runs as a numeric non-root user, and has a HEALTHCHECK, an ENTRYPOINT and
//    a CMD.
import { readFileSync } from 'node:fs';
import { validate } from 'dockerfile-utils';

const file = process.argv[2] ?? new URL('../Dockerfile', import.meta.url).pathname;
const text = readFileSync(file, 'utf8');
const problems = [];

for (const d of validate(text)) {
  problems.push(`line ${d.range.start.line + 1}: ${d.severity === 1 ? 'error' : 'warning'}: ${d.message}`);
}

// Instructions with continuation lines joined; comments and blank lines dropped.
const instructions = [];
let pending = '';
let pendingLine = 0;
text.split('\n').forEach((raw, i) => {
  const line = raw.trimEnd();
  if (pending === '' && (line.trim() === '' || line.trim().startsWith('#'))) return;
  if (pending !== '' && line.trim().startsWith('#')) return;
  if (pending === '') pendingLine = i + 1;
  pending += `${line.replace(/\\$/, '')} `;
  if (!line.endsWith('\\')) {
    const m = /^\s*(\w+)\s*(.*)$/s.exec(pending.trim());
    if (m) instructions.push({ keyword: m[1].toUpperCase(), args: m[2].replace(/\s+/g, ' ').trim(), line: pendingLine });
    pending = '';
  }
});

const stages = [];
const args = {};
for (const ins of instructions) {
  if (ins.keyword === 'FROM') stages.push({ from: ins, body: [] });
  else if (stages.length === 0 && ins.keyword === 'ARG') {
    const [k, v] = ins.args.split('=');
    args[k] = v;
  } else stages.at(-1)?.body.push(ins);
}
const bad = (ins, msg) => problems.push(`line ${ins?.line ?? '?'}: ${msg}`);

if (stages.length < 2) problems.push('must be multi-stage (a build stage and a runtime stage)');
for (const { from } of stages) {
  const image = from.args.split(' ')[0].replace(/\$\{(\w+)\}/g, (_, k) => args[k] ?? '');
  const stageNames = stages.map((s) => s.from.args.split(/ AS /i)[1]);
  if (stageNames.includes(image)) continue;
  if (!/:[^/]+$/.test(image) && !image.includes('@sha256:')) bad(from, `base image ${image} has no tag`);
  if (/:latest$/.test(image)) bad(from, `base image ${image} uses :latest`);
}

const build = stages.find((s) => s.body.some((i) => i.keyword === 'RUN' && /deploy\/build\.sh\b/.test(i.args)));
if (!build) problems.push('no stage runs deploy/build.sh (the recipe shared with CI)');
else if (!/deploy\/build\.sh --out /.test(build.body.find((i) => i.keyword === 'RUN' && /deploy\/build\.sh/.test(i.args)).args)) {
  bad(build.from, 'the build stage must run deploy/build.sh --out <dir> (production prune)');
}

const final = stages.at(-1);
if (final && final !== build) {
  const last = (kw) => final.body.filter((i) => i.keyword === kw).at(-1);
  for (const i of final.body) {
    if (i.keyword === 'RUN' && /\b(apt-get|apt|apk|npm|npx|pnpm|yarn|corepack|gcc|make)\b\s+(install|add|i|ci|build)\b/.test(i.args)) {
      bad(i, 'the runtime stage must not install anything (no build tools)');
    }
    if ((i.keyword === 'COPY' || i.keyword === 'ADD') && !/--from=/.test(i.args)) bad(i, 'the runtime stage copies from the build stage only');
  }
  const user = last('USER');
  if (!user) problems.push('the runtime stage has no USER (runs as root)');
  else if (!/^[1-9]\d*(:\d+)?$/.test(user.args)) bad(user, `USER ${user.args}: use a numeric non-root UID (Kubernetes runAsNonRoot checks it)`);
  const hc = last('HEALTHCHECK');
  if (!hc || /^NONE\b/i.test(hc.args)) problems.push('the runtime stage has no HEALTHCHECK');
  if (!last('ENTRYPOINT')) problems.push('the runtime stage has no ENTRYPOINT');
  if (!last('CMD')) problems.push('the runtime stage has no CMD (default service)');
}

if (problems.length > 0) {
  for (const p of problems) process.stderr.write(`validate-dockerfile: ${file}: ${p}\n`);
  process.exit(1);
}
process.stdout.write(`validate-dockerfile: ${stages.length} stages, lint clean, relay requirements OK\n`);
