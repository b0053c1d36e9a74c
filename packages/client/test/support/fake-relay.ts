/**
 * A small in-memory Zax relay on node:http for the client's own tests (docs/PROTOCOL.md §4, §5.1–5.6,
 * and the file commands of §5.7–5.11 without quotas or lifetimes).
 * It is built from @zax/protocol's codec and validators and @zax/service's response writers,
 * follows the handshake and envelope checks in their order, and has hooks to expire sessions,
 * inject failures and delays, and read the request log. It is NOT the relay: live-relay tests
 * belong in /test/e2e.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  b64,
  checkAnswer,
  decodeFixed,
  decodeStrict,
  ERRORS,
  frame,
  h2,
  isNonceFresh,
  joinLines,
  makeNonce,
  parseJsonObject,
  RelayError,
  normalizePath,
  API_PATHS,
  type ApiPath,
  tweetnaclCrypto,
  validateCommand,
  type Clock,
  type ErrorCode,
  type KeyPair,
} from '@zax/protocol';
import { readBody, sendError, sendOk } from '@zax/service';

interface Handshake {
  clientToken: Uint8Array;
  relayToken: Uint8Array;
  startedSec: number;
  relayKeys: KeyPair | null;
}
interface Session {
  key: Uint8Array;
  provedSec: number;
}
interface Message {
  from: string;
  nonce: string;
  data: string;
  time: number;
  kind: 'message' | 'file';
}

export interface FakeRelayOptions {
  clock?: Clock;
  difficulty?: number;
  tokenTtlSec?: number;
  sessionTtlSec?: number;
  /** The max_chunk_size it announces and enforces. @default 512000 */
  maxChunkSize?: number;
}

interface FakeFile {
  from: string;
  to: string;
  size: number;
  status: 'START' | 'UPLOADING' | 'COMPLETE';
  parts: Map<number, { nonce: string; chunk: string; bytes: number }>;
}

export interface LoggedRequest {
  path: string;
  body: string;
  status: number;
}

export interface FakeRelay {
  url: string;
  log: LoggedRequest[];
  /** Forget every session (the next command of any client gets 401). */
  dropSessions(): void;
  /** Answer the next `count` requests to `path` with this error instead of processing them. */
  failNext(path: string, code: ErrorCode, count?: number, retryAfterSec?: number): void;
  /** Delay every answer by this many ms. */
  delayMs: number;
  /** Raw mailbox contents by b64 hpk. */
  mailboxes: Map<string, Message[]>;
  /** File records by uploadID. */
  files: Map<string, FakeFile>;
  /** Decides, per decrypted command, to answer it with an error instead (null: process it). */
  failCommand: ((cmd: { cmd: string; part?: number }) => ErrorCode | null) | null;
  close(): Promise<void>;
}

const TTL_SEC = 432000;

export async function startFakeRelay(options: FakeRelayOptions = {}): Promise<FakeRelay> {
  const crypto = tweetnaclCrypto;
  const clock = options.clock ?? { nowMs: () => Date.now() };
  const now = (): number => Math.floor(clock.nowMs() / 1000);
  const tokenTtl = options.tokenTtlSec ?? 300;
  const sessionTtl = options.sessionTtlSec ?? 1200;
  const handshakes = new Map<string, Handshake>();
  const sessions = new Map<string, Session>();
  const seenNonces = new Set<string>();
  const mailboxes = new Map<string, Message[]>();
  const tokens = new Map<string, { hpk: string; nonce: string; expires: number }>();
  const failures = new Map<string, { code: ErrorCode; count: number; retry: number }>();
  const log: LoggedRequest[] = [];
  const files = new Map<string, FakeFile>();
  const fileSeed = b64(crypto.randomBytes(32));
  const maxChunkSize = options.maxChunkSize ?? 512000;

  const checkNonce = (n: Uint8Array | null): void => {
    if (n === null || !isNonceFresh(n, now(), 60)) throw new RelayError('invalid', 'stale nonce');
    const k = b64(n);
    if (seenNonces.has(k)) throw new RelayError('invalid', 'replay');
    seenNonces.add(k);
  };
  const box = (json: unknown, keyOrPair: Uint8Array): string[] => {
    const n = makeNonce(now(), crypto.randomBytes);
    return [b64(n), b64(crypto.boxAfter(new TextEncoder().encode(JSON.stringify(json)), n, keyOrPair))];
  };
  const mailbox = (hpk: string): Message[] => {
    let m = mailboxes.get(hpk);
    if (m === undefined) mailboxes.set(hpk, (m = []));
    return m;
  };

  function startSession(body: string): string[] {
    const [line] = frame(body, [44]);
    const ct = decodeFixed(line!, 32);
    if (ct === null) throw new RelayError('invalid');
    const id = b64(h2(ct));
    let hs = handshakes.get(id);
    if (hs === undefined || now() >= hs.startedSec + tokenTtl) {
      hs = { clientToken: ct, relayToken: Buffer.from(crypto.randomBytes(32)), startedSec: now(), relayKeys: null };
      handshakes.set(id, hs);
    }
    return [b64(hs.relayToken), String(options.difficulty ?? 0)];
  }

  function verifySession(body: string): string[] {
    const [l1, l2] = frame(body, [44, 44]);
    const id = decodeFixed(l1!, 32);
    const answer = decodeFixed(l2!, 32);
    if (id === null || answer === null) throw new RelayError('invalid');
    const hs = handshakes.get(b64(id));
    if (hs === undefined || now() >= hs.startedSec + tokenTtl) throw new RelayError('unauthorized');
    if (!checkAnswer(hs.clientToken, hs.relayToken, answer, options.difficulty ?? 0)) throw new RelayError('unauthorized');
    hs.relayKeys ??= crypto.keyPair();
    return [b64(hs.relayKeys.publicKey)];
  }

  function prove(body: string): string[] {
    const [l1, l2, l3, l4] = frame(body, [44, 44, 32, 256]);
    const id = decodeFixed(l1!, 32);
    if (id === null) throw new RelayError('invalid');
    const hs = handshakes.get(b64(id));
    if (hs === undefined || hs.relayKeys === null || now() >= hs.startedSec + tokenTtl) throw new RelayError('unauthorized');
    const aSessPk = decodeFixed(l2!, 32);
    if (aSessPk === null) throw new RelayError('invalid');
    const outerNonce = decodeFixed(l3!, 24);
    checkNonce(outerNonce);
    const outer = decodeStrict(l4!);
    const innerJson = outer === null ? null : crypto.boxOpen(outer, outerNonce!, aSessPk, hs.relayKeys.secretKey);
    if (innerJson === null) throw new RelayError('invalid');
    const inner = parseJsonObject(innerJson);
    const pub = typeof inner.pub_key === 'string' ? decodeFixed(inner.pub_key, 32) : null;
    const innerNonce = typeof inner.nonce === 'string' ? decodeFixed(inner.nonce, 24) : null;
    const ctext = typeof inner.ctext === 'string' ? decodeStrict(inner.ctext) : null;
    if (pub === null || innerNonce === null || ctext === null) throw new RelayError('invalid');
    checkNonce(innerNonce);
    const sign = crypto.boxOpen(ctext, innerNonce, pub, hs.relayKeys.secretKey);
    if (sign === null) throw new RelayError('invalid');
    if (!Buffer.from(sign).equals(h2(aSessPk, hs.relayToken, hs.clientToken))) throw new RelayError('unauthorized');
    const hpk = b64(h2(pub));
    sessions.set(hpk, { key: crypto.before(aSessPk, hs.relayKeys.secretKey)!, provedSec: now() });
    handshakes.delete(b64(id));
    return [String(mailbox(hpk).length)];
  }

  function command(body: string): string[] {
    const lines = frame(body, [44, 32, null], 1);
    const hpkBytes = decodeFixed(lines[0]!, 32);
    if (hpkBytes === null) throw new RelayError('invalid');
    const nonce = decodeFixed(lines[1]!, 24);
    checkNonce(nonce);
    const ctext = decodeStrict(lines[2]!);
    if (ctext === null || (lines[3] !== undefined && decodeStrict(lines[3]) === null)) throw new RelayError('invalid');
    const hpk = b64(hpkBytes);
    const s = sessions.get(hpk);
    if (s === undefined || now() >= s.provedSec + sessionTtl) throw new RelayError('unauthorized');
    const plain = crypto.boxOpenAfter(ctext, nonce!, s.key);
    if (plain === null) throw new RelayError('unauthorized');
    const req = validateCommand(parseJsonObject(plain), { maxMessageBytes: 262144, maxChunkSize, maxFileSize: 1073741823 }, lines[3] ?? null);
    const injected = relay.failCommand?.({ cmd: req.cmd, ...('part' in req ? { part: req.part } : {}) }) ?? null;
    if (injected !== null) throw new RelayError(injected, 'injected');
    const mine = mailbox(hpk);
    const known = (id: string): FakeFile | undefined => {
      const f = files.get(id);
      return f !== undefined && (f.from === hpk || f.to === hpk) ? f : undefined;
    };
    switch (req.cmd) {
      case 'startFileUpload': {
        const uploadID = b64(h2(decodeFixed(hpk, 32)!, decodeFixed(req.to, 32)!, decodeFixed(req.metadataNonce, 24)!, fileSeed));
        const data = JSON.stringify({ ctext: req.metadataCtext, nonce: req.metadataNonce, uploadID });
        const target = mailbox(req.to);
        const msg: Message = { from: hpk, nonce: req.metadataNonce, data, time: clock.nowMs() / 1000, kind: 'file' };
        const at = target.findIndex((m) => m.nonce === req.metadataNonce);
        if (at >= 0) target[at] = msg;
        else target.push(msg);
        files.set(uploadID, { from: hpk, to: req.to, size: req.fileSize, status: 'START', parts: new Map() });
        const token = b64(h2(req.to, req.metadataNonce));
        tokens.set(token, { hpk: req.to, nonce: req.metadataNonce, expires: now() + TTL_SEC });
        return box({ uploadID, max_chunk_size: maxChunkSize, storage_token: token }, s.key);
      }
      case 'uploadFileChunk': {
        const f = known(req.uploadID);
        if (f === undefined) return box({ status: 'NOT_FOUND' }, s.key);
        if (req.part >= f.size) throw new RelayError('invalid');
        f.parts.set(req.part, { nonce: req.nonce, chunk: req.chunk, bytes: req.chunkBytes });
        f.status = req.lastChunk || f.status === 'COMPLETE' ? 'COMPLETE' : 'UPLOADING';
        return box({ status: 'OK' }, s.key);
      }
      case 'fileStatus': {
        const f = known(req.uploadID);
        if (f === undefined) return box({ status: 'NOT_FOUND', file_size: 0, bytes_stored: 0, total_chunks: 0 }, s.key);
        const stored = [...f.parts.values()].reduce((n, p) => n + p.bytes, 0);
        return box({ status: f.status, file_size: f.size, bytes_stored: stored, total_chunks: f.parts.size === 0 ? 0 : Math.max(...f.parts.keys()) + 1 }, s.key);
      }
      case 'downloadFileChunk': {
        const f = known(req.uploadID);
        if (f === undefined) return box({ status: 'NOT_FOUND' }, s.key);
        const p = f.parts.get(req.part);
        if (p === undefined) throw new RelayError('invalid');
        return [...box({ nonce: p.nonce }, s.key), p.chunk];
      }
      case 'deleteFile': {
        const f = known(req.uploadID);
        if (f !== undefined) files.delete(req.uploadID);
        return box({ status: f === undefined ? 'NOT_FOUND' : 'OK' }, s.key);
      }
      case 'count':
        return box(mine.length, s.key);
      case 'upload': {
        const msgNonce = req.nonce ?? b64(makeNonce(now(), crypto.randomBytes));
        const target = mailbox(req.to);
        const msg: Message = { from: hpk, nonce: msgNonce, data: req.data, time: clock.nowMs() / 1000, kind: 'message' };
        const at = target.findIndex((m) => m.nonce === msgNonce);
        if (at >= 0) target[at] = msg;
        else target.push(msg);
        const token = b64(h2(req.to, msgNonce));
        tokens.set(token, { hpk: req.to, nonce: msgNonce, expires: now() + TTL_SEC });
        return [token];
      }
      case 'download': {
        const list = req.from === null ? mine : mine.filter((m) => req.from!.includes(m.from));
        return box(list.slice(req.start, req.start + req.count), s.key);
      }
      case 'messageStatus': {
        const t = tokens.get(req.token);
        const live = t !== undefined && mailbox(t.hpk).some((m) => m.nonce === t.nonce);
        return [String(live ? t.expires - now() : -2)];
      }
      case 'delete': {
        const gone = new Set(req.nonces);
        mailboxes.set(hpk, mine.filter((m) => !gone.has(m.nonce)));
        return [String(mailbox(hpk).length)];
      }
      case 'getEntropy':
        return [Buffer.from(JSON.stringify({ entropy: b64(crypto.randomBytes(req.size)) })).toString('base64')];
      default:
        throw new RelayError('invalid', 'not in the fake relay');
    }
  }

  const handlers: Record<string, (body: string) => string[]> = {
    '/start_session': startSession,
    '/verify_session': verifySession,
    '/prove': prove,
    '/command': command,
  };

  const relay: FakeRelay = {
    url: '',
    log,
    mailboxes,
    files,
    failCommand: null,
    delayMs: 0,
    dropSessions: () => sessions.clear(),
    failNext(path, code, count = 1, retry = 5) {
      failures.set(path, { code, count, retry });
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = normalizePath(req.url ?? '/') as ApiPath;
    if (!API_PATHS.includes(path) || req.method !== 'POST') {
      sendError(res, API_PATHS.includes(path) ? 'methodNotAllowed' : 'notFound', 0);
      return;
    }
    const body = (await readBody(req, 2 * maxChunkSize + (1 << 20))).toString('latin1');
    if (relay.delayMs > 0) await new Promise((r) => setTimeout(r, relay.delayMs));
    if (res.destroyed) return;
    const failure = failures.get(path);
    if (failure !== undefined) {
      if (--failure.count <= 0) failures.delete(path);
      log.push({ path, body, status: ERRORS[failure.code].status });
      sendError(res, failure.code, failure.retry);
      return;
    }
    try {
      const out = handlers[path]!(body);
      log.push({ path, body, status: 200 });
      sendOk(res, joinLines(out));
    } catch (e) {
      const code = e instanceof RelayError ? e.code : 'internal';
      log.push({ path, body, status: ERRORS[code].status });
      sendError(res, code, 5);
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendError(res, 'internal', 0);
    });
  });
  server.keepAliveTimeout = 100;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  relay.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return relay;
}
