/**
 * `pnpm test:reliability`: the abuse and fault reproductions of docs/RELIABILITY.md, run against
 * real processes (private redis-servers, cores, gatekeepers, and `pnpm start`'s launcher), printing
 * figures. Nothing here passes or fails on timing: the exit status is 1 only when a behavioural
 * expectation breaks (a 5xx other than 503, an acknowledged message lost where it must survive, a key
 * left behind by refused requests, a chunk refused after the sweep should have freed room, /metrics
 * on the public port, a service that does not come back).
 *
 *   1 jobs      core Redis SIGKILLed and restarted empty under load: the file sweep and the load job
 *               run again (time until each does), the issue's chunk reproduction, and a 10 s Redis
 *               freeze (SIGSTOP … SIGCONT) under a writer (fault table rows)
 *   2 bodies    stalled request bodies (body-abuse.js, run as a child)
 *   3 downloads stalled download readers and download loops (download-abuse.js, run as a child)
 *   4 unauth    unauthenticated commands and failing /prove attempts: Redis keys and memory
 *   5 launcher  `pnpm start` with its core and then its gatekeeper SIGKILLed (fault table rows)
 *   6 ops       /metrics off the public port, an absolute-form target, a scrape flood on ADMIN_PORT
 *
 * Usage (the package script builds first): node test/load/dist/reliability.js [--only 1,4]
 *   [--body-connections 1000] [--body-addresses 5] [--stall-sec 25] [--loop-sec 6]
 *   [--refused 20000] [--scrapes 3000] [--freeze-sec 10]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { Mailbox, RelaySession, generateIdentity } from '@zax/client';
import { b64, makeNonce } from '@zax/protocol';
import { freePort } from '@zax/service';
import { CpuMeter } from './cpu.js';
import { LocalRelay } from './harness.js';
import { fmtLatency, latencyLoop, pct, rssMiB, sleep, statusOf, Tally } from './probe.js';
import { Samples } from './stats.js';

const { values: args } = parseArgs({
  options: {
    only: { type: 'string', default: '1,2,3,4,5,6' },
    'body-connections': { type: 'string', default: '1000' },
    'body-addresses': { type: 'string', default: '5' },
    'stall-sec': { type: 'string', default: '25' },
    'loop-sec': { type: 'string', default: '6' },
    refused: { type: 'string', default: '20000' },
    scrapes: { type: 'string', default: '3000' },
    'freeze-sec': { type: 'string', default: '10' },
  },
});
const only = new Set(args.only.split(',').map((s) => s.trim()));
const DIST = fileURLToPath(new URL('./', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

const problems: string[] = [];
/** A behavioural expectation (never a timing one): recorded, and the run exits 1 at the end. */
function expectThat(ok: boolean, what: string): void {
  if (!ok) {
    problems.push(what);
    say(`  !! ${what}`);
  }
}
const say = (line: string): void => void process.stdout.write(`${line}\n`);
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

// ---------------------------------------------------------------- shared pieces

/** A legitimate client: a session doing `count` in a loop; its latency while something happens. */
async function legitCount(url: string): Promise<{ hpk: string; sample(ms: number): Promise<{ ms: Samples; statuses: Tally }>; start(): ReturnType<typeof latencyLoop> }> {
  const s = new RelaySession({ url, identity: generateIdentity(), timeoutMs: 30_000 });
  await s.command({ cmd: 'count' });
  return {
    hpk: s.hpk,
    async sample(ms) {
      const l = latencyLoop(() => s.command({ cmd: 'count' }));
      await sleep(ms);
      return l.stop();
    },
    start: () => latencyLoop(() => s.command({ cmd: 'count' })),
  };
}

/**
 * A writer: uploads numbered messages to a recipient one after another, remembering which ones the
 * relay acknowledged (200 with a storage token) and when each answer came.
 */
class Writer {
  readonly acked = new Set<string>();
  readonly statuses = new Tally();
  private readonly events: { s: number; t: number; ok: boolean }[] = [];
  private done = false;
  private loop: Promise<void> | null = null;
  readonly sender: Mailbox;
  readonly recipient: Mailbox;
  private n = 0;

  constructor(url: string) {
    this.sender = Mailbox.create({ url, identity: generateIdentity(), timeoutMs: 5000 });
    this.recipient = Mailbox.create({ url, identity: generateIdentity(), timeoutMs: 30_000 });
  }

  start(): void {
    const tag = randomBytes(4).toString('hex');
    this.loop = (async () => {
      while (!this.done) {
        const text = `ack-${tag}-${this.n++}`;
        const s = performance.now();
        try {
          await this.sender.upload(this.recipient.hpk, text);
          this.acked.add(text);
          this.statuses.add(200);
          this.events.push({ s, t: performance.now(), ok: true });
        } catch (e) {
          const st = statusOf(e);
          this.statuses.add(st === 'error' ? 'no answer' : st);
          this.events.push({ s, t: performance.now(), ok: false });
          await sleep(100);
        }
        await sleep(20);
      }
    })();
  }

  /** ms from `since` until the first acknowledged upload sent after it (NaN if none). */
  firstOkAfter(since: number): number {
    const e = this.events.find((x) => x.ok && x.s >= since);
    return e === undefined ? NaN : e.t - since;
  }

  /** Resolves once an upload has been acknowledged after `since` (or the patience runs out). */
  async waitOkAfter(since: number, patienceMs = 60_000): Promise<boolean> {
    const deadline = Date.now() + patienceMs;
    while (Date.now() < deadline) {
      if (!Number.isNaN(this.firstOkAfter(since))) return true;
      await sleep(50);
    }
    return false;
  }

  async stop(): Promise<void> {
    this.done = true;
    await this.loop;
  }

  /** Acknowledged messages the recipient can still download (all pages). */
  async acknowledgedStillThere(): Promise<{ acked: number; lost: number }> {
    const got = new Set((await this.recipient.receive()).map((m) => m.data));
    let lost = 0;
    for (const a of this.acked) if (!got.has(a)) lost++;
    return { acked: this.acked.size, lost };
  }
}

interface FaultRow {
  fault: string;
  acked: number;
  lost: string;
  statuses: string;
  recovery: string;
}
const faultRows: FaultRow[] = [];

/** A Prometheus sample of `name{job="…"}` (NaN when absent). */
function metric(text: string, name: string, job: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(`job="${job}"`));
  return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}

// ---------------------------------------------------------------- 1 jobs + Redis faults

const CHUNK = 400_000;

/** startFileUpload + one 400,000-byte chunk to oneself; the status of the chunk (or of the start). */
async function uploadChunk(s: RelaySession): Promise<string> {
  try {
    const started = await s.command({ cmd: 'startFileUpload', to: s.hpk, file_size: CHUNK, metadata: { nonce: b64(randomBytes(24)), ctext: 'metadata' } });
    const { uploadID } = started.open() as { uploadID: string };
    await s.command({ cmd: 'uploadFileChunk', uploadID, part: 0, nonce: b64(randomBytes(24)), last_chunk: true }, b64(randomBytes(CHUNK)));
    return '200';
  } catch (e) {
    return statusOf(e);
  }
}

async function scenarioJobs(): Promise<void> {
  say('\n== 1. core Redis restarted empty under load: jobs heal; the chunk reproduction; Redis freeze');
  const adminPort = await freePort();
  const env = { FILE_TTL_SEC: '3', FILE_SWEEP_INTERVAL_SEC: '2', MAX_FILE_BYTES_TOTAL: '600000', LOAD_PERIOD_SEC: '1', CORE_ADMIN_PORT: String(adminPort), LOG_LEVEL: 'warn' };
  say(`relay: one core, one gatekeeper, one private Redis; ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')}; throttling off`);
  const relay = await LocalRelay.start({ env });
  const scrape = (): Promise<string> => fetch(`http://127.0.0.1:${adminPort}/metrics`).then((r) => r.text(), () => '');
  try {
    const files = new RelaySession({ url: relay.url, identity: generateIdentity(), timeoutMs: 30_000 });
    const writer = new Writer(relay.url);
    writer.start();
    const legit = await legitCount(relay.url);
    const load = legit.start();

    const before = [await uploadChunk(files)];
    await sleep(9000);
    before.push(await uploadChunk(files));
    say(`before the restart: chunk, 9 s, chunk → ${before.join(', ')}`);
    expectThat(before.every((s) => s === '200'), `chunks before the restart: ${before.join(', ')} (want 200, 200)`);

    const ackedBefore = writer.acked.size;
    const t0 = performance.now();
    const wall0 = Date.now() / 1000;
    await relay.restartRedisEmpty();
    const restartedMs = performance.now() - t0;
    const ran: Record<string, number> = {};
    const deadline = Date.now() + 60_000;
    while (Object.keys(ran).length < 2 && Date.now() < deadline) {
      const text = await scrape();
      for (const job of ['file-sweep', 'load-aggregate']) {
        if (ran[job] === undefined && metric(text, 'zax_core_job_last_run_timestamp_seconds', job) > wall0) ran[job] = performance.now() - t0;
      }
      await sleep(100);
    }
    const text = await scrape();
    for (const job of ['file-sweep', 'load-aggregate']) {
      const restored = metric(text, 'zax_core_job_schedules_restored_total', job);
      say(`  ${job}: ran again ${ran[job] === undefined ? 'NOT within 60 s' : `${secs(ran[job])} after the SIGKILL`}; schedules restored ${restored}; stale ${metric(text, 'zax_core_job_stale', job)}`);
      expectThat(ran[job] !== undefined, `${job} did not run again after the empty restart`);
    }
    const readyz = await fetch(`http://127.0.0.1:${adminPort}/readyz`).then((r) => `${r.status} ${r.statusText}`, (e: unknown) => String(e));
    say(`  core /readyz after: ${readyz}`);

    const after: string[] = [];
    // The first chunk after the restart may meet the relay still reconnecting (503): retry those.
    let first = await uploadChunk(files);
    let retried = 0;
    while (first === '503' && retried < 100) {
      retried++;
      await sleep(200);
      first = await uploadChunk(files);
    }
    after.push(first);
    for (let i = 0; i < 2; i++) {
      await sleep(9000);
      after.push(await uploadChunk(files));
    }
    say(`after the restart: chunk${retried ? ` (after ${retried} × 503 while reconnecting)` : ''}, 9 s, chunk, 9 s, chunk → ${after.join(', ')}`);
    expectThat(after.every((s) => s === '200'), `chunks after the empty restart: ${after.join(', ')} (want 200 ×3: the sweep frees the bytes)`);

    const recovery = writer.firstOkAfter(t0);
    await writer.stop();
    const r1 = await load.stop();
    const kept = await writer.acknowledgedStillThere();
    say(`  writer: ${writer.acked.size} acknowledged (${ackedBefore} before the restart), ${kept.lost} no longer downloadable; statuses ${writer.statuses}`);
    say(`  legitimate count during the whole phase: ${fmtLatency(r1.ms)}; statuses ${r1.statuses}`);
    for (const t of [writer.statuses, r1.statuses]) expectThat(t.unexpected5xx().length === 0, `5xx other than 503 during the Redis restart: ${t}`);
    faultRows.push({
      fault: 'core Redis SIGKILL + empty restart (memory-only store)',
      acked: kept.acked,
      lost: `${kept.lost} (those stored before the restart: the store is memory-only by design)`,
      statuses: writer.statuses.toString(),
      recovery: `${secs(recovery)} from the SIGKILL (Redis back after ${secs(restartedMs)})`,
    });

    // --- Redis freeze ---
    const freezeMs = Number(args['freeze-sec']) * 1000;
    const w2 = new Writer(relay.url);
    w2.start();
    await w2.waitOkAfter(performance.now());
    await sleep(1000);
    const frozenAt = performance.now();
    relay.signal('redis', 'SIGSTOP');
    await sleep(freezeMs);
    relay.signal('redis', 'SIGCONT');
    const contAt = performance.now();
    const back = await w2.waitOkAfter(contAt);
    await sleep(1000);
    await w2.stop();
    const k2 = await w2.acknowledgedStillThere();
    say(`Redis frozen ${secs(freezeMs)} (SIGSTOP … SIGCONT) under a writer: ${k2.acked} acknowledged, ${k2.lost} lost; statuses ${w2.statuses}; first 200 ${secs(w2.firstOkAfter(contAt))} after SIGCONT`);
    expectThat(back, 'no acknowledged upload after the Redis freeze');
    expectThat(k2.lost === 0, `${k2.lost} acknowledged messages lost across the Redis freeze`);
    expectThat(w2.statuses.unexpected5xx().length === 0, `5xx other than 503 during the Redis freeze: ${w2.statuses}`);
    faultRows.push({
      fault: `core Redis frozen ${secs(freezeMs)} (SIGSTOP, SIGCONT)`,
      acked: k2.acked,
      lost: String(k2.lost),
      statuses: w2.statuses.toString(),
      recovery: `${secs(w2.firstOkAfter(contAt))} after SIGCONT (${secs(contAt - frozenAt)} frozen)`,
    });
  } finally {
    await relay.stop();
  }
}

// ---------------------------------------------------------------- 2, 3: the existing abuse scripts

/** Runs one of the abuse scripts as a child, echoing its output indented; returns that output. */
async function runScript(file: string, argv: string[], onLine: (line: string) => void = () => undefined): Promise<string> {
  const child = spawn(process.execPath, [`${DIST}${file}`, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  createInterface({ input: child.stdout! }).on('line', (l) => {
    out += `${l}\n`;
    say(`  ${l}`);
    onLine(l);
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  expectThat(code === 0, `${file} exited ${code}: ${err.slice(-2000)}`);
  return out;
}

/** Statuses `NNN×n` in a script's status lines that are 5xx other than 503. */
const bad5xx = (text: string): string[] => [...text.matchAll(/\b(5\d\d)×\d+/g)].map((m) => m[1]!).filter((s) => s !== '503');

async function scenarioBodies(): Promise<void> {
  say('\n== 2. stalled request bodies (body-abuse.js; gatekeeper budgets at their defaults, throttling at the defaults)');
  const out = await runScript('body-abuse.js', [args['body-connections'], args['body-addresses']]);
  expectThat(bad5xx(out).length === 0, `stalled bodies: 5xx other than 503 (${bad5xx(out).join(', ')})`);
}

async function scenarioDownloads(): Promise<void> {
  say('\n== 3. stalled download readers and download loops (download-abuse.js; default bounds)');
  // download-abuse.js measures its "other client" in the same process as the abusive loops, whose
  // answer decoding competes for that process's event loop; a second legitimate client here, in
  // this process, measures the relay alone. Its samples are attributed to the child's phases by time.
  const samples: { t: number; ms: number }[] = [];
  let stop = false;
  let loop: Promise<void> | null = null;
  const phases: string[] = [];
  const window = (label: string, from: number, to: number): void => {
    const xs = samples.filter((x) => x.t >= from && x.t <= to).map((x) => x.ms);
    phases.push(`${label}: p50 ${pct(xs, 50).toFixed(1)} ms, p95 ${pct(xs, 95).toFixed(1)} ms (n=${xs.length})`);
  };
  const stallMs = Number(args['stall-sec']) * 1000;
  const loopMs = Number(args['loop-sec']) * 1000;
  const out = await runScript('download-abuse.js', ['--stall-sec', args['stall-sec'], '--loop-sec', args['loop-sec']], (l) => {
    const now = performance.now();
    const url = /relay (http:\/\/\S+)/.exec(l)?.[1];
    if (url !== undefined) {
      loop = (async () => {
        const s = new RelaySession({ url, identity: generateIdentity(), timeoutMs: 30_000 });
        while (!stop) {
          const t0 = performance.now();
          try {
            await s.command({ cmd: 'count' });
            samples.push({ t: performance.now(), ms: performance.now() - t0 });
          } catch {
            // counted by the child's own client; this one only measures latency
          }
          await sleep(20);
        }
      })();
    } else if (l.startsWith('idle:')) window('idle', now - 3000, now);
    else if (l.trimStart().startsWith('core RSS:')) window('stalled readers', now - 3000 - stallMs, now - 3000);
    else {
      const m = /^download loops (\d+):/.exec(l);
      if (m) window(`${m[1]} download loops`, now - loopMs, now);
    }
  });
  stop = true;
  await loop;
  say(`  a legitimate count from a separate process: ${phases.join('; ')}`);
  expectThat(bad5xx(out).length === 0, `downloads: 5xx other than 503 (${bad5xx(out).join(', ')})`);
}

// ---------------------------------------------------------------- 4 refused requests

async function allKeys(r: Redis): Promise<Set<string>> {
  const out = new Set<string>();
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'COUNT', 1000);
    cursor = next;
    for (const k of keys) out.add(k);
  } while (cursor !== '0');
  return out;
}

/** A key with its base64 runs blanked, for grouping. */
const shape = (k: string): string => k.replace(/[A-Za-z0-9+/_-]{20,}={0,2}/g, '…');

async function flood(n: number, concurrency: number, send: () => Promise<number>): Promise<Tally> {
  const t = new Tally();
  let left = n;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (left-- > 0) t.add(await send().catch(() => 0));
    }),
  );
  return t;
}

async function post(url: string, body: string): Promise<number> {
  const r = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'text/plain' } });
  await r.arrayBuffer();
  return r.status;
}

async function scenarioRefused(): Promise<void> {
  const n = Number(args.refused);
  say(`\n== 4. refused requests leave nothing: ${n} /command (random hpk, fresh nonce) + ${n / 2} /prove (unknown handshake); throttling off so every one reaches the core`);
  const relay = await LocalRelay.start({ env: { LOG_LEVEL: 'warn' } });
  const r = new Redis(relay.redisUrl, { maxRetriesPerRequest: 1 });
  try {
    const legit = await legitCount(relay.url);
    const idle = await legit.sample(3000);
    const keysBefore = await allKeys(r);
    const memBefore = Number(/used_memory:(\d+)/.exec(await r.info('memory'))![1]);
    const gk = relay.pids.gatekeeper;
    const rss0 = [rssMiB(relay.pids.core), rssMiB(gk)];
    const during = legit.start();
    const t0 = performance.now();
    const cmd = await flood(n, 16, () =>
      post(`${relay.url}/command`, [b64(randomBytes(32)), b64(makeNonce(Math.floor(Date.now() / 1000), (k) => randomBytes(k))), b64(randomBytes(96))].join('\r\n')),
    );
    const prove = await flood(n / 2, 16, () => post(`${relay.url}/prove`, [b64(randomBytes(32)), b64(randomBytes(32)), b64(randomBytes(24)), b64(randomBytes(192))].join('\r\n')));
    const took = performance.now() - t0;
    const d = await during.stop();
    const keysAfter = await allKeys(r);
    const memAfter = Number(/used_memory:(\d+)/.exec(await r.info('memory'))![1]);
    // The legitimate client's own records (its session, its command nonces) are not the refused requests'.
    // So are the relay's own time-driven records (BullMQ's {jobs}, the load counters' {load}).
    const fresh = [...keysAfter].filter((k) => !keysBefore.has(k));
    const legitAdded = fresh.filter((k) => k.includes(`{${legit.hpk}}`)).length;
    const bookkeeping = fresh.filter((k) => k.includes('{jobs}') || k.includes('{load}')).length;
    const added = fresh.filter((k) => !k.includes(`{${legit.hpk}}`) && !k.includes('{jobs}') && !k.includes('{load}'));
    const shapes = new Tally();
    for (const k of added) shapes.add(shape(k));
    say(`  /command statuses ${cmd}; /prove statuses ${prove} (${secs(took)}, ${Math.round(((n * 3) / 2 / took) * 1000)} req/s)`);
    say(`  Redis keys: ${keysBefore.size} before, ${keysAfter.size} after: ${legitAdded} new of the legitimate client's own (its command nonces), ${bookkeeping} new of the relay's jobs and load counters; any other new: ${added.length ? shapes.toString() : 'none'}`);
    say(`  Redis used_memory: ${memBefore} B before, ${memAfter} B after (${memAfter - memBefore >= 0 ? '+' : ''}${memAfter - memBefore} B)`);
    say(`  RSS MiB core ${rss0[0]} → ${rssMiB(relay.pids.core)}, gatekeeper ${rss0[1]} → ${rssMiB(gk)}`);
    say(`  legitimate count: idle ${fmtLatency(idle.ms)}; during ${fmtLatency(d.ms)}; statuses ${d.statuses}`);
    expectThat(added.length === 0, `${added.length} new Redis keys after ${n * 1.5} refused requests: ${shapes}`);
    expectThat(cmd.unexpected5xx().length === 0 && prove.unexpected5xx().length === 0, `5xx other than 503 for refused requests: ${cmd}; ${prove}`);
    expectThat([...cmd.counts.keys()].every((k) => k.startsWith('4')), `refused /command answered ${cmd}`);
  } finally {
    r.disconnect();
    await relay.stop();
  }
}

// ---------------------------------------------------------------- 5 the launcher

interface Launcher {
  readonly url: string;
  readonly lines: string[];
  pid(name: 'core' | 'gatekeeper'): number;
  readonly redisPort: number;
  stop(): Promise<number | null>;
}

async function launch(): Promise<Launcher> {
  const port = await freePort();
  const corePort = await freePort();
  const env: Record<string, string> = { PORT: String(port), CORE_PORT: String(corePort), HOST: '127.0.0.1', HANDSHAKE_BURST_PER_IP: '0', REQUEST_BURST_PER_IP: '0', LOG_LEVEL: 'warn' };
  for (const k of ['PATH', 'HOME', 'LANG', 'TMPDIR']) if (process.env[k] !== undefined) env[k] = process.env[k];
  const child = spawn(process.execPath, [`${ROOT}scripts/dist/start.js`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const pids: Record<string, number> = {};
  let redisPort = 0;
  let ready = false;
  const onLine = (l: string): void => {
    lines.push(l);
    const m = /started (core|gatekeeper) \(pid (\d+)\)/.exec(l);
    if (m) pids[m[1]!] = Number(m[2]);
    const r = /redis-server on 127\.0\.0\.1:(\d+)/.exec(l);
    if (r) redisPort = Number(r[1]);
    if (l.startsWith('Zax relay ready:')) ready = true;
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', onLine);
  const exit = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  const deadline = Date.now() + 60_000;
  while (!ready && child.exitCode === null && Date.now() < deadline) await sleep(50);
  if (!ready) {
    child.kill('SIGKILL');
    throw new Error(`the launcher did not get ready:\n${lines.slice(-30).join('\n')}`);
  }
  return {
    url: `http://127.0.0.1:${port}`,
    lines,
    redisPort,
    pid: (name) => pids[name]!,
    async stop() {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await exit;
      clearTimeout(t);
      return code;
    },
  };
}

async function scenarioLauncher(): Promise<void> {
  say('\n== 5. pnpm start (scripts/dist/start.js) supervises: core, then gatekeeper SIGKILLed under a writer (throttling off)');
  const l = await launch();
  try {
    const r = new Redis({ port: l.redisPort, host: '127.0.0.1', maxRetriesPerRequest: 1 });
    const [, maxmemory] = (await r.config('GET', 'maxmemory')) as [string, string];
    const [, policy] = (await r.config('GET', 'maxmemory-policy')) as [string, string];
    r.disconnect();
    say(`  private Redis: maxmemory ${maxmemory} B (${(Number(maxmemory) / 2 ** 20).toFixed(0)} MiB), policy ${policy}`);
    expectThat(Number(maxmemory) > 0, 'the launcher’s private Redis has no maxmemory');
    for (const name of ['core', 'gatekeeper'] as const) {
      const w = new Writer(l.url);
      w.start();
      await w.waitOkAfter(performance.now());
      await sleep(1000);
      const victim = l.pid(name);
      const kill = performance.now();
      process.kill(victim, 'SIGKILL');
      const back = await w.waitOkAfter(kill, 60_000);
      const rec = w.firstOkAfter(kill);
      await sleep(1000);
      await w.stop();
      const k = await w.acknowledgedStillThere();
      const restarted = l.pid(name) !== victim;
      say(`  ${name} SIGKILL: ${restarted ? `restarted (pid ${victim} → ${l.pid(name)})` : 'NOT restarted'}; first 200 ${secs(rec)} after the kill; ${k.acked} acknowledged, ${k.lost} lost; statuses ${w.statuses}`);
      expectThat(back && restarted, `${name} not back after SIGKILL under the launcher`);
      expectThat(k.lost === 0, `${k.lost} acknowledged messages lost across a ${name} SIGKILL`);
      expectThat(w.statuses.unexpected5xx().length === 0, `5xx other than 503 across a ${name} SIGKILL: ${w.statuses}`);
      faultRows.push({ fault: `${name} SIGKILL (pnpm start restarts it)`, acked: k.acked, lost: String(k.lost), statuses: w.statuses.toString(), recovery: `${secs(rec)} from the kill` });
    }
    for (const line of l.lines.filter((x) => /exited unexpectedly|restarting|ready again/.test(x))) say(`  | ${line}`);
  } finally {
    const code = await l.stop();
    say(`  launcher stopped (exit ${code})`);
    expectThat(code === 0, `the launcher exited ${code} on SIGTERM`);
  }
}

// ---------------------------------------------------------------- 6 operations endpoints

/** A raw request with an absolute-form target; resolves with the status. */
function absoluteForm(port: number, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.on('error', reject);
    s.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(got);
      if (m) {
        resolve(Number(m[1]));
        s.destroy();
      }
    });
    s.write(`POST http://127.0.0.1:${port}/command HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });
}

async function scenarioOps(): Promise<void> {
  const n = Number(args.scrapes);
  say(`\n== 6. operations endpoints: /metrics off the public port, absolute-form targets, ${n} scrapes at concurrency 32 on ADMIN_PORT`);
  const adminPort = await freePort();
  const relay = await LocalRelay.start({ env: { ADMIN_PORT: String(adminPort), LOG_LEVEL: 'warn' } });
  try {
    const pub = await fetch(`${relay.url}/metrics`);
    await pub.arrayBuffer();
    const adm = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
    const admText = await adm.text();
    say(`  GET /metrics: public port ${pub.status}; ADMIN_PORT ${adm.status} (${admText.length} bytes)`);
    expectThat(pub.status === 404, `/metrics on the public port answered ${pub.status}`);
    expectThat(adm.status === 200, `/metrics on ADMIN_PORT answered ${adm.status}`);

    const refused = [b64(randomBytes(32)), b64(makeNonce(Math.floor(Date.now() / 1000), (k) => randomBytes(k))), b64(randomBytes(96))].join('\r\n');
    const port = Number(new URL(relay.url).port);
    const viaPath = await post(`${relay.url}/command`, refused);
    const viaAbsolute = await absoluteForm(port, [b64(randomBytes(32)), b64(makeNonce(Math.floor(Date.now() / 1000), (k) => randomBytes(k))), b64(randomBytes(96))].join('\r\n'));
    say(`  an unknown-session /command: origin-form ${viaPath}, absolute-form (POST http://host/command) ${viaAbsolute}`);
    expectThat(viaAbsolute === viaPath, `absolute-form target answered ${viaAbsolute}, origin-form ${viaPath}`);

    const legit = await legitCount(relay.url);
    const idle = await legit.sample(3000);
    const gk = relay.pids.gatekeeper;
    const during = legit.start();
    const cpu = new CpuMeter([gk]);
    cpu.start();
    const t0 = performance.now();
    const scrapes = await flood(n, 32, async () => {
      const r = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
      await r.arrayBuffer();
      return r.status;
    });
    const took = performance.now() - t0;
    const gkCpu = cpu.stop().ms;
    const d = await during.stop();
    say(`  scrapes: ${scrapes} in ${secs(took)}; gatekeeper CPU ${(gkCpu / n).toFixed(2)} ms per scrape (legitimate requests included); RSS ${rssMiB(gk)} MiB after`);
    say(`  legitimate count on the public port: idle ${fmtLatency(idle.ms)}; during the scrapes ${fmtLatency(d.ms)}; statuses ${d.statuses}`);
    expectThat(scrapes.unexpected5xx().length === 0, `5xx other than 503 for scrapes: ${scrapes}`);
  } finally {
    await relay.stop();
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  say(`reliability run: ${new Date().toISOString()}, node ${process.version}, scenarios ${[...only].join(',')}`);
  const scenarios: [string, () => Promise<void>][] = [
    ['1', scenarioJobs],
    ['2', scenarioBodies],
    ['3', scenarioDownloads],
    ['4', scenarioRefused],
    ['5', scenarioLauncher],
    ['6', scenarioOps],
  ];
  for (const [id, run] of scenarios) {
    if (!only.has(id)) continue;
    const t = performance.now();
    try {
      await run();
    } catch (e) {
      expectThat(false, `scenario ${id} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
    say(`  (scenario ${id}: ${secs(performance.now() - t)})`);
  }
  if (faultRows.length > 0) {
    say('\n== fault table');
    say('| fault | acknowledged | lost | statuses seen by the writer | recovery |');
    say('|---|---|---|---|---|');
    for (const r of faultRows) say(`| ${r.fault} | ${r.acked} | ${r.lost} | ${r.statuses} | ${r.recovery} |`);
  }
  say(problems.length === 0 ? '\nreliability: every behavioural expectation held' : `\nreliability: ${problems.length} expectation(s) broke:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  process.exitCode = problems.length === 0 ? 0 : 1;
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
