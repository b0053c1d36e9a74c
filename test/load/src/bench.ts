/**
 * `pnpm bench`: the relay's protocol-validating load generator. See test/load/README.md.
 *
 *   pnpm bench --scenario messaging --concurrency 32 --duration 10
 *   pnpm bench --scenario handshake,messaging --concurrency 8,32,128 --json > out.json
 *   pnpm bench --scenario memory --messages 5000
 *   pnpm bench --url https://relay.example --pids core:1234,gatekeeper:1240 --redis-url redis://…
 *
 * Exit status: 0 when every response validated (and work was done), 1 when any did not, 2 on a
 * usage error or a run that could not start or had to stop (e.g. files answered 405), or was
 * throttled: a relay answering 429 measures its per-client budgets, not itself (shared/throttle.ts).
 */
import { parseCli, runMain } from './cli.js';
import { runScenario, ThrottledError, type PidGroup, type RunContext, type RunResult } from './engine.js';
import { LocalRelay } from './harness.js';
import { runMemory, type MemoryResult } from './memory.js';
import { platformByName } from './platform-node.js';
import { RedisInfo } from './redis-info.js';
import { throttledMessage } from './shared/throttle.js';
import { DEFAULT_OPTIONS, SCENARIOS, type ScenarioName, type ScenarioOptions } from './shared/wire.js';
import { pidAlive } from './cpu.js';
import { printSummary, profilesIn, summarize } from './profile.js';
import { fetchTransport, httpTransport, type Transport } from './transport.js';

const USAGE = `usage: pnpm bench [options]
  --scenario S[,S…]     start | handshake | messaging | files | memory   (default messaging)
                        single-cost: poll (count) | poll-empty (download, nothing stored) |
                        send (upload to a fresh recipient) | exchange (upload → download → delete)
  --concurrency N[,N…]  virtual devices, one request in flight each      (default 8)
  --duration SEC        measured seconds per run                         (default 10; 0 = until --ops)
  --ops N               stop a run after N operations                    (default: no limit)
  --warmup SEC          unmeasured warm-up before each run               (default 1)
  --url URL[,URL…]      relay to load (default: start redis + core + gatekeeper from dist/); several
                        URLs (gatekeepers of one relay): devices spread round-robin over them
  --pids LIST           relay pids for CPU accounting, e.g. core:123,gatekeeper:456,redis:789
                        (unlabelled pids count as "relay"; descendants are included)
  --redis-url URL       Redis of an external relay, for INFO cpu/memory figures
  --relay-env K=V       extra environment for a relay the tool starts (repeatable)
  --http node|fetch     client: node:http keep-alive Agent (default) or global fetch
  --crypto best|portable  sodium-native via bestCrypto() (default) or the k6 tweetnacl code
  --payload-bytes N     message data length (default 1024)
  --file-size N         files: bytes per file (default 1048576; suffixes k, M: 64M)
  --chunk-size N        files: plaintext bytes per chunk (default 262144)
  --messages N          memory: messages per pass (default 2000)
  --per-mailbox L       memory: messages per fresh mailbox, one pass each (default 1,100)
  --timeout MS          per-request timeout (default 10000)
  --profile DIR         run the relay it starts under node --cpu-prof (profiles in DIR/core,
                        DIR/gatekeeper) and print where each service's CPU went
  --json                print one JSON document on stdout instead of tables`;

function size(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmMgG]i?)?$/.exec(s.trim());
  if (m === null) throw new Error(`not a size: ${s}`);
  const unit = (m[2] ?? '').toLowerCase().replace('i', '');
  const mult = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1;
  return Math.round(Number(m[1]) * mult);
}

function list(s: string): string[] {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0);
}

function positiveInt(s: string, what: string, allowZero = false): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) throw new Error(`${what} must be an integer ≥ ${allowZero ? 0 : 1}: ${s}`);
  return n;
}

function parsePids(s: string): { relay: PidGroup[]; redis: number[] } {
  const groups = new Map<string, number[]>();
  const redis: number[] = [];
  for (const item of list(s)) {
    const [label, pidText] = item.includes(':') ? (item.split(':', 2) as [string, string]) : ['relay', item];
    const pid = positiveInt(pidText, '--pids entry');
    if (!pidAlive(pid)) throw new Error(`--pids: no process ${pid}`);
    if (label === 'redis') redis.push(pid);
    else groups.set(label, [...(groups.get(label) ?? []), pid]);
  }
  return { relay: [...groups].map(([label, pids]) => ({ label, pids })), redis };
}

const f = (n: number | null | undefined, digits = 2): string => (n === null || n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(digits));

function printRun(r: RunResult, out: (s: string) => void): void {
  out('');
  out(`scenario ${r.scenario} · concurrency ${r.concurrency} · ${f(r.measuredSec, 1)} s measured (${r.warmupSec} s warm-up) · client crypto ${r.crypto}`);
  out(
    `  throughput: ${f(r.opsPerSec, 1)} ${r.opUnit}s/s (${r.ops} ${r.opUnit}s) · ${f(r.requestsPerSec, 1)} requests/s · ${f(r.iterationsPerSec, 1)} iterations/s` +
      (r.uploadMBps !== undefined
        ? `\n  chunks: up ${f(r.uploadMBps, 1)} MB/s, down ${f(r.downloadMBps, 1)} MB/s over the window; per device up ${f(r.uploadStreamMBps, 1)} MB/s, down ${f(r.downloadStreamMBps, 1)} MB/s (bytes / time in chunk requests)`
        : ''),
  );
  out(`  latency ms        ${'count'.padStart(8)} ${'p50'.padStart(8)} ${'p95'.padStart(8)} ${'p99'.padStart(8)} ${'max'.padStart(8)} ${'errors'.padStart(7)}`);
  const row = (name: string, s: { count: number; p50: number; p95: number; p99: number; max: number }, errors: number | string): void =>
    out(`  ${name.padEnd(18)}${String(s.count).padStart(8)} ${f(s.p50).padStart(8)} ${f(s.p95).padStart(8)} ${f(s.p99).padStart(8)} ${f(s.max).padStart(8)} ${String(errors).padStart(7)}`);
  for (const [name, s] of Object.entries(r.steps)) row(name, s, s.errors);
  row('(iteration)', r.iteration, '');
  const wire = Object.entries(r.steps)
    .filter(([, s]) => s.count > 0)
    .map(([name, s]) => `${name} ${f(s.reqBodyBytes, 0)}/${f(s.resBodyBytes, 0)}`);
  if (wire.length > 0) out(`  body bytes per request (request/response): ${wire.join(' · ')}`);
  if (r.errors.total === 0) out(r.fatal === null && r.throttled === 0 ? '  errors: none (every response validated)' : '  errors: none in the measured window');
  else {
    out(`  errors: ${r.errors.total}`);
    for (const [status, b] of Object.entries(r.errors.byStatus)) {
      const steps = Object.entries(b.steps)
        .map(([s, n]) => `${s} ${n}`)
        .join(', ');
      out(`    status ${status === '0' ? '0 (no response / client)' : status}: ${b.count} (${steps})`);
      for (const ex of b.examples) out(`      e.g. ${ex}`);
    }
  }
  if (r.fatal !== null) out(`  STOPPED: ${r.fatal}`);
  else if (r.throttled > 0) out(`  THROTTLED: ${throttledMessage(r.throttled)}`);
  const c = r.cpu;
  const parts = Object.entries(c.relayMs)
    .map(([k, v]) => `${k} ${f(r.ops > 0 ? v / r.ops : null, 3)}`)
    .join(' + ');
  out(
    `  CPU ms per ${r.opUnit}: relay ${f(c.relayMsPerOp, 3)}${parts ? ` (${parts})` : ''} · redis ${f(c.redisMsPerOp, 3)} · load generator ${f(c.generatorMsPerOp, 3)}` +
      ` · relay per request ${f(c.relayMsPerRequest, 3)}`,
  );
  const totals = [
    ...Object.entries(c.relayMs).map(([k, v]) => `${k} ${f(v / 1000, 2)} s`),
    c.redisProcMs !== null ? `redis ${f(c.redisProcMs / 1000, 2)} s` : null,
    c.redisInfoMs !== null ? `redis INFO ${f(c.redisInfoMs / 1000, 2)} s` : null,
    `generator ${f(c.generatorMs / 1000, 2)} s`,
  ].filter((x) => x !== null);
  out(`  CPU time in window: ${totals.join(' · ')}${c.exitedProcesses > 0 ? ` (${c.exitedProcesses} measured processes exited; their CPU is missing)` : ''}`);
}

function printMemory(m: MemoryResult, out: (s: string) => void): void {
  out('');
  out(`memory · ${m.passes[0]?.messages ?? 0} messages of ${m.payloadBytes}-byte data per pass · ${m.concurrency} senders · client crypto ${m.crypto}`);
  out(`  per-command replay-cache cost (count): ${f(m.bytesPerCommand, 0)} B · Redis CPU per count ${f(m.redisCpuMsPerCount, 4)} ms`);
  out(`  ${'msgs/mailbox'.padEnd(13)} ${'mailboxes'.padStart(9)} ${'Δused_memory'.padStart(13)} ${'B/msg'.padStart(8)} ${'net B/msg'.padStart(10)} ${'KiB/msg'.padStart(8)} ${'uploads/s'.padStart(10)} ${'relay ms'.padStart(9)} ${'redis ms'.padStart(9)}`);
  for (const p of m.passes) {
    out(
      `  ${String(p.perMailbox).padEnd(13)} ${String(p.mailboxes).padStart(9)} ${String(p.usedMemoryDelta).padStart(13)} ${f(p.bytesPerMessage, 0).padStart(8)} ${f(p.netBytesPerMessage, 0).padStart(10)} ${f(p.netBytesPerMessage / 1024, 2).padStart(8)} ${f(p.uploadsPerSec, 0).padStart(10)} ${f(p.relayCpuMsPerUpload, 3).padStart(9)} ${f(p.redisCpuMsPerUpload, 4).padStart(9)}`,
    );
  }
  out('  (B/msg: used_memory growth per upload; net: minus the per-command nonce record; CPU per upload)');
  if (m.errors.length > 0) {
    out(`  errors: ${m.errors.length}`);
    for (const e of m.errors.slice(0, 5)) out(`    e.g. ${e}`);
  } else out('  errors: none (every response validated)');
  if (m.throttled > 0) out(`  THROTTLED: ${throttledMessage(m.throttled)}`);
}

async function main(): Promise<number> {
  const values = parseCli(process.argv.slice(2), {
    scenario: { type: 'string', default: 'messaging' },
    concurrency: { type: 'string', default: '8' },
    duration: { type: 'string' },
    ops: { type: 'string' },
    warmup: { type: 'string', default: '1' },
    url: { type: 'string' },
    pids: { type: 'string' },
    'redis-url': { type: 'string' },
    'relay-env': { type: 'string', multiple: true },
    http: { type: 'string', default: 'node' },
    crypto: { type: 'string', default: 'best' },
    'payload-bytes': { type: 'string' },
    'file-size': { type: 'string' },
    'chunk-size': { type: 'string' },
    messages: { type: 'string', default: '2000' },
    'per-mailbox': { type: 'string', default: '1,100' },
    timeout: { type: 'string', default: '10000' },
    json: { type: 'boolean', default: false },
    profile: { type: 'string' },
  }, USAGE);
  if (typeof values === 'number') return values;
  const str = (k: string): string | undefined => values[k] as string | undefined;
  const json = values.json === true;
  const out = (s: string): void => {
    (json ? process.stderr : process.stdout).write(`${s}\n`);
  };

  const scenarios = list(str('scenario')!);
  for (const s of scenarios) if (s !== 'memory' && !(s in SCENARIOS)) throw new Error(`unknown scenario ${s}\n${USAGE}`);
  const concurrencies = list(str('concurrency')!).map((c) => positiveInt(c, '--concurrency'));
  const ops = str('ops') !== undefined ? positiveInt(str('ops')!, '--ops') : 0;
  const durationSec = str('duration') !== undefined ? Number(str('duration')) : ops > 0 ? 0 : 10;
  if (!(durationSec >= 0) || (durationSec === 0 && ops === 0)) throw new Error('--duration must be > 0 (or give --ops)');
  const warmupSec = Number(str('warmup'));
  if (!(warmupSec >= 0)) throw new Error('--warmup must be ≥ 0');
  const options: ScenarioOptions = {
    ...DEFAULT_OPTIONS,
    ...(str('payload-bytes') !== undefined ? { payloadBytes: positiveInt(str('payload-bytes')!, '--payload-bytes', true) } : {}),
    ...(str('file-size') !== undefined ? { fileSize: size(str('file-size')!) } : {}),
    ...(str('chunk-size') !== undefined ? { chunkSize: size(str('chunk-size')!) } : {}),
  };
  if (options.fileSize < 1 || options.chunkSize < 1) throw new Error('--file-size and --chunk-size must be ≥ 1');
  const relayEnv: Record<string, string> = {};
  for (const kv of (values['relay-env'] as string[] | undefined) ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new Error(`--relay-env wants K=V, got ${kv}`);
    relayEnv[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const timeoutMs = positiveInt(str('timeout')!, '--timeout');
  if (str('http') !== 'node' && str('http') !== 'fetch') throw new Error(`--http must be node or fetch, got ${str('http')}`);
  const platform = platformByName(str('crypto')!);

  let relay: LocalRelay | null = null;
  let url = str('url');
  let relayPids: PidGroup[] = [];
  let redisPids: number[] = [];
  let redisUrl = str('redis-url');
  if (str('pids') !== undefined) ({ relay: relayPids, redis: redisPids } = parsePids(str('pids')!));
  const onSignal = (): void => {
    relay?.killNow();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const profileDir = str('profile');
  if (profileDir !== undefined && url !== undefined) throw new Error('--profile needs a relay the tool starts (no --url)');
  if (url === undefined) {
    out(`starting redis-server, core and gatekeeper (throttling off${profileDir !== undefined ? ', under --cpu-prof' : ''}) …`);
    relay = await LocalRelay.start({ env: relayEnv, ...(redisUrl !== undefined ? { redisUrl } : {}), ...(profileDir !== undefined ? { profileDir } : {}) });
    url = relay.url;
    redisUrl = relay.redisUrl;
    const p = relay.pids;
    relayPids = [
      { label: 'core', pids: [p.core] },
      { label: 'gatekeeper', pids: [p.gatekeeper] },
    ];
    redisPids = p.redis !== null ? [p.redis] : [];
    out(`relay ${url} (core pid ${p.core}, gatekeeper pid ${p.gatekeeper}${p.redis !== null ? `, redis pid ${p.redis}` : ''})`);
  }
  let redisInfo: RedisInfo | null = null;
  let transports: Transport[] = [];
  const results: (RunResult | MemoryResult)[] = [];
  let code = 0;
  let throttled = 0;
  try {
    redisInfo = redisUrl !== undefined ? await RedisInfo.connect(redisUrl) : null;
    const maxConc = Math.max(...concurrencies);
    const urls = list(url);
    if (urls.length === 0) throw new Error('--url is empty');
    transports = urls.map((u) => (str('http') === 'fetch' ? fetchTransport(u, timeoutMs) : httpTransport(u, Math.ceil(maxConc / urls.length), timeoutMs)));
    out(`client: ${transports[0]!.name}, crypto ${platform.name}${urls.length > 1 ? `, devices round-robin over ${urls.length} URLs` : ''}`);
    const ctx: RunContext = {
      platform,
      send: transports[0]!.send,
      ...(transports.length > 1 ? { sends: transports.map((t) => t.send) } : {}),
      options,
      relayPids,
      redisPids,
      redisInfo,
      log: out,
      ...(relay !== null ? { deadService: () => relay!.deadService() } : {}),
    };
    outer: for (const s of scenarios) {
      for (const concurrency of concurrencies) {
        if (s === 'memory') {
          const m = await runMemory(ctx, concurrency, positiveInt(str('messages')!, '--messages'), list(str('per-mailbox')!).map((x) => positiveInt(x, '--per-mailbox')));
          results.push(m);
          printMemory(m, out);
          if (!m.ok) code = Math.max(code, 1);
          if (m.throttled > 0) {
            throttled += m.throttled;
            code = 2;
            break outer;
          }
          continue;
        }
        const r = await runScenario(ctx, SCENARIOS[s as ScenarioName], { concurrency, durationSec, warmupSec, ops });
        results.push(r);
        printRun(r, out);
        throttled += r.throttled;
        // Throttled: every later run would measure the same budgets.
        if (r.fatal !== null || r.throttled > 0) {
          code = 2;
          break outer;
        }
        if (!r.ok) code = Math.max(code, 1);
      }
    }
  } catch (e) {
    if (e instanceof ThrottledError) {
      throttled += e.times;
      out(`bench failed: could not open the sessions: ${e.message}`);
    } else out(`bench failed: ${e instanceof Error ? e.message : String(e)}`);
    code = 2;
  } finally {
    for (const t of transports) t.close();
    redisInfo?.close();
    if (relay !== null) await relay.stop();
  }
  if (profileDir !== undefined) {
    for (const service of ['core', 'gatekeeper']) {
      const files = profilesIn(`${profileDir}/${service}`);
      if (files.length === 0) out(`\nprofile ${service}: none written (did it exit cleanly?)`);
      for (const f of files) printSummary(service, summarize(f), out);
    }
  }
  if (json) {
    const meta = { url: relay !== null ? 'local' : url, http: transports[0]?.name ?? null, crypto: platform.name, node: process.version, options, relayEnv };
    process.stdout.write(`${JSON.stringify({ meta, results }, null, 2)}\n`);
  }
  if (throttled > 0) {
    const own = relay !== null ? ` (the relay this tool starts has them off unless --relay-env sets them)` : '';
    out(`\nbench: INVALID RUN: ${throttledMessage(throttled)}${own}`);
  }
  out(code === 0 ? '\nbench: OK, every response validated' : `\nbench: FAILED (exit ${code})`);
  return code;
}

runMain(main);
