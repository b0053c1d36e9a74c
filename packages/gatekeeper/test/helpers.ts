/** Test harness: a gatekeeper app on an ephemeral port, a raw HTTP client, and a stand-in core. */
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { parseMintRequest, type MintRequest } from '@zax/protocol';
import { inject } from 'vitest';
import { dropPrefix, freshPrefix } from '../../../test/support/prefix.js';
import { freePort } from '../../../test/support/redis-server.js';
import { createApp, type App } from '../src/app.js';
import { loadConfig, type Config } from '../src/config.js';
import type { DifficultyProvider } from '../src/difficulty.js';
import type { GatekeeperMetrics } from '../src/metrics.js';
import { connectRedis, redisReady, type EdgeRedis } from '../src/redis.js';

export const SECRET = 'test-secret-0123456789';
export const silentLog = pino({ level: 'silent' });

export interface Gatekeeper {
  readonly port: number;
  readonly prefix: string;
  readonly config: Config;
  readonly redis: EdgeRedis;
  readonly app: App;
  /** The injected clock: tests move `clock.ms`. */
  readonly clock: { ms: number; nowMs(): number };
  close(): Promise<void>;
}

export interface GatekeeperOptions {
  env?: Record<string, string>;
  random?: (n: number) => Uint8Array;
  difficulty?: DifficultyProvider;
  metrics?: GatekeeperMetrics;
  redisUrl?: string;
  /** Share another gatekeeper's edge prefix (a second replica). Default: a fresh prefix. */
  prefix?: string;
  /** The injected clock (shared with a difficulty provider built outside). @default at 1_700_000_000_000 */
  clock?: { ms: number; nowMs(): number };
  /** Default: a port nothing listens on. */
  coreUrl?: string;
}

export async function listen(handler: http.RequestListener): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

export async function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

export function testClock(ms = 1_700_000_000_000): { ms: number; nowMs(): number } {
  const clock = { ms, nowMs: () => clock.ms };
  return clock;
}

export async function startGatekeeper(opts: GatekeeperOptions = {}): Promise<Gatekeeper> {
  const redisUrl = opts.redisUrl ?? inject('redisUrl');
  const prefix = opts.prefix ?? freshPrefix('gk');
  const config = loadConfig({
    REDIS_URL: redisUrl,
    EDGE_REDIS_PREFIX: prefix,
    INTERNAL_SECRET: SECRET,
    CORE_URL: opts.coreUrl ?? `http://127.0.0.1:${await freePort()}`,
    CORE_TIMEOUT_MS: '1000',
    REDIS_COMMAND_TIMEOUT_MS: '500',
    BUSY_RETRY_AFTER_SEC: '7',
    ...opts.env,
  });
  const redis = connectRedis(config.edgeRedis, { commandTimeoutMs: config.redisCommandTimeoutMs });
  await redisReady(redis);
  const clock = opts.clock ?? testClock();
  const app = createApp({
    config,
    redis,
    clock,
    random: opts.random ?? ((n) => new Uint8Array(n).map(() => Math.floor(Math.random() * 256))),
    log: silentLog,
    ...(opts.difficulty ? { difficulty: opts.difficulty } : {}),
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
  });
  const { server, port } = await listen(app.handler);
  return {
    port,
    prefix,
    config,
    redis,
    app,
    clock,
    async close() {
      await closeServer(server);
      await app.close();
      await dropPrefix(redisUrl, prefix).catch(() => {});
      redis.disconnect();
    },
  };
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface RequestOptions {
  method?: string;
  path: string;
  body?: string | Buffer;
  /** Send the body with Transfer-Encoding: chunked, in pieces of this many bytes. */
  chunkBytes?: number;
  headers?: Record<string, string>;
}

/** One request on a fresh connection; resolves with status, headers and the whole body. */
export function request(port: number, opts: RequestOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const body = typeof opts.body === 'string' ? Buffer.from(opts.body, 'latin1') : opts.body ?? Buffer.alloc(0);
    const headers: Record<string, string | number> = { ...opts.headers };
    if (opts.chunkBytes === undefined) headers['content-length'] = body.length;
    const req = http.request({ host: '127.0.0.1', port, method: opts.method ?? 'POST', path: opts.path, headers, agent: false });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('latin1') }));
      res.on('error', reject);
    });
    if (opts.chunkBytes === undefined) {
      req.end(body);
    } else {
      for (let i = 0; i < body.length; i += opts.chunkBytes) req.write(body.subarray(i, i + opts.chunkBytes));
      req.end();
    }
  });
}

export const post = (port: number, path: string, body: string | Buffer): Promise<Reply> => request(port, { path, body });

/** A stand-in for the core's HTTP API (tests only). Each route's behaviour can be swapped. */
export interface FakeCore {
  readonly port: number;
  readonly url: string;
  /** Every mint request received, parsed. */
  readonly mints: MintRequest[];
  /** Every forwarded request: path, headers and raw body. */
  readonly forwarded: { path: string; headers: IncomingHttpHeaders; body: Buffer }[];
  /** GET /internal/load requests received (with the right secret). */
  loadPolls: number;
  /** Answers GET /internal/load; like today's core, 404 by default. */
  onLoad: (res: http.ServerResponse) => void;
  onMint: (req: MintRequest, res: http.ServerResponse) => void;
  onForward: (path: string, body: Buffer, res: http.ServerResponse) => void;
  close(): Promise<void>;
}

export const FAKE_PK = Buffer.alloc(32, 7).toString('base64');

export async function startFakeCore(): Promise<FakeCore> {
  const core: FakeCore = {
    port: 0,
    url: '',
    mints: [],
    forwarded: [],
    loadPolls: 0,
    onLoad: (res) => res.writeHead(404).end(),
    onMint: (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ v: 1, status: 'ok', relaySessionPk: FAKE_PK }));
    },
    onForward: (_path, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('0');
    },
    close: async () => {},
  };
  const { server, port } = await listen((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.headers['x-zax-internal-secret'] !== SECRET) {
        res.writeHead(403).end();
        return;
      }
      if (req.url === '/internal/load' && req.method === 'GET') {
        core.loadPolls++;
        core.onLoad(res);
        return;
      }
      if (req.url === '/internal/sessions') {
        const mint = parseMintRequest(JSON.parse(body.toString('utf8')));
        if (mint === null) {
          res.writeHead(400).end();
          return;
        }
        core.mints.push(mint);
        core.onMint(mint, res);
        return;
      }
      core.forwarded.push({ path: req.url ?? '', headers: req.headers, body });
      core.onForward(req.url ?? '', body, res);
    });
  });
  return Object.assign(core, { port, url: `http://127.0.0.1:${port}`, close: () => closeServer(server) });
}
