/**
 * `pnpm bench:scaling --capacity`: the per-operation costs docs/CAPACITY.md sizes a deployment from,
 * measured on one gatekeeper + one core + one private redis-server (the relay `pnpm bench` starts),
 * then the sizing model worked for a device profile (defaults: the profile in docs/CAPACITY.md).
 *
 * Measured, in interleaved rounds (medians reported, min–max kept):
 *   - relay CPU (gatekeeper + core, /proc) and Redis CPU (/proc) per operation of the single-cost
 *     scenarios: `handshake` (a full session), `poll` (count), `poll-empty` (download, nothing
 *     stored), `send` (upload to a fresh recipient), `exchange` (upload → download → delete, per
 *     message), `files` (a file of --file-size in --chunk-size chunks: start, chunks up, status,
 *     chunks down, deleteFile, delete);
 *   - request and response body bytes of every step, and the gatekeeper's response header bytes;
 *   - Redis `used_memory` per stored message (memory.ts: 1 and 100 per mailbox), per replay-cache
 *     record (every command), per live session (a full handshake), per stored file byte.
 * Everything the model adds beyond these is an assumption printed with its value (flags below).
 */
import { parseCli } from './cli.js';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { connectSessions, runScenario, sendOf, type RunContext, type RunResult } from './engine.js';
import { LocalRelay } from './harness.js';
import { runMemory } from './memory.js';
import { platformByName } from './platform-node.js';
import { RedisInfo } from './redis-info.js';
import { CheckFailure, DEFAULT_OPTIONS, fileParts, newDevice, SCENARIOS, startFileUploadStep, uploadChunkStep, type Device, type ScenarioName, type ScenarioOptions } from './shared/wire.js';
import { httpTransport } from './transport.js';

const USAGE = `usage: pnpm bench:scaling --capacity [options]
 measurement (one gatekeeper + one core + one redis-server, started here):
  --rounds N              interleaved repeats of each scenario             (default 3)
  --duration SEC          measured seconds per run                         (default 4)
  --concurrency N         devices for the per-operation runs               (default 32)
  --file-concurrency N    devices for the files runs                       (default 8)
  --file-size N           bytes per file (default 1048576)  --chunk-size N (default 262144)
  --relay-env K=V         extra relay environment (default CORE_MAX_RESPONSE_BYTES_IN_FLIGHT=268435456:
                          with the 64 MiB default a core process admits only 16 downloads at once)
  --quick                 1 round, 2 s runs, small memory passes
 profile (assumptions; defaults are docs/CAPACITY.md's):
  --devices N (1e7)  --messages-per-day N (20)  --poll-sec N (300)  --session-sec N (1200)
  --file-mib-per-day N (1)  --peak N (3)  --cpu-target R (0.6: size cores for peak at 60 % busy)
  --redis-cpu-target R (0.5: a shard's one thread at most 50 % busy at peak)  --shard-gib N (25)
  --message-residence-h H (6: mean hours before a delivered message is deleted)
  --message-linger R (0.05: share never deleted, kept MESSAGE_TTL_SEC)  --message-ttl-sec N (432000)
  --file-residence-h H (12)  --file-linger R (0.1: kept FILE_TTL_SEC)  --file-ttl-sec N (604800)
  --request-header-bytes N (250: a phone's request line + headers)  --tls-handshake-bytes N (5000)
  --connections-per-poll R (1: a new TLS connection per poll; 0 = connections kept open)
  --tls-connection-us N (820: server CPU per new TLS 1.3 connection at the TLS front, measured with
                          openssl s_server/s_time on this machine, see docs/CAPACITY.md)
  --measured FILE         no measurement: work the model from an earlier --capacity --json output
  --json                  one JSON document on stdout (tables go to stderr)`;

interface Spread {
  median: number;
  min: number;
  max: number;
}

function spread(xs: readonly number[]): Spread {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return { median: NaN, min: NaN, max: NaN };
  const m = Math.floor(s.length / 2);
  return { median: s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2, min: s[0]!, max: s[s.length - 1]! };
}

interface OpCost {
  scenario: string;
  opUnit: string;
  runs: number;
  opsPerSec: Spread;
  relayUs: Spread;
  gatekeeperUs: Spread;
  coreUs: Spread;
  redisUs: Spread;
  errors: number;
  /** Mean body bytes per op (request + response over the op's requests). */
  reqBodyBytes: number;
  resBodyBytes: number;
  requestsPerOp: number;
  steps: Record<string, { req: number; res: number }>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The gatekeeper's status line + headers for an answer (a raw /start_session over one socket). */
async function responseHeaderBytes(url: string): Promise<number> {
  const u = new URL(url);
  const body = Buffer.alloc(32, 7).toString('base64');
  return new Promise((resolve, reject) => {
    const sock = connect(Number(u.port), u.hostname, () => {
      sock.write(`POST /start_session HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    });
    let buf = '';
    sock.setEncoding('latin1');
    sock.on('data', (c: string) => {
      buf += c;
      const i = buf.indexOf('\r\n\r\n');
      if (i >= 0) {
        sock.destroy();
        resolve(i + 4);
      }
    });
    sock.on('error', reject);
    setTimeout(() => {
      sock.destroy();
      reject(new Error('no answer'));
    }, 5000).unref();
  });
}

/** Redis bytes per live session: `n` full handshakes on fresh devices, in waves of `wave`. */
async function sessionMemory(ctx: RunContext, info: RedisInfo, n: number, wave: number): Promise<{ bytesPerSession: number; redisUsPerSession: number }> {
  await sleep(300);
  const m0 = await info.usedMemory();
  const c0 = await info.cpuMs();
  for (let done = 0; done < n; done += wave) {
    const devices = Array.from({ length: Math.min(wave, n - done) }, () => newDevice(ctx.platform, ctx.options));
    await connectSessions(ctx, devices);
  }
  const c1 = await info.cpuMs();
  await sleep(300);
  const m1 = await info.usedMemory();
  return { bytesPerSession: (m1 - m0) / n, redisUsPerSession: ((c1 - c0) * 1000) / n };
}

/** Redis bytes per stored file byte: `files` uploads of `o.fileSize` bytes, complete and never deleted. */
async function fileMemory(ctx: RunContext, info: RedisInfo, devices: Device[], files: number): Promise<{ bytesPerFileByte: number; storedBytes: number; usedMemoryDelta: number }> {
  const sizes = fileParts(ctx.options);
  const steps = [startFileUploadStep, ...sizes.map((b, i) => uploadChunkStep(i, b))];
  await sleep(300);
  const m0 = await info.usedMemory();
  let next = 0;
  await Promise.all(
    devices.map(async (d, i) => {
      const send = sendOf(ctx, i);
      while (next < files) {
        next++;
        for (const step of steps) {
          const req = step.request(d);
          step.check(d, await send(req.path, req.body));
        }
      }
    }),
  );
  await sleep(300);
  const m1 = await info.usedMemory();
  const storedBytes = files * ctx.options.fileSize;
  return { bytesPerFileByte: (m1 - m0) / storedBytes, storedBytes, usedMemoryDelta: m1 - m0 };
}

function opCost(scenario: string, results: RunResult[]): OpCost {
  const per = (f: (r: RunResult) => number | undefined): number[] => results.map((r) => (r.ops > 0 ? ((f(r) ?? NaN) * 1000) / r.ops : NaN));
  const steps: Record<string, { req: number; res: number }> = {};
  let req = 0;
  let res = 0;
  let requests = 0;
  let ops = 0;
  for (const r of results) ops += r.ops;
  for (const r of results) {
    for (const [name, s] of Object.entries(r.steps)) {
      // Handshakes a device repeats inside a run (a reset, an old session) are not the op's bytes.
      if (scenario !== 'handshake' && (name === 'start_session' || name === 'verify_session' || name === 'prove')) continue;
      const cur = steps[name] ?? { req: 0, res: 0 };
      steps[name] = { req: cur.req + s.reqBodyBytes * s.count, res: cur.res + s.resBodyBytes * s.count };
      req += s.reqBodyBytes * s.count;
      res += s.resBodyBytes * s.count;
      requests += s.count;
    }
  }
  for (const [name, s] of Object.entries(steps)) {
    const count = results.reduce((a, r) => a + (r.steps[name]?.count ?? 0), 0);
    steps[name] = { req: s.req / count, res: s.res / count };
  }
  return {
    scenario,
    opUnit: results[0]?.opUnit ?? '',
    runs: results.length,
    opsPerSec: spread(results.map((r) => r.opsPerSec)),
    relayUs: spread(per((r) => r.cpu.relayTotalMs)),
    gatekeeperUs: spread(per((r) => r.cpu.relayMs.gatekeeper)),
    coreUs: spread(per((r) => r.cpu.relayMs.core)),
    redisUs: spread(per((r) => r.cpu.redisProcMs ?? r.cpu.redisInfoMs ?? undefined)),
    errors: results.reduce((a, r) => a + r.errors.total, 0),
    reqBodyBytes: ops > 0 ? req / ops : 0,
    resBodyBytes: ops > 0 ? res / ops : 0,
    requestsPerOp: ops > 0 ? requests / ops : 0,
    steps,
  };
}

export interface Profile {
  devices: number;
  messagesPerDay: number;
  pollSec: number;
  sessionSec: number;
  fileMiBPerDay: number;
  peak: number;
  cpuTarget: number;
  redisCpuTarget: number;
  shardGiB: number;
  messageResidenceH: number;
  messageLinger: number;
  messageTtlSec: number;
  fileResidenceH: number;
  fileLinger: number;
  fileTtlSec: number;
  requestHeaderBytes: number;
  tlsHandshakeBytes: number;
  connectionsPerPoll: number;
  /** Server CPU per new TLS connection at the TLS front, µs (outside the relay's tiers). */
  tlsConnectionUs: number;
  nonceCacheSec: number;
}

export interface Measured {
  handshake: OpCost;
  poll: OpCost;
  pollEmpty: OpCost;
  send: OpCost;
  exchange: OpCost;
  files: OpCost;
  fileSize: number;
  chunkSize: number;
  responseHeaderBytes: number;
  memory: { bytesPerCommand: number; bytesPerMessage1: number; bytesPerMessage100: number; bytesPerSession: number; bytesPerFileByte: number };
}

/** The sizing model: every figure from `m` (measured) or `p` (assumed). */
export function model(m: Measured, p: Profile): Record<string, number> {
  const day = 86_400;
  const med = (c: OpCost, k: 'relayUs' | 'gatekeeperUs' | 'coreUs' | 'redisUs'): number => c[k].median;
  // Rates (average, per second).
  const polls = p.devices / p.pollSec;
  const sessions = p.devices / p.sessionSec;
  const messages = (p.devices * p.messagesPerDay) / day;
  const filesPerSec = (p.devices * p.fileMiBPerDay * 1024 * 1024) / m.fileSize / day;
  const chunksPerFile = Math.ceil(m.fileSize / m.chunkSize);
  // Requests: a poll is one `download` (empty unless messages wait); a message adds an upload and a
  // delete (its download is the recipient's poll); a session is 3 requests; a file is
  // start + chunks up + status + chunks down + deleteFile + delete.
  const requests = {
    poll: polls,
    message: messages * 2,
    session: sessions * 3,
    file: filesPerSec * (2 * chunksPerFile + 4),
  };
  const reqTotal = requests.poll + requests.message + requests.session + requests.file;
  // CPU (µs per second = µs/s; / 1e6 = cores). A message costs exchange − empty poll on top of the poll.
  const extraPerMessage = (k: 'relayUs' | 'gatekeeperUs' | 'coreUs' | 'redisUs'): number => Math.max(0, med(m.exchange, k) - med(m.pollEmpty, k));
  const cores = (k: 'relayUs' | 'gatekeeperUs' | 'coreUs' | 'redisUs'): number =>
    (polls * med(m.pollEmpty, k) + messages * extraPerMessage(k) + sessions * med(m.handshake, k) + filesPerSec * med(m.files, k)) / 1e6;
  const gk = cores('gatekeeperUs');
  const core = cores('coreUs');
  const redis = cores('redisUs');
  // Redis memory.
  // Replay-cache records of /command requests (a session's own nonce records are in bytesPerSession).
  const commandsPerSec = polls + messages * 2 + filesPerSec * (2 * chunksPerFile + 4);
  const storedMessages = messages * ((1 - p.messageLinger) * p.messageResidenceH * 3600 + p.messageLinger * p.messageTtlSec);
  const perMailbox = storedMessages / p.devices;
  // Per message: the measured 1-per-mailbox figure up to 1 stored message per mailbox, the
  // 100-per-mailbox one from there (linear between them in the mailbox's share of fixed keys).
  const bytesPerMessage =
    perMailbox <= 1
      ? m.memory.bytesPerMessage1
      : m.memory.bytesPerMessage100 + ((m.memory.bytesPerMessage1 - m.memory.bytesPerMessage100) * (100 / perMailbox - 1)) / 99;
  const storedFileBytes = p.devices * p.fileMiBPerDay * 1024 * 1024 * ((1 - p.fileLinger) * (p.fileResidenceH / 24) + p.fileLinger * (p.fileTtlSec / day));
  const mem = {
    messages: storedMessages * Math.max(0, bytesPerMessage),
    sessions: Math.min(p.devices, sessions * p.sessionSec) * m.memory.bytesPerSession,
    nonces: commandsPerSec * p.nonceCacheSec * m.memory.bytesPerCommand,
    files: storedFileBytes * m.memory.bytesPerFileByte,
  };
  const memTotal = mem.messages + mem.sessions + mem.nonces + mem.files;
  const gib = 1024 ** 3;
  const shardsByMemory = Math.ceil(memTotal / (p.shardGiB * gib));
  const shardsByCpu = Math.ceil((redis * p.peak) / p.redisCpuTarget);
  // Network: bodies measured, response headers measured, request headers assumed; TLS records 22 B
  // (TLS 1.3 AES-GCM: 5 header + 16 tag + 1 type) per ≤ 16 KiB record each way; connection set-up
  // per poll as assumed. Bytes per second, each direction.
  const hdrIn = p.requestHeaderBytes;
  const hdrOut = m.responseHeaderBytes;
  const tls = (bytes: number): number => Math.ceil(Math.max(1, bytes) / 16384) * 22;
  const perReq = (reqBody: number, resBody: number): { in: number; out: number } => ({ in: reqBody + hdrIn + tls(reqBody + hdrIn), out: resBody + hdrOut + tls(resBody + hdrOut) });
  const emptyPoll = perReq(m.pollEmpty.reqBodyBytes, m.pollEmpty.resBodyBytes);
  const uploadStep = m.exchange.steps.upload ?? { req: 0, res: 0 };
  const downloadStep = m.exchange.steps.download ?? { req: 0, res: 0 };
  const deleteStep = m.exchange.steps.delete ?? { req: 0, res: 0 };
  const msgUp = perReq(uploadStep.req, uploadStep.res);
  const msgDel = perReq(deleteStep.req, deleteStep.res);
  const msgDownExtra = { in: 0, out: Math.max(0, downloadStep.res - m.pollEmpty.resBodyBytes) };
  const hs = m.handshake.steps;
  const session = ['start_session', 'verify_session', 'prove']
    .map((s) => perReq(hs[s]?.req ?? 0, hs[s]?.res ?? 0))
    .reduce((a, b) => ({ in: a.in + b.in, out: a.out + b.out }), { in: 0, out: 0 });
  const fileSteps = m.files.steps;
  const filePer = Object.entries(fileSteps).reduce(
    (a, [name, s]) => {
      const n = name === 'uploadFileChunk' || name === 'downloadFileChunk' ? chunksPerFile : 1;
      const r = perReq(s.req, s.res);
      return { in: a.in + n * r.in, out: a.out + n * r.out };
    },
    { in: 0, out: 0 },
  );
  const conn = polls * p.connectionsPerPoll;
  const netIn = polls * emptyPoll.in + messages * (msgUp.in + msgDel.in) + sessions * session.in + filesPerSec * filePer.in + conn * p.tlsHandshakeBytes * 0.25;
  const netOut = polls * emptyPoll.out + messages * (msgUp.out + msgDel.out + msgDownExtra.out) + sessions * session.out + filesPerSec * filePer.out + conn * p.tlsHandshakeBytes * 0.75;
  const headroom = p.peak / p.cpuTarget;
  return {
    pollsPerSec: polls,
    sessionsPerSec: sessions,
    messagesPerSec: messages,
    filesPerSec,
    requestsPerSecAvg: reqTotal,
    requestsPerSecPeak: reqTotal * p.peak,
    requestsPoll: requests.poll,
    requestsMessage: requests.message,
    requestsSession: requests.session,
    requestsFile: requests.file,
    gatekeeperCoresAvg: gk,
    coreCoresAvg: core,
    gatekeeperCoresProvisioned: gk * headroom,
    coreCoresProvisioned: core * headroom,
    gkShareSessions: (sessions * med(m.handshake, 'gatekeeperUs')) / 1e6 / gk,
    coreShareSessions: (sessions * med(m.handshake, 'coreUs')) / 1e6 / core,
    gkSharePolls: (polls * med(m.pollEmpty, 'gatekeeperUs')) / 1e6 / gk,
    coreSharePolls: (polls * med(m.pollEmpty, 'coreUs')) / 1e6 / core,
    tlsFrontCoresAvg: (conn * p.tlsConnectionUs) / 1e6,
    tlsFrontCoresProvisioned: ((conn * p.tlsConnectionUs) / 1e6) * headroom,
    redisCpuCoresAvg: redis,
    redisCpuCoresPeak: redis * p.peak,
    commandsPerSec,
    storedMessages,
    messagesPerMailbox: perMailbox,
    bytesPerStoredMessage: bytesPerMessage,
    storedFileBytes,
    memMessagesGiB: mem.messages / gib,
    memSessionsGiB: mem.sessions / gib,
    memNoncesGiB: mem.nonces / gib,
    memFilesGiB: mem.files / gib,
    memTotalGiB: memTotal / gib,
    shardsByMemory,
    shardsByCpu,
    shards: Math.max(shardsByMemory, shardsByCpu),
    netInMBps: netIn / 1e6,
    netOutMBps: netOut / 1e6,
    netInGbpsPeak: (netIn * 8 * p.peak) / 1e9,
    netOutGbpsPeak: (netOut * 8 * p.peak) / 1e9,
    bytesEmptyPollIn: emptyPoll.in,
    bytesEmptyPollOut: emptyPoll.out,
    bytesSessionIn: session.in,
    bytesSessionOut: session.out,
    bytesMessageIn: msgUp.in + msgDel.in,
    bytesMessageOut: msgUp.out + msgDel.out + msgDownExtra.out,
    bytesFileIn: filePer.in,
    bytesFileOut: filePer.out,
  };
}

/** Works the model for `p` and prints it. */
function printModel(measured: Measured, profile: Profile, out: (s: string) => void): Record<string, number> {
  const mdl = model(measured, profile);
  out(`\nmodel for ${f(profile.devices)} devices (assumptions: ${JSON.stringify(profile)}):`);
  out(`  rates: ${f(mdl.pollsPerSec!)} polls/s · ${f(mdl.sessionsPerSec!)} sessions/s · ${f(mdl.messagesPerSec!)} messages/s · ${f(mdl.filesPerSec!, 1)} files/s`);
  out(`  requests/s: ${f(mdl.requestsPerSecAvg!)} average, ${f(mdl.requestsPerSecPeak!)} at peak ×${profile.peak} (polls ${f(mdl.requestsPoll!)}, messages ${f(mdl.requestsMessage!)}, sessions ${f(mdl.requestsSession!)}, files ${f(mdl.requestsFile!)})`);
  out(
    `  CPU cores (this machine's µs): gatekeepers ${f(mdl.gatekeeperCoresAvg!, 1)} average → ${f(mdl.gatekeeperCoresProvisioned!, 1)} provisioned; cores ${f(mdl.coreCoresAvg!, 1)} → ${f(mdl.coreCoresProvisioned!, 1)} ` +
      `(peak ×${profile.peak} at ${profile.cpuTarget * 100} % busy); sessions are ${f(mdl.gkShareSessions! * 100)} % of the gatekeeper CPU and ${f(mdl.coreShareSessions! * 100)} % of the core's, polls ${f(mdl.gkSharePolls! * 100)} % / ${f(mdl.coreSharePolls! * 100)} %`,
  );
  out(`  TLS front (outside the relay): ${f(mdl.tlsFrontCoresAvg!, 1)} cores average → ${f(mdl.tlsFrontCoresProvisioned!, 1)} provisioned (${profile.connectionsPerPoll} new connection per poll × ${profile.tlsConnectionUs} µs)`);
  out(
    `  Redis: ${f(mdl.memTotalGiB!, 1)} GiB (messages ${f(mdl.memMessagesGiB!, 1)} — ${f(mdl.storedMessages! / 1e6, 1)} M stored, ${f(mdl.messagesPerMailbox!, 2)} per mailbox at ${f(mdl.bytesPerStoredMessage!)} B; sessions ${f(mdl.memSessionsGiB!, 1)}; ` +
      `replay cache ${f(mdl.memNoncesGiB!, 1)}; files ${f(mdl.memFilesGiB!, 1)}) · CPU ${f(mdl.redisCpuCoresAvg!, 2)} threads average, ${f(mdl.redisCpuCoresPeak!, 2)} at peak · ` +
      `shards: ${mdl.shardsByMemory} by memory (≤ ${profile.shardGiB} GiB), ${mdl.shardsByCpu} by CPU (≤ ${profile.redisCpuTarget * 100} % of a thread at peak) → ${mdl.shards} primaries (+ a replica each)`,
  );
  out(
    `  network: ${f(mdl.netInMBps!, 1)} MB/s in, ${f(mdl.netOutMBps!, 1)} MB/s out on average; at peak ${f(mdl.netInGbpsPeak!, 2)} Gbit/s in, ${f(mdl.netOutGbpsPeak!, 2)} Gbit/s out ` +
      `(per empty poll ${f(mdl.bytesEmptyPollIn!)} B in / ${f(mdl.bytesEmptyPollOut!)} B out; per session ${f(mdl.bytesSessionIn!)} / ${f(mdl.bytesSessionOut!)}; per message ${f(mdl.bytesMessageIn!)} / ${f(mdl.bytesMessageOut!)}; per file ${f(mdl.bytesFileIn!)} / ${f(mdl.bytesFileOut!)}; TLS connection ${profile.tlsHandshakeBytes} B × ${profile.connectionsPerPoll} per poll)`,
  );
  return mdl;
}

const f = (n: number, d = 0): string => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : '—');

export async function runCapacity(argv: string[]): Promise<number> {
  const numOpts = [
    'rounds', 'duration', 'concurrency', 'file-concurrency', 'devices', 'messages-per-day', 'poll-sec', 'session-sec', 'file-mib-per-day', 'peak', 'cpu-target',
    'redis-cpu-target', 'shard-gib', 'message-residence-h', 'message-linger', 'message-ttl-sec', 'file-residence-h', 'file-linger', 'file-ttl-sec',
    'request-header-bytes', 'tls-handshake-bytes', 'connections-per-poll', 'file-size', 'chunk-size', 'warmup',
  ];
  const values = parseCli(argv, {
    ...Object.fromEntries(numOpts.map((k) => [k, { type: 'string' as const }])),
    'relay-env': { type: 'string', multiple: true },
    measured: { type: 'string' },
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    'help-capacity': { type: 'boolean', default: false },
  }, USAGE, ['help-capacity']);
  if (typeof values === 'number') return values;
  const quick = values.quick === true;
  const json = values.json === true;
  const out = (s: string): void => {
    (json ? process.stderr : process.stdout).write(`${s}\n`);
  };
  const num = (k: string, def: number): number => {
    const s = values[k] as string | undefined;
    const v = s === undefined ? def : Number(s);
    if (!Number.isFinite(v) || v < 0) throw new Error(`--${k} must be a number ≥ 0: ${s}`);
    return v;
  };
  const rounds = Math.max(1, Math.round(num('rounds', quick ? 1 : 3)));
  const durationSec = num('duration', quick ? 2 : 4);
  const warmupSec = num('warmup', quick ? 0.5 : 1);
  const concurrency = Math.max(1, Math.round(num('concurrency', 32)));
  const fileConcurrency = Math.max(1, Math.round(num('file-concurrency', 8)));
  const options: ScenarioOptions = { ...DEFAULT_OPTIONS, fileSize: Math.round(num('file-size', 1024 * 1024)), chunkSize: Math.round(num('chunk-size', 256 * 1024)) };
  const profile: Profile = {
    devices: num('devices', 1e7),
    messagesPerDay: num('messages-per-day', 20),
    pollSec: num('poll-sec', 300),
    sessionSec: num('session-sec', 1200),
    fileMiBPerDay: num('file-mib-per-day', 1),
    peak: num('peak', 3),
    cpuTarget: num('cpu-target', 0.6),
    redisCpuTarget: num('redis-cpu-target', 0.5),
    shardGiB: num('shard-gib', 25),
    messageResidenceH: num('message-residence-h', 6),
    messageLinger: num('message-linger', 0.05),
    messageTtlSec: num('message-ttl-sec', 432_000),
    fileResidenceH: num('file-residence-h', 12),
    fileLinger: num('file-linger', 0.1),
    fileTtlSec: num('file-ttl-sec', 604_800),
    requestHeaderBytes: num('request-header-bytes', 250),
    tlsHandshakeBytes: num('tls-handshake-bytes', 5000),
    connectionsPerPoll: num('connections-per-poll', 1),
    tlsConnectionUs: num('tls-connection-us', 820),
    nonceCacheSec: 600,
  };
  const relayEnv: Record<string, string> = { CORE_MAX_RESPONSE_BYTES_IN_FLIGHT: '268435456' };
  for (const kv of (values['relay-env'] as string[] | undefined) ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new Error(`--relay-env wants K=V, got ${kv}`);
    relayEnv[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const measuredFile = values.measured as string | undefined;
  if (measuredFile !== undefined) {
    // The model alone, from the figures of an earlier `--capacity --json` run.
    const doc = JSON.parse(readFileSync(measuredFile, 'utf8')) as { measured?: Measured; meta?: { date?: string } };
    if (doc.measured === undefined) throw new Error(`${measuredFile}: no "measured" figures (write it with pnpm bench:scaling --capacity --json)`);
    out(`model from the figures measured ${doc.meta?.date ?? '(date unknown)'} (${measuredFile})`);
    const mdl = printModel(doc.measured, profile, out);
    if (json) process.stdout.write(`${JSON.stringify({ measuredFrom: measuredFile, profile, model: mdl }, null, 2)}\n`);
    return 0;
  }
  const platform = platformByName('best');
  const t0 = performance.now();
  out(`capacity: ${availableParallelism()} CPU(s) shared by the generator, the gatekeeper, the core and redis-server; relay env ${JSON.stringify(relayEnv)}`);
  const relay = await LocalRelay.start({ env: relayEnv });
  let code = 0;
  const transport = httpTransport(relay.url, Math.max(concurrency, fileConcurrency), 10_000);
  const info = await RedisInfo.connect(relay.redisUrl);
  try {
    const p = relay.pids;
    const ctx: RunContext = {
      platform,
      send: transport.send,
      options,
      relayPids: [
        { label: 'gatekeeper', pids: [p.gatekeeper] },
        { label: 'core', pids: [p.core] },
      ],
      redisPids: p.redis !== null ? [p.redis] : [],
      redisInfo: info,
      log: out,
      deadService: () => relay.deadService(),
    };
    const scenarios: ScenarioName[] = ['handshake', 'poll', 'poll-empty', 'send', 'exchange', 'files'];
    const results = new Map<string, RunResult[]>(scenarios.map((s) => [s, []]));
    for (let round = 1; round <= rounds; round++) {
      const k = (round - 1) % scenarios.length;
      for (const s of [...scenarios.slice(k), ...scenarios.slice(0, k)]) {
        const r = await runScenario(ctx, SCENARIOS[s], { concurrency: s === 'files' ? fileConcurrency : concurrency, durationSec, warmupSec, ops: 0 });
        results.get(s)!.push(r);
        const us = (ms: number | null | undefined): string => (ms === null || ms === undefined || r.ops === 0 ? '—' : f((ms * 1000) / r.ops));
        out(
          `  round ${round} ${s.padEnd(10)} ${f(r.opsPerSec).padStart(6)} ${r.opUnit}s/s · relay ${us(r.cpu.relayTotalMs)} µs (gk ${us(r.cpu.relayMs.gatekeeper)} + core ${us(r.cpu.relayMs.core)}) · Redis ${us(r.cpu.redisProcMs)} µs · ${r.errors.total === 0 ? 'no errors' : `ERRORS ${r.errors.total}: ${Object.values(r.errors.byStatus)[0]?.examples[0] ?? ''}`}`,
        );
        if (!r.ok) code = 1;
        if (r.fatal !== null) throw new Error(r.fatal);
      }
    }
    const costs = Object.fromEntries(scenarios.map((s) => [s, opCost(s, results.get(s)!)])) as Record<ScenarioName, OpCost>;

    out('\nmemory: replay-cache record per command, stored message (1 and 100 per mailbox) …');
    const messages = quick ? 500 : 2000;
    const mem = await runMemory(ctx, concurrency, messages, [1, 100]);
    if (!mem.ok) code = 1;
    out('memory: live session (full handshakes on fresh devices) …');
    const sess = await sessionMemory(ctx, info, quick ? 256 : 1024, concurrency);
    out('memory: stored file bytes (complete uploads, not deleted) …');
    const fileDevices = Array.from({ length: fileConcurrency }, () => newDevice(platform, options));
    await connectSessions(ctx, fileDevices);
    const fm = await fileMemory(ctx, info, fileDevices, quick ? 16 : 64);
    const hdr = await responseHeaderBytes(relay.url);

    const measured: Measured = {
      handshake: costs.handshake,
      poll: costs.poll,
      pollEmpty: costs['poll-empty'],
      send: costs.send,
      exchange: costs.exchange,
      files: costs.files,
      fileSize: options.fileSize,
      chunkSize: options.chunkSize,
      responseHeaderBytes: hdr,
      memory: {
        bytesPerCommand: mem.bytesPerCommand,
        bytesPerMessage1: mem.passes.find((x) => x.perMailbox === 1)?.netBytesPerMessage ?? NaN,
        bytesPerMessage100: mem.passes.find((x) => x.perMailbox === 100)?.netBytesPerMessage ?? NaN,
        bytesPerSession: sess.bytesPerSession,
        bytesPerFileByte: fm.bytesPerFileByte,
      },
    };

    out('\nper-operation costs (median of the rounds; min–max), one gatekeeper + one core + one redis-server:');
    out('| operation | ops/s | relay µs/op | gatekeeper µs | core µs | Redis µs/op | requests/op | body bytes in / out per op | errors |');
    out('|---|---|---|---|---|---|---|---|---|');
    const label: Record<string, string> = {
      handshake: 'full session (start → verify → prove)',
      poll: 'poll: `count`',
      'poll-empty': 'poll: `download`, nothing stored',
      send: 'send: `upload` 1 KiB to another mailbox',
      exchange: 'message: `upload` → `download` → `delete`',
      files: `file ${f(options.fileSize / 1048576, 2)} MiB in ${Math.ceil(options.fileSize / options.chunkSize)} chunks, up + down + deletes`,
    };
    const sp = (s: Spread): string => `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
    for (const s of scenarios) {
      const c = costs[s];
      out(`| ${label[s]} | ${f(c.opsPerSec.median)} | ${sp(c.relayUs)} | ${f(c.gatekeeperUs.median)} | ${f(c.coreUs.median)} | ${sp(c.redisUs)} | ${f(c.requestsPerOp, 2)} | ${f(c.reqBodyBytes)} / ${f(c.resBodyBytes)} | ${c.errors} |`);
    }
    const fileMB = (options.fileSize * 2) / 1e6;
    out(
      `  per file byte (up + down, fixed commands included): relay ${f(costs.files.relayUs.median / fileMB / 1000, 1)} ms per MB moved (10^6 B, counted once up and once down) · Redis ${f(costs.files.redisUs.median / fileMB / 1000, 2)} ms per MB`,
    );
    out(`  gatekeeper response header bytes: ${hdr} (status line + headers of a small answer)`);
    out(
      `  Redis memory: ${f(mem.bytesPerCommand)} B per command (replay-cache record, NONCE_CACHE_SEC) · ${f(measured.memory.bytesPerMessage1)} B per message alone in its mailbox · ` +
        `${f(measured.memory.bytesPerMessage100)} B per message at 100 per mailbox · ${f(sess.bytesPerSession)} B per full handshake (session + handshake records + nonces) · ` +
        `${f(fm.bytesPerFileByte, 3)} B per stored file byte (${f(fm.storedBytes / 1048576)} MiB stored)`,
    );

    const mdl = printModel(measured, profile, out);
    out(`\nwall time ${f((performance.now() - t0) / 1000)} s`);
    if (json) {
      process.stdout.write(`${JSON.stringify({ meta: { date: new Date().toISOString(), cpus: availableParallelism(), node: process.version, rounds, durationSec, concurrency, fileConcurrency, relayEnv, options }, measured, memory: { messages: mem, session: sess, files: fm }, profile, model: mdl }, null, 2)}\n`);
    }
  } catch (e) {
    out(`capacity failed: ${e instanceof CheckFailure ? e.message : e instanceof Error ? e.message : String(e)}`);
    code = 2;
  } finally {
    transport.close();
    info.close();
    await relay.stop();
  }
  out(code === 0 ? '\ncapacity: OK, every response validated' : `\ncapacity: FAILED (exit ${code})`);
  return code;
}
