/**
 * The protocol side of the load tests, shared by the node load generator (`bench`) and the k6
 * scripts (bundled by esbuild): request bodies for every step of every scenario, and a validation of
 * every response (status, line count, line lengths, strict base64 sizes, decrypted contents and
 * counts). It is pure: no Node built-ins, no I/O; h2, proof of work, nonces and base64 are
 * @zax/protocol's, which is pure too. A runtime hands it a `Platform` (NaCl box, CSPRNG, UTF-8
 * decoding, clock) and sends the requests it builds, synchronously (k6) or not (node).
 *
 * A scenario is a list of steps per iteration. Each step builds one request from the virtual
 * device's state and checks the response, updating that state; a failed check throws CheckFailure,
 * and the driver then resets the device (new identity, new handshake) so one failure never cascades.
 */

import { b64, decodeStrict, h2, makeNonce as protocolNonce, solvePow, utf8Encode, type Crypto, type KeyPair } from '@zax/protocol';

/** What the shared code needs from its runtime. */
export interface Platform {
  readonly name: string;
  /** CSPRNG bytes. */
  random(n: number): Uint8Array;
  keyPair(): KeyPair;
  /** NaCl precomputed box key, or null for a low-order public key. */
  before(publicKey: Uint8Array, secretKey: Uint8Array): Uint8Array | null;
  boxAfter(message: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array;
  boxOpenAfter(box: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array | null;
  fromUtf8(b: Uint8Array): string;
  nowSec(): number;
}

/** A Platform on one of @zax/protocol's Crypto backends, with the runtime's UTF-8 decoder. */
export function cryptoPlatform(c: Crypto, fromUtf8: (b: Uint8Array) => string, name = c.name): Platform {
  return {
    name,
    random: (n) => c.randomBytes(n),
    keyPair: () => c.keyPair(),
    before: (pk, sk) => c.before(pk, sk),
    boxAfter: (m, n, k) => c.boxAfter(m, n, k),
    boxOpenAfter: (b, n, k) => c.boxOpenAfter(b, n, k),
    fromUtf8,
    nowSec: () => Math.floor(Date.now() / 1000),
  };
}

export const PATH = {
  start: '/start_session',
  verify: '/verify_session',
  prove: '/prove',
  command: '/command',
} as const;

export interface WireRequest {
  readonly path: string;
  readonly body: string;
}

export interface WireResponse {
  /** HTTP status; 0 when no response arrived (connection error, timeout). */
  readonly status: number;
  readonly body: string;
  /** `X-Error-Details`, when the runtime has it. */
  readonly detail?: string | undefined;
}

/** A response that did not validate. `fatal` asks the driver to stop the whole run. */
export class CheckFailure extends Error {
  readonly step: string;
  readonly status: number;
  readonly reason: string;
  readonly fatal: boolean;
  constructor(step: string, status: number, reason: string, fatal = false) {
    super(`${step}: ${reason}`);
    this.name = 'CheckFailure';
    this.step = step;
    this.status = status;
    this.reason = reason;
    this.fatal = fatal;
  }
}

export interface Step {
  readonly name: string;
  /** Counts as one operation of the scenario when it validates. */
  readonly op?: boolean;
  /** Payload bytes this step moves (file chunks), for MB/s. */
  readonly bytes?: number;
  request(d: Device): WireRequest;
  check(d: Device, r: WireResponse): void;
}

export type ScenarioName = 'start' | 'handshake' | 'messaging' | 'files' | 'poll' | 'poll-empty' | 'send' | 'exchange';

export interface Scenario {
  readonly name: ScenarioName;
  /** What one operation is: a handshake entry, a full session, a message command, a file round trip. */
  readonly opUnit: string;
  readonly needsSession: boolean;
  /** Every step name the scenario may use, in order (for per-step metrics declared up front, as k6 needs). */
  readonly stepNames: readonly string[];
  /** The steps of the device's next iteration (preceded by a handshake when it has no usable session). */
  plan(d: Device): Step[];
}

export interface ScenarioOptions {
  /** UTF-8 length of each message's `data` string (messaging, memory). */
  readonly payloadBytes: number;
  /** Declared `file_size` of each file, bytes (files). */
  readonly fileSize: number;
  /** Plaintext bytes per chunk; each uploaded chunk is this + 16 (a secretbox tag), like glow.ts. */
  readonly chunkSize: number;
  /** Re-handshake when the session is older than this (sessions live 1200 s). */
  readonly sessionMaxAgeSec: number;
}

export const DEFAULT_OPTIONS: ScenarioOptions = {
  payloadBytes: 1024,
  fileSize: 1024 * 1024,
  chunkSize: 256 * 1024,
  sessionMaxAgeSec: 1100,
};

interface PendingHandshake {
  clientToken: Uint8Array;
  handshakeId: string;
  relayToken?: Uint8Array;
  difficulty?: number;
  relaySessionPk?: Uint8Array;
  sessionKeys?: KeyPair;
  sessionKey?: Uint8Array;
}

interface PendingMessage {
  nonce: string;
  data: string;
  token: string;
  /** The recipient's hpk (base64). */
  to: string;
}

interface PendingFile {
  metaNonce: string;
  uploadId?: string;
  parts: number;
  /** Chunk nonces (base64) and chunk lengths (bytes), by part. */
  chunkNonces: string[];
  chunkBytes: number[];
}

/** One virtual device (a phone): an identity, its handshake/session, and per-iteration state. */
export interface Device {
  readonly p: Platform;
  readonly o: ScenarioOptions;
  comm: KeyPair;
  hpk: Uint8Array;
  hpkB64: string;
  hs: PendingHandshake | null;
  session: { keys: KeyPair; key: Uint8Array; at: number } | null;
  /** Live messages expected in the device's own mailbox. */
  live: number;
  msg: PendingMessage | null;
  file: PendingFile | null;
}

export function newDevice(p: Platform, o: ScenarioOptions = DEFAULT_OPTIONS): Device {
  const d = { p, o } as Device;
  resetDevice(d);
  return d;
}

/** A fresh identity (so a half-done iteration leaves nothing behind in its mailbox), no session. */
export function resetDevice(d: Device): void {
  d.comm = d.p.keyPair();
  d.hpk = h2(d.comm.publicKey);
  d.hpkB64 = b64(d.hpk);
  d.hs = null;
  d.session = null;
  d.live = 0;
  d.msg = null;
  d.file = null;
}

// ---------------------------------------------------------------------------------------------
// Small protocol helpers

/** A timestamped nonce (docs/PROTOCOL.md §3.2) at the platform's clock, from its CSPRNG. */
export function makeNonce(p: Platform): Uint8Array {
  return protocolNonce(p.nowSec(), (n) => p.random(n));
}

/** The storage token of a message: h2(ASCII(b64(hpk_to)) ‖ ASCII(b64(nonce))) (docs/PROTOCOL.md §3.1). */
function storageToken(toB64: string, nonceB64: string): string {
  return b64(h2(toB64, nonceB64));
}

function fail(step: string, r: WireResponse, reason: string, fatal = false): CheckFailure {
  return new CheckFailure(step, r.status, reason, fatal);
}

function statusFailure(step: string, r: WireResponse): CheckFailure {
  const why = r.status === 0 ? `no response${r.detail ? ` (${r.detail})` : ''}` : `HTTP ${r.status}${r.detail ? ` "${r.detail}"` : ''}`;
  return fail(step, r, why);
}

/** A 200 body split into exactly `n` CRLF-separated, non-empty lines without stray CR/LF. */
function responseLines(step: string, r: WireResponse, n: number): string[] {
  if (r.status !== 200) throw statusFailure(step, r);
  const lines = r.body.split('\r\n');
  if (lines.length !== n) throw fail(step, r, `expected ${n} response lines, got ${lines.length}`);
  for (const l of lines) {
    if (l.length === 0) throw fail(step, r, 'empty response line (or trailing CRLF)');
    if (l.indexOf('\n') >= 0 || l.indexOf('\r') >= 0) throw fail(step, r, 'bare CR or LF in response');
  }
  return lines;
}

/** Strict base64 of exactly `bytes` bytes, with the exact length. */
function fixed(d: Device, step: string, r: WireResponse, s: unknown, bytes: number, what: string): Uint8Array {
  const b = typeof s === 'string' && s.length === 4 * Math.ceil(bytes / 3) ? decodeStrict(s) : null;
  if (b === null || b.length !== bytes) throw fail(step, r, `${what} is not strict base64 of ${bytes} bytes`);
  return b;
}

function decimal(step: string, r: WireResponse, s: string, what: string): number {
  if (!/^(0|-?[1-9][0-9]*)$/.test(s)) throw fail(step, r, `${what} is not a decimal integer: ${s.slice(0, 20)}`);
  return Number(s);
}

function expectEqual(step: string, r: WireResponse, got: unknown, want: unknown, what: string): void {
  if (got !== want) throw fail(step, r, `${what}: expected ${String(want)}, got ${String(got).slice(0, 80)}`);
}

function needSession(d: Device, step: string): { keys: KeyPair; key: Uint8Array; at: number } {
  if (d.session === null) throw new CheckFailure(step, 0, 'no session (driver bug)');
  return d.session;
}

/** A `/command` body for a JSON command, boxed under the device's session. */
export function commandRequest(d: Device, step: string, cmd: object, line4?: string): WireRequest {
  const s = needSession(d, step);
  const nonce = makeNonce(d.p);
  const box = d.p.boxAfter(utf8Encode(JSON.stringify(cmd)), nonce, s.key);
  const body = `${d.hpkB64}\r\n${b64(nonce)}\r\n${b64(box)}${line4 === undefined ? '' : `\r\n${line4}`}`;
  return { path: PATH.command, body };
}

/** Opens line 2 of an encrypted response (line 1 its nonce) and parses the JSON. */
function openLines(d: Device, step: string, r: WireResponse, lines: string[]): unknown {
  const s = needSession(d, step);
  const nonce = fixed(d, step, r, lines[0], 24, 'response nonce');
  const box = decodeStrict(lines[1]!);
  if (box === null || box.length < 16) throw fail(step, r, 'response box is not strict base64');
  const plain = d.p.boxOpenAfter(box, nonce, s.key);
  if (plain === null) throw fail(step, r, 'response box does not open under the session key');
  const text = d.p.fromUtf8(plain);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw fail(step, r, `response plaintext is not JSON: ${text.slice(0, 40)}`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function exactKeys(step: string, r: WireResponse, v: unknown, keys: readonly string[], what: string): Record<string, unknown> {
  if (!isObject(v)) throw fail(step, r, `${what} is not a JSON object`);
  const got = Object.keys(v).sort().join(',');
  const want = [...keys].sort().join(',');
  if (got !== want) throw fail(step, r, `${what} has keys {${got}}, expected {${want}}`);
  return v;
}

/** Random base64 text of exactly `n` characters (what a client's `ctext` looks like). */
export function randomText(p: Platform, n: number): string {
  return b64(p.random(Math.ceil((n * 3) / 4) + 3)).slice(0, n);
}

// ---------------------------------------------------------------------------------------------
// Handshake steps (docs/PROTOCOL.md §4.1–4.3)

export const startStep = (op = false): Step => ({
  name: 'start_session',
  op,
  request(d) {
    const clientToken = d.p.random(32);
    d.hs = { clientToken, handshakeId: b64(h2(clientToken)) };
    return { path: PATH.start, body: b64(clientToken) };
  },
  check(d, r) {
    const lines = responseLines(this.name, r, 2);
    const relayToken = fixed(d, this.name, r, lines[0], 32, 'relay token');
    const difficulty = decimal(this.name, r, lines[1]!, 'difficulty');
    if (difficulty < 0 || difficulty > 255) throw fail(this.name, r, `difficulty ${difficulty} outside 0..255`);
    d.hs!.relayToken = relayToken;
    d.hs!.difficulty = difficulty;
  },
});

export const verifyStep: Step = {
  name: 'verify_session',
  request(d) {
    const hs = d.hs!;
    const answer = solvePow(hs.clientToken, hs.relayToken!, hs.difficulty!, (n) => d.p.random(n));
    return { path: PATH.verify, body: `${hs.handshakeId}\r\n${b64(answer)}` };
  },
  check(d, r) {
    const lines = responseLines(this.name, r, 1);
    d.hs!.relaySessionPk = fixed(d, this.name, r, lines[0], 32, 'relay session key');
  },
};

export const proveStep = (op = false): Step => ({
  name: 'prove',
  op,
  request(d) {
    const hs = d.hs!;
    const p = d.p;
    const rpk = hs.relaySessionPk!;
    const keys = p.keyPair();
    const sign = h2(keys.publicKey, hs.relayToken!, hs.clientToken);
    const innerKey = p.before(rpk, d.comm.secretKey);
    const sessionKey = p.before(rpk, keys.secretKey);
    if (innerKey === null || sessionKey === null) throw new CheckFailure(this.name, 200, 'relay session key is a low-order point');
    const innerNonce = makeNonce(p);
    const inner = p.boxAfter(sign, innerNonce, innerKey);
    const json = `{"pub_key":"${b64(d.comm.publicKey)}","nonce":"${b64(innerNonce)}","ctext":"${b64(inner)}"}`;
    const outerNonce = makeNonce(p);
    const outer = p.boxAfter(utf8Encode(json), outerNonce, sessionKey);
    hs.sessionKeys = keys;
    hs.sessionKey = sessionKey;
    return { path: PATH.prove, body: `${hs.handshakeId}\r\n${b64(keys.publicKey)}\r\n${b64(outerNonce)}\r\n${b64(outer)}` };
  },
  check(d, r) {
    const lines = responseLines(this.name, r, 1);
    const count = decimal(this.name, r, lines[0]!, 'message count');
    expectEqual(this.name, r, count, d.live, 'live message count');
    const hs = d.hs!;
    d.session = { keys: hs.sessionKeys!, key: hs.sessionKey!, at: d.p.nowSec() };
    d.hs = null;
  },
});

/** The handshake a device needs before its next command, or nothing while its session is fresh. */
export function connectSteps(d: Device): Step[] {
  const s = d.session;
  if (s !== null && d.p.nowSec() - s.at < d.o.sessionMaxAgeSec) return [];
  d.session = null;
  return [startStep(), verifyStep, proveStep()];
}

// ---------------------------------------------------------------------------------------------
// Message commands (docs/PROTOCOL.md §5.1–5.5)

/**
 * `upload` of a `payloadBytes`-long `data` string, to the device itself or to `to` (a fixed hpk, or
 * a function giving each upload's recipient).
 */
export function uploadStep(to?: string | ((d: Device) => string), op = true): Step {
  return {
    name: 'upload',
    op,
    request(d) {
      const p = d.p;
      const target = to === undefined ? d.hpkB64 : typeof to === 'string' ? to : to(d);
      const nonce = b64(p.random(24));
      const data = randomText(p, d.o.payloadBytes);
      d.msg = { nonce, data, token: storageToken(target, nonce), to: target };
      return commandRequest(d, this.name, { cmd: 'upload', to: target, payload: { nonce, ctext: data } });
    },
    check(d, r) {
      const lines = responseLines(this.name, r, 1);
      fixed(d, this.name, r, lines[0], 32, 'storage token');
      expectEqual(this.name, r, lines[0], d.msg!.token, 'storage token');
      if (d.msg!.to === d.hpkB64) d.live += 1;
    },
  };
}

export function countStep(op = true): Step {
  return {
    name: 'count',
    op,
    request(d) {
      return commandRequest(d, this.name, { cmd: 'count' });
    },
    check(d, r) {
      const v = openLines(d, this.name, r, responseLines(this.name, r, 2));
      expectEqual(this.name, r, v, d.live, 'decrypted count');
    },
  };
}

const DOWNLOAD_KEYS = ['data', 'time', 'from', 'nonce', 'kind'] as const;

/** The items of a `download` answer, checked to be as many as the device has live messages. */
function downloadedItems(d: Parameters<Step['check']>[0], name: string, r: Parameters<Step['check']>[1]): unknown[] {
  const v = openLines(d, name, r, responseLines(name, r, 2));
  if (!Array.isArray(v)) throw fail(name, r, 'download is not a JSON array');
  expectEqual(name, r, v.length, d.live, 'downloaded messages');
  return v;
}

export const downloadStep: Step = {
  name: 'download',
  op: true,
  request(d) {
    return commandRequest(d, this.name, { cmd: 'download' });
  },
  check(d, r) {
    const v = downloadedItems(d, this.name, r);
    const m = d.msg!;
    const item = v.find((x: unknown) => isObject(x) && x.nonce === m.nonce) as unknown;
    if (item === undefined) throw fail(this.name, r, 'uploaded message missing from download');
    const o = exactKeys(this.name, r, item, DOWNLOAD_KEYS, 'download item');
    expectEqual(this.name, r, o.data, m.data, 'data');
    expectEqual(this.name, r, o.from, d.hpkB64, 'from');
    expectEqual(this.name, r, o.kind, 'message', 'kind');
    if (typeof o.time !== 'number' || Math.abs(o.time - d.p.nowSec()) > 300) throw fail(this.name, r, `time ${String(o.time)} is not a recent Unix time`);
  },
};

/** `download` of a mailbox the device expects empty (a poll that finds nothing). */
export const emptyDownloadStep: Step = {
  name: 'download',
  op: true,
  request(d) {
    return commandRequest(d, this.name, { cmd: 'download' });
  },
  check(d, r) {
    downloadedItems(d, this.name, r);
  },
};

/** `delete` of the given message nonce (default: the one this iteration uploaded). */
export function deleteStep(nonce?: (d: Device) => string, op = true): Step {
  return {
    name: 'delete',
    op,
    request(d) {
      return commandRequest(d, this.name, { cmd: 'delete', payload: [nonce ? nonce(d) : d.msg!.nonce] });
    },
    check(d, r) {
      const lines = responseLines(this.name, r, 1);
      d.live -= 1;
      expectEqual(this.name, r, decimal(this.name, r, lines[0]!, 'count'), d.live, 'count after delete');
    },
  };
}

// ---------------------------------------------------------------------------------------------
// File commands (docs/PROTOCOL.md §5.7–5.11)

const chunkCache: Record<number, string> = {};

/** The uploaded line 4 for a chunk of `n` bytes: random bytes stand in for a secretbox ciphertext. */
export function chunkText(p: Platform, n: number): string {
  let s = chunkCache[n];
  if (s === undefined) {
    s = b64(p.random(n));
    chunkCache[n] = s;
  }
  return s;
}

/** 405 on a file command means the relay has no file store (disabled, or not built yet). */
function fileStatusFailure(step: string, r: WireResponse): CheckFailure {
  if (r.status === 405) {
    return fail(step, r, `relay answered 405 to ${step}: file commands are not available on this relay (FILE_STORE_ENABLED=false, or not implemented)`, true);
  }
  return statusFailure(step, r);
}

function fileLines(step: string, r: WireResponse, n: number): string[] {
  if (r.status !== 200) throw fileStatusFailure(step, r);
  return responseLines(step, r, n);
}

export function fileParts(o: ScenarioOptions): number[] {
  const sizes: number[] = [];
  for (let left = o.fileSize; left > 0; left -= o.chunkSize) sizes.push(Math.min(left, o.chunkSize) + 16);
  return sizes;
}

export const startFileUploadStep: Step = {
  name: 'startFileUpload',
  request(d) {
    const p = d.p;
    const sizes = fileParts(d.o);
    d.file = {
      metaNonce: b64(p.random(24)),
      parts: sizes.length,
      chunkNonces: sizes.map(() => b64(p.random(24))),
      chunkBytes: sizes,
    };
    return commandRequest(d, this.name, {
      cmd: 'startFileUpload',
      to: d.hpkB64,
      file_size: d.o.fileSize,
      metadata: { nonce: d.file.metaNonce, ctext: randomText(p, 200) },
    });
  },
  check(d, r) {
    const v = openLines(d, this.name, r, fileLines(this.name, r, 2));
    const o = exactKeys(this.name, r, v, ['uploadID', 'max_chunk_size', 'storage_token'], 'startFileUpload response');
    fixed(d, this.name, r, o.uploadID, 32, 'uploadID');
    const f = d.file!;
    expectEqual(this.name, r, o.storage_token, storageToken(d.hpkB64, f.metaNonce), 'storage_token');
    const max = o.max_chunk_size;
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 1) throw fail(this.name, r, 'max_chunk_size is not a positive integer');
    const biggest = Math.max(...f.chunkBytes);
    if (biggest > max) throw fail(this.name, r, `chunk of ${biggest} bytes exceeds the relay's max_chunk_size ${max}: use a smaller chunk size`, true);
    f.uploadId = o.uploadID as string;
    d.live += 1; // the file message lands in the recipient's (our own) mailbox
  },
};

export function uploadChunkStep(part: number, bytes: number): Step {
  return {
    name: 'uploadFileChunk',
    bytes,
    request(d) {
      const f = d.file!;
      const cmd = { cmd: 'uploadFileChunk', uploadID: f.uploadId, part, nonce: f.chunkNonces[part], last_chunk: part === f.parts - 1 };
      return commandRequest(d, this.name, cmd, chunkText(d.p, f.chunkBytes[part]!));
    },
    check(d, r) {
      const v = exactKeys(this.name, r, openLines(d, this.name, r, fileLines(this.name, r, 2)), ['status'], 'uploadFileChunk response');
      expectEqual(this.name, r, v.status, 'OK', 'status');
    },
  };
}

export const fileStatusStep: Step = {
  name: 'fileStatus',
  request(d) {
    return commandRequest(d, this.name, { cmd: 'fileStatus', uploadID: d.file!.uploadId });
  },
  check(d, r) {
    const f = d.file!;
    const o = exactKeys(this.name, r, openLines(d, this.name, r, fileLines(this.name, r, 2)), ['status', 'file_size', 'bytes_stored', 'total_chunks'], 'fileStatus');
    expectEqual(this.name, r, o.status, 'COMPLETE', 'status');
    expectEqual(this.name, r, o.file_size, d.o.fileSize, 'file_size');
    expectEqual(this.name, r, o.total_chunks, f.parts, 'total_chunks');
    expectEqual(this.name, r, o.bytes_stored, f.chunkBytes.reduce((a, b) => a + b, 0), 'bytes_stored');
  },
};

function downloadChunkStep(part: number, bytes: number): Step {
  return {
    name: 'downloadFileChunk',
    bytes,
    request(d) {
      return commandRequest(d, this.name, { cmd: 'downloadFileChunk', uploadID: d.file!.uploadId, part });
    },
    check(d, r) {
      const f = d.file!;
      const lines = fileLines(this.name, r, 3);
      const o = exactKeys(this.name, r, openLines(d, this.name, r, lines), ['nonce'], 'downloadFileChunk line 2');
      expectEqual(this.name, r, o.nonce, f.chunkNonces[part], 'chunk nonce');
      if (lines[2] !== chunkText(d.p, f.chunkBytes[part]!)) throw fail(this.name, r, `chunk ${part} differs from the uploaded bytes`);
    },
  };
}

const deleteFileStep: Step = {
  name: 'deleteFile',
  op: true,
  request(d) {
    return commandRequest(d, this.name, { cmd: 'deleteFile', uploadID: d.file!.uploadId });
  },
  check(d, r) {
    const o = exactKeys(this.name, r, openLines(d, this.name, r, fileLines(this.name, r, 2)), ['status'], 'deleteFile response');
    expectEqual(this.name, r, o.status, 'OK', 'status');
  },
};

// ---------------------------------------------------------------------------------------------
// Scenarios

const HANDSHAKE_STEPS = ['start_session', 'verify_session', 'prove'] as const;

/** A fresh random recipient (a mailbox nobody reads): what `send` uploads to. */
const randomRecipient = (d: Device): string => b64(d.p.random(32));

export const SCENARIOS: Record<ScenarioName, Scenario> = {
  start: {
    name: 'start',
    opUnit: 'start_session',
    needsSession: false,
    stepNames: ['start_session'],
    plan: () => [startStep(true)],
  },
  handshake: {
    name: 'handshake',
    opUnit: 'session',
    needsSession: false,
    stepNames: HANDSHAKE_STEPS,
    plan: () => [startStep(), verifyStep, proveStep(true)],
  },
  messaging: {
    name: 'messaging',
    opUnit: 'command',
    needsSession: true,
    stepNames: [...HANDSHAKE_STEPS, 'upload', 'count', 'download', 'delete'],
    plan: (d) => [...connectSteps(d), uploadStep(), countStep(), downloadStep, deleteStep()],
  },
  files: {
    name: 'files',
    opUnit: 'file',
    needsSession: true,
    stepNames: [...HANDSHAKE_STEPS, 'startFileUpload', 'uploadFileChunk', 'fileStatus', 'downloadFileChunk', 'deleteFile', 'delete'],
    plan(d) {
      const sizes = fileParts(d.o);
      return [
        ...connectSteps(d),
        startFileUploadStep,
        ...sizes.map((b, i) => uploadChunkStep(i, b)),
        fileStatusStep,
        ...sizes.map((b, i) => downloadChunkStep(i, b)),
        deleteFileStep,
        deleteStep((dev) => dev.file!.metaNonce, false),
      ];
    },
  },
  // Single-cost scenarios, for per-operation figures (docs/CAPACITY.md): each measures one kind of
  // request on an established session.
  poll: {
    name: 'poll',
    opUnit: 'count',
    needsSession: true,
    stepNames: [...HANDSHAKE_STEPS, 'count'],
    plan: (d: Device) => [...connectSteps(d), countStep()],
  },
  'poll-empty': {
    name: 'poll-empty',
    opUnit: 'download',
    needsSession: true,
    stepNames: [...HANDSHAKE_STEPS, 'download'],
    plan: (d: Device) => [...connectSteps(d), emptyDownloadStep],
  },
  send: {
    name: 'send',
    opUnit: 'upload',
    needsSession: true,
    stepNames: [...HANDSHAKE_STEPS, 'upload'],
    plan: (d: Device) => [...connectSteps(d), uploadStep(randomRecipient)],
  },
  exchange: {
    name: 'exchange',
    opUnit: 'message',
    needsSession: true,
    stepNames: [...HANDSHAKE_STEPS, 'upload', 'download', 'delete'],
    plan: (d: Device) => [...connectSteps(d), uploadStep(undefined, false), { ...downloadStep, op: false }, deleteStep()],
  },
};

export const SCENARIO_NAMES = Object.keys(SCENARIOS) as ScenarioName[];
