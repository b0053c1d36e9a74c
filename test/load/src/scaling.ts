/**
 * `pnpm bench:scaling`: same-run comparisons of relay shapes on loopback — 1 → 2 → 4 gatekeeper
 * processes, and 1 → 2 core processes (CORE_WORKERS=2 behind the gatekeepers' one CORE_URL, and two
 * core processes each behind its own gatekeeper) — each against one Redis and against a local Redis
 * Cluster of 3 primaries + 3 replicas, in interleaved rounds so that machine noise shows. Per run:
 * throughput, relay CPU per operation (every gatekeeper and core process, workers included), Redis
 * CPU per operation (every redis-server process, from /proc, and INFO cpu summed over the nodes),
 * errors, and whether every gatekeeper announces the same adaptive difficulty at the end.
 *
 *   pnpm bench:scaling                       # 3 rounds, messaging + handshake, 32 clients, 4 s runs
 *   pnpm bench:scaling --quick               # 1 round, messaging, 2 s runs (a CI-sized check)
 *   pnpm bench:scaling --json > scaling.json
 *   pnpm bench:scaling --capacity            # per-operation costs and the sizing model (capacity.ts)
 *
 * Exit status: 0 when every response validated and the gatekeepers agreed on the difficulty at the
 * end of every run, 1 otherwise, 2 on a usage error or a relay that could not start. It never judges
 * the figures (a 2-CPU machine says little about speed-up; see docs/CAPACITY.md).
 */
import { parseCli, runMain } from './cli.js';
import { availableParallelism, cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { runCapacity } from './capacity.js';
import { runScenario, type RunContext, type RunResult } from './engine.js';
import { Fleet, startStore, type FleetShape, type Store, type TopologyName } from './fleet.js';
import { platformByName } from './platform-node.js';
import { RedisInfo } from './redis-info.js';
import { DEFAULT_OPTIONS, PATH, SCENARIOS, type ScenarioName } from './shared/wire.js';
import { httpTransport, type Send, type Transport } from './transport.js';

const USAGE = `usage: pnpm bench:scaling [options]
  --rounds N            interleaved repeats of every configuration      (default 3)
  --duration SEC        measured seconds per run                         (default 4)
  --warmup SEC          unmeasured warm-up per run                       (default 1)
  --concurrency N       virtual devices, spread round-robin over the gatekeepers (default 32)
  --scenario S[,S…]     messaging | handshake | any pnpm bench scenario  (default messaging,handshake)
  --topology T[,T…]     single (one redis-server) | cluster (3 primaries + 3 replicas) (default both)
  --config C[,C…]       relay shapes (default all):
                          1g1c    1 gatekeeper, 1 core process
                          2g1c    2 gatekeepers, 1 core process
                          4g1c    4 gatekeepers, 1 core process
                          2g1c2w  2 gatekeepers, 1 core process with CORE_WORKERS=2
                          2g2c    2 gatekeepers, 2 core processes (gatekeeper i → core i)
  --difficulty-period-min M   DIFFICULTY_PERIOD_MIN of the gatekeepers (default 0.05 = 3 s; the
                        cores get LOAD_PERIOD_SEC = M × 60); 0 turns adaptive difficulty off
  --difficulty-max N    DIFFICULTY_MAX (default 8: bounds the generator's proof of work)
  --relay-env K=V       extra environment for every service (repeatable)
  --quick               1 round, messaging only, 2 s runs, 0.5 s warm-up (unless given)
  --capacity            instead: per-operation costs on 1 gatekeeper + 1 core + one Redis, and the
                        sizing model of docs/CAPACITY.md (see --help-capacity)
  --json                print one JSON document on stdout (tables go to stderr)`;

interface Shape extends FleetShape {
  id: string;
  label: string;
}

const SHAPES: Shape[] = [
  { id: '1g1c', label: '1 gk · 1 core', gatekeepers: 1, cores: 1, workers: 1 },
  { id: '2g1c', label: '2 gk · 1 core', gatekeepers: 2, cores: 1, workers: 1 },
  { id: '4g1c', label: '4 gk · 1 core', gatekeepers: 4, cores: 1, workers: 1 },
  { id: '2g1c2w', label: '2 gk · 1 core × 2 workers', gatekeepers: 2, cores: 1, workers: 2 },
  { id: '2g2c', label: '2 gk · 2 cores (1 each)', gatekeepers: 2, cores: 2, workers: 1 },
];

interface DifficultyCheck {
  /** What each gatekeeper's /start_session announced at the end (asked of all at once), and then its gauge. */
  announced: (number | null)[];
  metric: (number | null)[];
  leaders: number;
  /**
   * On the announced values: agree (one value everywhere at once), agree-on-recheck (only on a
   * second reading 1.5 s later: a DIFFICULTY_CACHE_MS refresh fell between), or disagree.
   */
  verdict: 'agree' | 'agree-on-recheck' | 'disagree';
  /** Gatekeepers whose gauge differed from what they had just announced. */
  staleGauges: number;
  /** During the run: the distinct values each gatekeeper announced to the devices, in order. */
  seen: number[][];
  /** During the run: the longest time (ms) the gatekeepers' latest announcements differed. */
  maxSkewMs: number;
}

/** Records what each gatekeeper's /start_session answers announce during a run. */
class Announcements {
  readonly events: { t: number; gk: number; v: number }[] = [];
  wrap(send: Send, gk: number): Send {
    return async (path, body) => {
      const r = await send(path, body);
      if (path === PATH.start && r.status === 200) {
        const line2 = r.body.split('\r\n')[1];
        if (line2 !== undefined && /^\d+$/.test(line2)) this.events.push({ t: performance.now(), gk, v: Number(line2) });
      }
      return r;
    };
  }
  reset(): void {
    this.events.length = 0;
  }
  /** The distinct values per gatekeeper in order, and the longest span during which the latest values differed. */
  summary(gatekeepers: number): { seen: number[][]; maxSkewMs: number } {
    const seen: number[][] = Array.from({ length: gatekeepers }, () => []);
    const last: (number | null)[] = Array.from({ length: gatekeepers }, () => null);
    let since: number | null = null;
    let maxSkewMs = 0;
    for (const e of this.events) {
      const s = seen[e.gk]!;
      if (s[s.length - 1] !== e.v) s.push(e.v);
      last[e.gk] = e.v;
      const known = last.filter((x): x is number => x !== null);
      const differ = known.some((x) => x !== known[0]);
      if (differ && since === null) since = e.t;
      if (!differ && since !== null) {
        maxSkewMs = Math.max(maxSkewMs, e.t - since);
        since = null;
      }
    }
    if (since !== null && this.events.length > 0) maxSkewMs = Math.max(maxSkewMs, this.events[this.events.length - 1]!.t - since);
    return { seen, maxSkewMs };
  }
}

interface ScalingRun {
  round: number;
  topology: TopologyName;
  shape: string;
  scenario: string;
  opsPerSec: number;
  ops: number;
  relayUsPerOp: number | null;
  gatekeeperUsPerOp: number | null;
  coreUsPerOp: number | null;
  redisUsPerOp: number | null;
  redisInfoUsPerOp: number | null;
  errors: number;
  errorsByStatus: Record<string, number>;
  fivexx: number;
  fatal: string | null;
  difficulty: DifficultyCheck;
  result: RunResult;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function list(s: string): string[] {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0);
}

/**
 * The machine's speed now: X25519 shared keys per second in this process (sodium-native), a fixed
 * piece of work whose rate drops when neighbours take the CPUs (about 32,000/s on a quiet machine of
 * the kind BENCHMARKS.md describes).
 */
export function speedProbe(platform: ReturnType<typeof platformByName>, n = 2000): number {
  const a = platform.keyPair();
  const b = platform.keyPair();
  const t = performance.now();
  for (let i = 0; i < n; i++) platform.before(a.publicKey, b.secretKey);
  return n / ((performance.now() - t) / 1000);
}

const same = (xs: readonly (number | null)[]): boolean => xs.every((x) => x !== null && x === xs[0]);

async function checkDifficulty(fleet: Fleet, recheckMs: number, during: { seen: number[][]; maxSkewMs: number }): Promise<DifficultyCheck> {
  const read = async () => {
    const d = await fleet.difficulties();
    const announced = d.map((x) => x.announced);
    const metric = d.map((x) => x.metric);
    return { announced, metric, leaders: d.filter((x) => x.leader).length, staleGauges: d.filter((x) => x.metric !== x.announced).length, ok: same(announced) };
  };
  const first = await read();
  const verdict = first.ok ? 'agree' : (await sleep(recheckMs), (await read()).ok) ? 'agree-on-recheck' : 'disagree';
  return { announced: first.announced, metric: first.metric, leaders: first.leaders, verdict, staleGauges: first.staleGauges, ...during };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const f0 = (n: number | null | undefined): string => (n === null || n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(0));

function spread(xs: readonly (number | null)[]): { median: number; min: number; max: number } | null {
  const v = xs.filter((x): x is number => x !== null && Number.isFinite(x));
  if (v.length === 0) return null;
  return { median: median(v), min: Math.min(...v), max: Math.max(...v) };
}

const fmtSpread = (s: { median: number; min: number; max: number } | null): string => (s === null ? '—' : `${f0(s.median)} (${f0(s.min)}–${f0(s.max)})`);

export interface SummaryRow {
  scenario: string;
  topology: TopologyName;
  shape: string;
  label: string;
  runs: number;
  opsPerSec: ReturnType<typeof spread>;
  relayUsPerOp: ReturnType<typeof spread>;
  gatekeeperUsPerOp: ReturnType<typeof spread>;
  coreUsPerOp: ReturnType<typeof spread>;
  redisUsPerOp: ReturnType<typeof spread>;
  redisInfoUsPerOp: ReturnType<typeof spread>;
  errors: number;
  fivexx: number;
  difficulties: string;
  maxSkewMs: number;
  staleGauges: number;
  agreement: string;
}

function summarize(runs: readonly ScalingRun[], shapes: readonly Shape[], topologies: readonly TopologyName[], scenarios: readonly string[]): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const scenario of scenarios) {
    for (const topology of topologies) {
      for (const shape of shapes) {
        const rs = runs.filter((r) => r.scenario === scenario && r.topology === topology && r.shape === shape.id);
        if (rs.length === 0) continue;
        const verdicts = rs.map((r) => r.difficulty.verdict);
        const agree = verdicts.filter((v) => v === 'agree').length;
        const recheck = verdicts.filter((v) => v === 'agree-on-recheck').length;
        const dis = verdicts.filter((v) => v === 'disagree').length;
        rows.push({
          scenario,
          topology,
          shape: shape.id,
          label: shape.label,
          runs: rs.length,
          opsPerSec: spread(rs.map((r) => r.opsPerSec)),
          relayUsPerOp: spread(rs.map((r) => r.relayUsPerOp)),
          gatekeeperUsPerOp: spread(rs.map((r) => r.gatekeeperUsPerOp)),
          coreUsPerOp: spread(rs.map((r) => r.coreUsPerOp)),
          redisUsPerOp: spread(rs.map((r) => r.redisUsPerOp)),
          redisInfoUsPerOp: spread(rs.map((r) => r.redisInfoUsPerOp)),
          errors: rs.reduce((a, r) => a + r.errors, 0),
          fivexx: rs.reduce((a, r) => a + r.fivexx, 0),
          difficulties: rs.map((r) => (same(r.difficulty.announced) ? String(r.difficulty.announced[0]) : r.difficulty.announced.map((x) => x ?? '?').join('/'))).join(','),
          maxSkewMs: Math.max(...rs.map((r) => r.difficulty.maxSkewMs)),
          staleGauges: rs.reduce((a, r) => a + r.difficulty.staleGauges, 0),
          agreement: dis > 0 ? `NO (${dis}/${rs.length} disagree)` : recheck > 0 ? `yes (${recheck}/${rs.length} on a 2nd read)` : `yes (${agree}/${rs.length})`,
        });
      }
    }
  }
  return rows;
}

function printTable(rows: readonly SummaryRow[], out: (s: string) => void, concurrency: number, rounds: number, durationSec: number): void {
  const cols = ['scenario', 'Redis', 'relay processes', 'ops/s', 'relay µs/op', 'gk + core µs/op', 'Redis µs/op (/proc)', 'Redis µs/op (INFO)', 'errors (5xx)', 'difficulty at end', 'gatekeepers agree', 'longest skew during run'];
  out('');
  out(`${concurrency} clients · ${rounds} interleaved round(s) × ${durationSec} s per run · medians (min–max over the rounds)`);
  out(`| ${cols.join(' | ')} |`);
  out(`|${cols.map(() => '---').join('|')}|`);
  for (const r of rows) {
    const split = r.gatekeeperUsPerOp !== null && r.coreUsPerOp !== null ? `${f0(r.gatekeeperUsPerOp.median)} + ${f0(r.coreUsPerOp.median)}` : '—';
    out(
      `| ${r.scenario} | ${r.topology === 'single' ? 'one Redis' : 'Cluster 3+3'} | ${r.label} | ${fmtSpread(r.opsPerSec)} | ${fmtSpread(r.relayUsPerOp)} | ${split} | ${fmtSpread(r.redisUsPerOp)} | ${fmtSpread(r.redisInfoUsPerOp)} | ${r.errors} (${r.fivexx}) | ${r.difficulties} | ${r.agreement} | ${r.maxSkewMs > 0 || r.scenario === 'handshake' ? `${f0(r.maxSkewMs)} ms` : '—'} |`,
    );
  }
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv.includes('--capacity') || argv.includes('--help-capacity')) return runCapacity(argv.filter((a) => a !== '--capacity'));
  const values = parseCli(argv, {
    rounds: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    concurrency: { type: 'string', default: '32' },
    scenario: { type: 'string' },
    topology: { type: 'string', default: 'single,cluster' },
    config: { type: 'string', default: SHAPES.map((s) => s.id).join(',') },
    'difficulty-period-min': { type: 'string', default: '0.05' },
    'difficulty-max': { type: 'string', default: '8' },
    'relay-env': { type: 'string', multiple: true },
    timeout: { type: 'string', default: '10000' },
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  }, USAGE);
  if (typeof values === 'number') return values;
  const str = (k: string): string | undefined => values[k] as string | undefined;
  const quick = values.quick === true;
  const json = values.json === true;
  const out = (s: string): void => {
    (json ? process.stderr : process.stdout).write(`${s}\n`);
  };
  const num = (k: string, def: number, min: number): number => {
    const v = str(k) === undefined ? def : Number(str(k));
    if (!Number.isFinite(v) || v < min) throw new Error(`--${k} must be a number ≥ ${min}: ${str(k)}`);
    return v;
  };
  const rounds = Math.round(num('rounds', quick ? 1 : 3, 1));
  const durationSec = num('duration', quick ? 2 : 4, 0.1);
  const warmupSec = num('warmup', quick ? 0.5 : 1, 0);
  const concurrency = Math.round(num('concurrency', 32, 1));
  const scenarios = list(str('scenario') ?? (quick ? 'messaging' : 'messaging,handshake'));
  for (const s of scenarios) if (!(s in SCENARIOS)) throw new Error(`unknown scenario ${s}\n${USAGE}`);
  const topologies = list(str('topology')!) as TopologyName[];
  for (const t of topologies) if (t !== 'single' && t !== 'cluster') throw new Error(`unknown topology ${t}\n${USAGE}`);
  const shapes = list(str('config')!).map((id) => {
    const s = SHAPES.find((x) => x.id === id);
    if (s === undefined) throw new Error(`unknown config ${id}\n${USAGE}`);
    return s;
  });
  const periodMin = num('difficulty-period-min', 0.05, 0);
  const loadPeriodSec = Math.max(1, Math.round(periodMin * 60));
  const env: Record<string, string> = {
    DIFFICULTY_PERIOD_MIN: String(periodMin),
    DIFFICULTY_MAX: String(Math.round(num('difficulty-max', 8, 0))),
    LOAD_PERIOD_SEC: String(loadPeriodSec),
  };
  for (const kv of (values['relay-env'] as string[] | undefined) ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new Error(`--relay-env wants K=V, got ${kv}`);
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const timeoutMs = Math.round(num('timeout', 10000, 1));
  const platform = platformByName('best');

  const cpuCount = availableParallelism();
  out(
    `machine: ${cpuCount} CPU(s) (${cpus()[0]?.model ?? 'unknown'}), shared by the load generator, every relay process and every redis-server.` +
      (cpuCount <= 2 ? ' With 2 CPUs more processes cannot run faster: compare CPU per operation and errors, not speed-up.' : ''),
  );
  out(
    `adaptive difficulty: DIFFICULTY_PERIOD_MIN=${env.DIFFICULTY_PERIOD_MIN} (${(periodMin * 60).toFixed(1)} s), LOAD_PERIOD_SEC=${env.LOAD_PERIOD_SEC}, DIFFICULTY_MAX=${env.DIFFICULTY_MAX}; ` +
      `read from every gatekeeper's /metrics (zax_gatekeeper_difficulty) and /start_session at the end of each run`,
  );
  const t0 = performance.now();
  const runs: ScalingRun[] = [];
  const probes: number[] = [];
  let store: Store | null = null;
  let fleet: Fleet | null = null;
  const onSignal = (): void => {
    fleet?.killNow();
    void store?.stop();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let code = 0;
  try {
    for (let round = 1; round <= rounds; round++) {
      // Rotate the order each round, so that no shape always runs first (a cold machine) or last.
      const topoOrder = round % 2 === 1 ? topologies : [...topologies].reverse();
      for (const topology of topoOrder) {
        const probe = speedProbe(platform);
        probes.push(probe);
        out(`\nround ${round}/${rounds} · ${topology === 'single' ? 'one redis-server' : 'Redis Cluster, 3 primaries + 3 replicas'} · speed probe ${f0(probe)} X25519/s: starting …`);
        store = await startStore(topology);
        const info = await RedisInfo.connect(store.nodeUrls);
        try {
          const k = (round - 1) % shapes.length;
          for (const shape of [...shapes.slice(k), ...shapes.slice(0, k)]) {
            fleet = await Fleet.start({ ...shape, store, env });
            const transports: Transport[] = fleet.gatekeeperUrls.map((u) => httpTransport(u, Math.ceil(concurrency / shape.gatekeepers), timeoutMs));
            try {
              const f = fleet;
              const s = store;
              const seen = new Announcements();
              const ctx: RunContext = {
                platform,
                send: transports[0]!.send,
                sends: transports.map((t, i) => seen.wrap(t.send, i)),
                options: DEFAULT_OPTIONS,
                relayPids: [
                  { label: 'gatekeeper', pids: f.gatekeeperPids },
                  { label: 'core', pids: f.corePids },
                ],
                redisPids: s.pids(),
                redisInfo: info,
                log: out,
                deadService: () => f.deadService() ?? s.dead(),
              };
              for (const scenario of scenarios) {
                seen.reset();
                const r = await runScenario(ctx, SCENARIOS[scenario as ScenarioName], { concurrency, durationSec, warmupSec, ops: 0 });
                const difficulty = await checkDifficulty(f, 1500, seen.summary(shape.gatekeepers));
                const perOp = (ms: number | undefined | null): number | null => (ms === null || ms === undefined || r.ops === 0 ? null : (ms * 1000) / r.ops);
                const byStatus: Record<string, number> = {};
                for (const [st, b] of Object.entries(r.errors.byStatus)) byStatus[st] = b.count;
                const fivexx = Object.entries(byStatus)
                  .filter(([st]) => Number(st) >= 500)
                  .reduce((a, [, n]) => a + n, 0);
                const run: ScalingRun = {
                  round,
                  topology,
                  shape: shape.id,
                  scenario,
                  opsPerSec: r.opsPerSec,
                  ops: r.ops,
                  relayUsPerOp: perOp(r.cpu.relayTotalMs),
                  gatekeeperUsPerOp: perOp(r.cpu.relayMs.gatekeeper),
                  coreUsPerOp: perOp(r.cpu.relayMs.core),
                  redisUsPerOp: perOp(r.cpu.redisProcMs),
                  redisInfoUsPerOp: perOp(r.cpu.redisInfoMs),
                  errors: r.errors.total,
                  errorsByStatus: byStatus,
                  fivexx,
                  fatal: r.fatal,
                  difficulty,
                  result: r,
                };
                runs.push(run);
                const errText = r.errors.total === 0 ? 'no errors' : `ERRORS ${JSON.stringify(byStatus)} e.g. ${Object.values(r.errors.byStatus)[0]?.examples[0] ?? ''}`;
                out(
                  `  ${scenario.padEnd(10)} ${shape.label.padEnd(26)} ${f0(r.opsPerSec).padStart(6)} ${r.opUnit}s/s · relay ${f0(run.relayUsPerOp)} µs/op (gk ${f0(run.gatekeeperUsPerOp)} + core ${f0(run.coreUsPerOp)}) · ` +
                    `Redis ${f0(run.redisUsPerOp)} µs/op (INFO ${f0(run.redisInfoUsPerOp)}) · ${errText} · difficulty announced ${difficulty.announced.map((x) => x ?? '?').join('/')} (gauge ${difficulty.metric.map((x) => x ?? '?').join('/')}) ` +
                    `leaders ${difficulty.leaders} → ${difficulty.verdict}` +
                    (difficulty.seen.some((x) => x.length > 0) ? ` · during the run ${difficulty.seen.map((x) => x.join('→') || '–').join(' | ')}, longest skew ${f0(difficulty.maxSkewMs)} ms` : ''),
                );
                if (r.fatal !== null) out(`    STOPPED: ${r.fatal}`);
                if (!r.ok || difficulty.verdict === 'disagree') code = 1;
                if (r.fatal !== null && /service died/.test(r.fatal)) throw new Error(r.fatal);
              }
            } finally {
              for (const t of transports) t.close();
              await fleet.stop();
              fleet = null;
            }
          }
        } finally {
          info.close();
          await store.stop();
          store = null;
        }
      }
    }
  } catch (e) {
    out(`bench:scaling failed: ${e instanceof Error ? e.message : String(e)}`);
    code = 2;
  }
  const rows = summarize(runs, shapes, topologies, scenarios);
  printTable(rows, out, concurrency, rounds, durationSec);
  const wallSec = (performance.now() - t0) / 1000;
  out(`\nop = one message command (messaging: upload, count, download, delete each count) or one full session (handshake: start → verify → prove).`);
  out(`relay µs/op: CPU of every gatekeeper and core process (node:cluster workers included) over the measured window, per op.`);
  out(`Redis µs/op: CPU of every redis-server process (${topologies.includes('cluster') ? 'the cluster: 3 primaries + 3 replicas' : 'one'}), per op; /proc utime+stime, and INFO used_cpu_user+used_cpu_sys summed over the nodes.`);
  const stale = rows.reduce((a, r) => a + r.staleGauges, 0);
  out(
    `difficulty: what every gatekeeper's /start_session answered at the end of the run, asked of all at once (a second reading 1.5 s later when they differed); ` +
      `longest skew: the longest span during the run in which the gatekeepers' latest announcements to the devices differed (DIFFICULTY_CACHE_MS bounds it, default 1000 ms). ` +
      `The zax_gatekeeper_difficulty gauge is the value a gatekeeper last announced (read without I/O): it differed from the value just announced in ${stale} reading(s).`,
  );
  out(`speed probe (X25519 shared keys/s in the generator before each round; ~32,000 on a quiet machine): ${probes.map(f0).join(', ')}`);
  out(`wall time ${wallSec.toFixed(0)} s`);
  if (json) {
    process.stdout.write(
      `${JSON.stringify(
        {
          meta: { date: new Date().toISOString(), cpus: cpuCount, speedProbes: probes, node: process.version, rounds, durationSec, warmupSec, concurrency, scenarios, topologies, shapes, env, wallSec },
          summary: rows,
          runs: runs.map(({ result, ...rest }) => ({ ...rest, steps: result.steps, generatorMsPerOp: result.cpu.generatorMsPerOp })),
        },
        null,
        2,
      )}\n`,
    );
  }
  out(code === 0 ? '\nbench:scaling: OK (every response validated, the gatekeepers agreed on the difficulty)' : `\nbench:scaling: FAILED (exit ${code})`);
  return code;
}

runMain(main);
