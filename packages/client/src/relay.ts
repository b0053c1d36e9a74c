/**
 * A session with one relay for one identity (docs/PROTOCOL.md §4): the handshake `/start_session` →
 * `/verify_session` → `/prove`, then encrypted `/command`s under the precomputed session key.
 * The session renews itself: before the relay would expire it, and once after a 401 (the relay lost
 * or replaced it), like glow.ts does. It holds no timers, so a process using it can exit at any time.
 * Large commands (file chunks) can go as bytes: line 4 as base64 ASCII in a Uint8Array, the request
 * body built as bytes (around line 4 in the caller's buffer, given room) and the answer read as
 * bytes, so no string of the size of a chunk is made. With the global fetch on Node a byte body is
 * sent as a one-chunk stream with its Content-Length, which fetch does not copy.
 */
import {
  b64,
  decodeFixed,
  decodeStrict,
  DEFAULTS,
  h2,
  joinLines,
  KEY_BYTES,
  makeNonce,
  MAX_DIFFICULTY,
  NONCE_BYTES,
  nowSec,
  solvePow,
  splitLines,
  systemClock,
  TOKEN_BYTES,
  type Clock,
  type Crypto,
  type KeyPair,
} from '@zax/protocol';
import { bestCrypto } from './crypto-backend.js';
import { diagnoseNetworkFailure, plainRequestToTlsPort } from './diagnose.js';
import { RelayHttpError, RelayProtocolError, RelayTimeoutError, UsageError, ZaxClientError } from './errors.js';
import type { Identity } from './identity.js';

/** The subset of `fetch` the session uses; pass your own to route, record or fake requests. */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

export interface RelaySessionOptions {
  /** Base URL of the relay, e.g. `https://zax.example.com` or `http://127.0.0.1:8080/`. */
  url: string | URL;
  identity: Identity;
  /** @default sodium-native when it loads, else tweetnacl (`./crypto-backend.ts`) */
  crypto?: Crypto;
  /** @default globalThis.fetch */
  fetch?: FetchLike;
  /** Time for nonces and for session/token ages. @default systemClock */
  clock?: Clock;
  /** Bytes for client tokens, nonce tails and the proof-of-work start. @default crypto.randomBytes */
  random?: (n: number) => Uint8Array;
  /** Per-request timeout (glow.ts uses 5 s). @default 5000 */
  timeoutMs?: number;
  /** The relay's `sessionTtlSec`. @default 1200 */
  sessionTtlSec?: number;
  /** The relay's `tokenTtlSec` (handshake lifetime). @default 300 */
  tokenTtlSec?: number;
  /**
   * Renew this long before the relay would expire a session or a relay token (glow.ts: 30 s, so
   * 19.5 min and 4.5 min with the defaults). @default 30
   */
  expiryMarginSec?: number;
  /** Refuse a relay that asks for more proof of work than this (each bit doubles the work). @default 24 */
  maxDifficulty?: number;
}

/** A command's JSON: `cmd` plus its fields (docs/PROTOCOL.md §5). */
export interface CommandJson {
  cmd: string;
  [field: string]: unknown;
}

/** The relay's answer to one `/command` sent with `commandBytes`: the body is never made a string. */
export interface CommandBytesResponse {
  /** The whole answer (a view on `into` when it fitted there). */
  readonly body: Uint8Array;
  /** The response lines (CRLF-split), as views on `body`. */
  readonly lines: readonly Uint8Array[];
  /** Opens lines 1–2 like `CommandResponse.open`. */
  open(): unknown;
}

/**
 * Line 4 (base64 ASCII) at the end of a buffer with free room before it: `buffer[start..]` is line 4,
 * `buffer[..start)` is free. `commandBytes` writes lines 1–3 and their CRLFs right before `start`
 * and sends the body from there, so line 4 is not copied (it is when the room is too small; about
 * 300 bytes are needed for a file chunk command). The caller keeps the buffer until the command
 * settles.
 */
export interface Line4WithRoom {
  readonly buffer: Uint8Array;
  readonly start: number;
}

/** The relay's answer to one `/command`. */
export interface CommandResponse {
  /** The response lines (CRLF-split). */
  readonly lines: readonly string[];
  /**
   * Opens an encrypted answer (line 1 nonce, line 2 box) with the key of the session that sent
   * the command, and parses its JSON. Throws RelayProtocolError if it does not open.
   */
  open(): unknown;
}

interface LiveSession {
  /** crypto_box precomputed key for (r_sess_pk, a_sess_sk). */
  readonly key: Uint8Array;
  readonly provedAtMs: number;
  readonly messageCount: number;
}

/** Thrown inside the handshake when the relay token would expire before `/prove`; it restarts. */
class TokenAgedOut extends ZaxClientError {}

const HEADERS = { 'content-type': 'text/plain', accept: 'text/plain' } as const;
const utf8Strict = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();
/** Decodes like `Response.text()` (U+FFFD for bad UTF-8), for the short lines of a byte answer. */
const utf8Lenient = new TextDecoder();
const CR = 0x0d;
const LF = 0x0a;

// ---------- pure constructions (docs/PROTOCOL.md §4.3, §4.4) ----------

export interface ProveInput {
  crypto: Crypto;
  identity: Pick<Identity, 'publicKey' | 'secretKey'>;
  clientToken: Uint8Array;
  relayToken: Uint8Array;
  relaySessionPk: Uint8Array;
  sessionKeyPair: KeyPair;
  nonceInner: Uint8Array;
  nonceOuter: Uint8Array;
}

/** The four `/prove` lines (44, 44, 32, 256 chars), exactly as docs/PROTOCOL.md §4.3 builds them. */
export function buildProveLines(p: ProveInput): string[] {
  const sessionSign = h2(p.sessionKeyPair.publicKey, p.relayToken, p.clientToken);
  const inner = p.crypto.box(sessionSign, p.nonceInner, p.relaySessionPk, p.identity.secretKey);
  // Key order as glow.ts writes it; the relay accepts any order, the vector pins this one.
  const innerJson = JSON.stringify({ pub_key: b64(p.identity.publicKey), nonce: b64(p.nonceInner), ctext: b64(inner) });
  const outer = p.crypto.box(new TextEncoder().encode(innerJson), p.nonceOuter, p.relaySessionPk, p.sessionKeyPair.secretKey);
  return [b64(h2(p.clientToken)), b64(p.sessionKeyPair.publicKey), b64(p.nonceOuter), b64(outer)];
}

/** The 3 or 4 `/command` lines: hpk, nonce, box(JSON) under the precomputed key, optional line 4. */
export function buildCommandLines(crypto: Crypto, hpk: Uint8Array, nonce: Uint8Array, sessionKey: Uint8Array, json: CommandJson, line4?: string): string[] {
  const box = crypto.boxAfter(new TextEncoder().encode(JSON.stringify(json)), nonce, sessionKey);
  const lines = [b64(hpk), b64(nonce), b64(box)];
  if (line4 !== undefined) lines.push(line4);
  return lines;
}

/**
 * The `/command` body as bytes: lines 1–3 as `buildCommandLines` makes them, CRLF, then `line4`
 * (base64 ASCII). Given as `Line4WithRoom` with room enough, the body is built around line 4 in
 * its buffer (a view on it is returned); else line 4 is copied into a new body.
 */
export function buildCommandBody(crypto: Crypto, hpk: Uint8Array, nonce: Uint8Array, sessionKey: Uint8Array, json: CommandJson, line4: Uint8Array | Line4WithRoom): Uint8Array {
  // All ASCII: as many bytes as characters.
  const head = joinLines(buildCommandLines(crypto, hpk, nonce, sessionKey, json)) + '\r\n';
  if (!(line4 instanceof Uint8Array)) {
    if (head.length <= line4.start) {
      const at = line4.start - head.length;
      utf8Encoder.encodeInto(head, line4.buffer.subarray(at, line4.start));
      return line4.buffer.subarray(at);
    }
    line4 = line4.buffer.subarray(line4.start);
  }
  const body = new Uint8Array(head.length + line4.length);
  utf8Encoder.encodeInto(head, body);
  body.set(line4, head.length);
  return body;
}

/** `splitLines` on bytes: the lines of a body as views on it (one trailing CRLF or LF dropped). */
export function splitLineBytes(body: Uint8Array): Uint8Array[] {
  let end = body.length;
  if (end > 0 && body[end - 1] === LF) end -= end > 1 && body[end - 2] === CR ? 2 : 1;
  if (end === 0) return [];
  const lines: Uint8Array[] = [];
  let start = 0;
  for (let i = body.indexOf(LF, start); i !== -1 && i < end; i = body.indexOf(LF, start)) {
    lines.push(body.subarray(start, i > start && body[i - 1] === CR ? i - 1 : i));
    start = i + 1;
  }
  lines.push(body.subarray(start, end));
  return lines;
}

/** Opens an encrypted response (nonce line, box line) and parses the JSON inside. */
export function openResponse(crypto: Crypto, sessionKey: Uint8Array, lines: readonly string[], what = 'command'): unknown {
  const nonce = lines[0] === undefined ? null : decodeFixed(lines[0], NONCE_BYTES);
  const box = lines[1] === undefined ? null : decodeStrict(lines[1]);
  if (nonce === null || box === null) throw new RelayProtocolError(`${what}: response is not a nonce line and a base64 box line`);
  const plain = crypto.boxOpenAfter(box, nonce, sessionKey);
  if (plain === null) throw new RelayProtocolError(`${what}: response box does not open under the session key`);
  try {
    return JSON.parse(utf8Strict.decode(plain)) as unknown;
  } catch {
    throw new RelayProtocolError(`${what}: response box does not hold JSON`);
  }
}

/** A decimal line as the relay writes it (docs/PROTOCOL.md §2.4). */
export function parseDecimalLine(line: string | undefined, what: string): number {
  if (line === undefined || !/^-?(0|[1-9][0-9]*)$/.test(line)) throw new RelayProtocolError(`${what}: expected a decimal integer`);
  const n = Number(line);
  if (!Number.isSafeInteger(n)) throw new RelayProtocolError(`${what}: integer out of range`);
  return n;
}

export function expectLines<T extends readonly unknown[]>(lines: T, count: number, what: string): T {
  if (lines.length !== count) throw new RelayProtocolError(`${what}: expected ${count} response line${count === 1 ? '' : 's'}, got ${lines.length}`);
  return lines;
}

/** `Retry-After` as seconds: delta-seconds, or an HTTP date relative to `nowMs`. */
export function parseRetryAfter(value: string | null, nowMs: number = Date.now()): number | null {
  if (value === null) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - nowMs) / 1000));
}

/** Validates a relay base URL and drops trailing slashes, so paths can be appended with one `/`. */
export function normalizeBaseUrl(url: string | URL): string {
  let u: URL;
  try {
    u = new URL(String(url));
  } catch {
    throw new UsageError(`not a URL: ${String(url)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`relay URL must be http or https: ${String(url)}`);
  if (u.search !== '' || u.hash !== '') throw new UsageError(`relay URL must not have a query or fragment: ${String(url)}`);
  return u.href.replace(/\/+$/, '');
}

// ---------- the session ----------

export class RelaySession {
  /** Normalised base URL (no trailing slash). */
  readonly url: string;
  readonly identity: Identity;
  private readonly crypto: Crypto;
  private readonly fetchFn: FetchLike;
  /** Byte bodies go as streams (the global fetch on Node: no copy of the body). */
  private readonly streamBodies: boolean;
  private readonly clock: Clock;
  private readonly random: (n: number) => Uint8Array;
  private readonly timeoutMs: number;
  private readonly sessionLifeMs: number;
  private readonly tokenLifeMs: number;
  private readonly maxDifficulty: number;

  private session: LiveSession | null = null;
  private connecting: Promise<LiveSession> | null = null;
  private handshakeCount = 0;
  private askedDifficulty: number | null = null;

  constructor(options: RelaySessionOptions) {
    this.url = normalizeBaseUrl(options.url);
    this.identity = options.identity;
    this.crypto = options.crypto ?? bestCrypto();
    // Bound: a browser's fetch called as a method of another object throws "Illegal invocation".
    const fetchFn = options.fetch ?? (globalThis.fetch?.bind(globalThis) as FetchLike | undefined);
    if (fetchFn === undefined) throw new UsageError('no fetch available: pass options.fetch');
    this.fetchFn = fetchFn;
    this.streamBodies = options.fetch === undefined && STREAMS_REQUEST_BODIES;
    this.clock = options.clock ?? systemClock;
    const crypto = this.crypto;
    this.random = options.random ?? ((n) => crypto.randomBytes(n));
    this.timeoutMs = options.timeoutMs ?? 5000;
    const marginSec = options.expiryMarginSec ?? 30;
    this.sessionLifeMs = ((options.sessionTtlSec ?? DEFAULTS.sessionTtlSec) - marginSec) * 1000;
    this.tokenLifeMs = ((options.tokenTtlSec ?? DEFAULTS.tokenTtlSec) - marginSec) * 1000;
    this.maxDifficulty = Math.min(options.maxDifficulty ?? 24, MAX_DIFFICULTY);
    if (!(this.timeoutMs > 0) || !(this.sessionLifeMs > 0) || !(this.tokenLifeMs > 0)) {
      throw new UsageError('timeoutMs must be positive and expiryMarginSec below both TTLs');
    }
  }

  /** b64(hpk): this identity's mailbox address. */
  get hpk(): string {
    return b64(this.identity.hpk);
  }

  /** True while a proven session exists that is not yet due for renewal. */
  get isConnected(): boolean {
    return this.session !== null && this.isFresh(this.session);
  }

  /** How many handshakes this session has completed (renewals included). */
  get handshakes(): number {
    return this.handshakeCount;
  }

  /**
   * The proof-of-work difficulty the relay asked for in the last `/start_session` (also when it was
   * above `maxDifficulty` and refused), or null before any.
   */
  get lastDifficulty(): number | null {
    return this.askedDifficulty;
  }

  /**
   * Makes sure a proven session exists (handshaking if needed) and returns the mailbox's message
   * count reported by the `/prove` that created it.
   */
  async connect(): Promise<number> {
    return (await this.ensureSession()).messageCount;
  }

  /** Forgets the session locally; the next command handshakes again. The relay lets it expire. */
  disconnect(): void {
    this.session = null;
  }

  /**
   * Sends one command. On a 401 the session is dropped, a new handshake runs, and the command is
   * sent once more with a fresh nonce; any other failure is thrown as is. `line4` may be given as
   * base64 ASCII bytes: the body is then sent as bytes.
   */
  async command(json: CommandJson, line4?: string | Uint8Array): Promise<CommandResponse> {
    return this.withSession((s) => this.sendCommand(s, json, line4));
  }

  /**
   * `command` for large commands and answers (file chunks): line 4 as base64 ASCII bytes, the
   * answer read as bytes and split into byte lines, so no string of its size is made. The answer
   * is read into `into` when it fits (the caller reuses it once done with the answer), else into
   * a new buffer. Line 4 given with room before it (`Line4WithRoom`) is sent without a copy.
   */
  async commandBytes(json: CommandJson, line4?: Uint8Array | Line4WithRoom, into?: Uint8Array): Promise<CommandBytesResponse> {
    return this.withSession(async (session) => {
      const body = await this.exchange('command', this.commandBody(session, json, line4), (res) => readBytes(res, into));
      const lines = splitLineBytes(body);
      const crypto = this.crypto;
      return { body, lines, open: () => openResponse(crypto, session.key, lines.slice(0, 2).map((l) => utf8Lenient.decode(l)), json.cmd) };
    });
  }

  /** Runs `send` in a session; after a 401 once more in a new one. */
  private async withSession<T>(send: (s: LiveSession) => Promise<T>): Promise<T> {
    const first = await this.ensureSession();
    try {
      return await send(first);
    } catch (e) {
      if (!(e instanceof RelayHttpError) || e.status !== 401) throw e;
      // Only drop the session that failed: a concurrent command may already have renewed it.
      if (this.session === first) this.session = null;
      const second = await this.ensureSession();
      return await send(second);
    }
  }

  private isFresh(s: LiveSession): boolean {
    return this.clock.nowMs() - s.provedAtMs < this.sessionLifeMs;
  }

  private ensureSession(): Promise<LiveSession> {
    const s = this.session;
    if (s !== null && this.isFresh(s)) return Promise.resolve(s);
    this.session = null;
    // Concurrent callers share one handshake.
    this.connecting ??= this.handshake()
      .then((fresh) => {
        this.session = fresh;
        return fresh;
      })
      .finally(() => {
        this.connecting = null;
      });
    return this.connecting;
  }

  /** A fresh nonce each time: a resent command is a new request. */
  private commandBody(session: LiveSession, json: CommandJson, line4: string | Uint8Array | Line4WithRoom | undefined): string | Uint8Array {
    const nonce = makeNonce(nowSec(this.clock), this.random);
    if (line4 !== undefined && typeof line4 !== 'string') return buildCommandBody(this.crypto, this.identity.hpk, nonce, session.key, json, line4);
    return joinLines(buildCommandLines(this.crypto, this.identity.hpk, nonce, session.key, json, line4));
  }

  private async sendCommand(session: LiveSession, json: CommandJson, line4: string | Uint8Array | undefined): Promise<CommandResponse> {
    const lines = splitLines(await this.exchange('command', this.commandBody(session, json, line4), readText));
    const crypto = this.crypto;
    return { lines, open: () => openResponse(crypto, session.key, lines, json.cmd) };
  }

  /** A full handshake; a 401 or an aged-out relay token starts it over once. */
  private async handshake(): Promise<LiveSession> {
    for (let attempt = 1; ; attempt++) {
      try {
        const s = await this.handshakeOnce();
        this.handshakeCount++;
        return s;
      } catch (e) {
        const retryable = e instanceof TokenAgedOut || (e instanceof RelayHttpError && e.status === 401);
        if (!retryable || attempt >= 2) {
          if (e instanceof TokenAgedOut) throw new ZaxClientError(`handshake with ${this.url} took longer than the relay token lives`);
          throw e;
        }
      }
    }
  }

  private async handshakeOnce(): Promise<LiveSession> {
    const clientToken = this.random(TOKEN_BYTES);
    const startedAtMs = this.clock.nowMs();
    const checkTokenAge = (): void => {
      if (this.clock.nowMs() - startedAtMs >= this.tokenLifeMs) throw new TokenAgedOut();
    };

    const [rtLine, dLine] = expectLines(await this.post('start_session', [b64(clientToken)]), 2, 'start_session');
    const relayToken = decodeFixed(rtLine!, TOKEN_BYTES);
    if (relayToken === null) throw new RelayProtocolError('start_session: relay token is not base64 of 32 bytes');
    const difficulty = parseDecimalLine(dLine, 'start_session difficulty');
    if (difficulty < 0 || difficulty > MAX_DIFFICULTY) throw new RelayProtocolError(`start_session: difficulty ${difficulty} out of range`);
    this.askedDifficulty = difficulty;
    if (difficulty > this.maxDifficulty) {
      throw new ZaxClientError(`relay ${this.url} asks for proof-of-work difficulty ${difficulty}, above maxDifficulty ${this.maxDifficulty}`);
    }

    const answer = solvePow(clientToken, relayToken, difficulty, this.random);
    checkTokenAge();
    const [pkLine] = expectLines(await this.post('verify_session', [b64(h2(clientToken)), b64(answer)]), 1, 'verify_session');
    const relaySessionPk = decodeFixed(pkLine!, KEY_BYTES);
    if (relaySessionPk === null) throw new RelayProtocolError('verify_session: relay session key is not base64 of 32 bytes');

    checkTokenAge();
    const sessionKeyPair = this.crypto.keyPair();
    const key = this.crypto.before(relaySessionPk, sessionKeyPair.secretKey);
    if (key === null) throw new RelayProtocolError('verify_session: relay session key is a low-order point');
    const now = nowSec(this.clock);
    const nonceInner = makeNonce(now, this.random);
    const nonceOuter = makeNonce(now, this.random);
    const lines = buildProveLines({
      crypto: this.crypto,
      identity: this.identity,
      clientToken,
      relayToken,
      relaySessionPk,
      sessionKeyPair,
      nonceInner,
      nonceOuter,
    });
    // The session secret is only needed for the precomputed key.
    sessionKeyPair.secretKey.fill(0);
    // Count the session's life from before /prove: the relay starts it on receipt, later than this.
    const provedAtMs = this.clock.nowMs();
    const [countLine] = expectLines(await this.post('prove', lines), 1, 'prove');
    const messageCount = parseDecimalLine(countLine, 'prove');
    return { key, provedAtMs, messageCount };
  }

  /** One POST; returns the response lines, or throws a RelayHttpError / RelayNetworkError (diagnose.ts). */
  private async post(path: string, lines: readonly string[]): Promise<string[]> {
    return splitLines(await this.exchange(path, joinLines(lines), readText));
  }

  /** One POST of `body`; returns the answer as `read` reads it, or throws like `post`. */
  private async exchange<T extends string | Uint8Array>(path: string, body: string | Uint8Array, read: (res: Response) => Promise<T>): Promise<T> {
    const url = `${this.url}/${path}`;
    const signal = AbortSignal.timeout(this.timeoutMs);
    let res: Response;
    let answer: T;
    try {
      const init: RequestInit = this.streamBodies && typeof body !== 'string' ? streamedBody(body) : { headers: HEADERS, body: body as RequestInit['body'] };
      res = await this.fetchFn(url, { method: 'POST', ...init, signal });
      answer = await read(res);
    } catch (e) {
      if (e instanceof ZaxClientError) throw e;
      if (signal.aborted) throw new RelayTimeoutError(`no answer from ${url} within ${this.timeoutMs} ms`, { cause: e, url });
      throw await diagnoseNetworkFailure(e, url, this.url, this.timeoutMs);
    }
    if (!res.ok) {
      const text = typeof answer === 'string' ? answer : utf8Lenient.decode(answer);
      const tlsPort = plainRequestToTlsPort(url, this.url, res.status, text);
      if (tlsPort !== null) throw tlsPort;
      throw new RelayHttpError(res.status, res.headers.get('x-error-details'), parseRetryAfter(res.headers.get('retry-after'), this.clock.nowMs()), path);
    }
    return answer;
  }
}

const readText = (res: Response): Promise<string> => res.text();

/**
 * Whether the global `fetch` sends a ReadableStream body over HTTP/1.1 (Node's undici does;
 * browsers only over HTTP/2). A byte body goes as a stream there: the Fetch standard copies a
 * Uint8Array body, a stream's chunks are written as they are.
 */
const STREAMS_REQUEST_BODIES = typeof (globalThis as { process?: { versions?: { node?: unknown } } }).process?.versions?.node === 'string';

/**
 * `body` as a one-chunk stream with its length declared (so not sent chunked). A default (not
 * byte) stream: a byte stream's enqueue would detach the caller's buffer.
 */
function streamedBody(body: Uint8Array): RequestInit {
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(body);
      controller.close();
    },
  });
  return { body: stream, headers: { ...HEADERS, 'content-length': String(body.length) }, duplex: 'half' } as RequestInit;
}

/** The answer's bytes, read piece by piece into `into` (grown into a new buffer when it does not fit). */
async function readBytes(res: Response, into: Uint8Array = new Uint8Array(0)): Promise<Uint8Array> {
  if (res.body === null) return into.subarray(0, 0);
  const declared = Number(res.headers.get('content-length') ?? NaN);
  let buf = Number.isSafeInteger(declared) && declared > into.length ? new Uint8Array(declared) : into;
  let n = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (n + value.length > buf.length) {
      const bigger = new Uint8Array(Math.max(2 * buf.length, n + value.length));
      bigger.set(buf.subarray(0, n));
      buf = bigger;
    }
    buf.set(value, n);
    n += value.length;
  }
  return buf.subarray(0, n);
}
