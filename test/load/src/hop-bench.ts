/**
 * `pnpm bench:hop`: what one gatekeeper → core hop costs in CPU, by transport, measured apart from
 * the relay. A client process sends `--requests` POSTs of a /command-sized body (1.5 KB) with
 * `--concurrency` in flight to a server process that answers a 0.4 KB body, and both report their
 * CPU time (`process.cpuUsage()`) per request:
 *
 *   http      undici Pool → node:http server (what the relay does today)
 *   node      node:http keep-alive Agent → node:http server (what it did before)
 *   framed    length-prefixed frames over a few persistent TCP connections (id + status + body),
 *             the "framed persistent link" BENCHMARKS.md names as the next lever
 *
 * A proxy library is not a client one can call alone, so http-proxy-middleware is measured as the
 * whole forwarding step, against the same step written with undici: here the generator loads a
 * node:http front process (the gatekeeper's place), which forwards each request to the server, and
 * the "client" column is the front's CPU (its own server side included, the same in both rows):
 *
 *   fwd-undici  front reads the body, undici Pool → server, answer read whole and written back
 *   fwd-hpm     front streams it through http-proxy-middleware 3 over a keep-alive http.Agent
 *
 * The framed transport here is a measuring device only: no authentication, TLS, timeouts or
 * reconnection. Run: `pnpm bench:hop` (all five, alternating, 3 rounds).
 */
import { fork } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { Pool } from 'undici';

type Kind = 'http' | 'node' | 'framed' | 'fwd-undici' | 'fwd-hpm';
const KINDS: readonly Kind[] = ['http', 'node', 'framed', 'fwd-undici', 'fwd-hpm'];
/** The kinds measured through a front process (the client column is the front's CPU). */
const FORWARDED: ReadonlySet<Kind> = new Set(['fwd-undici', 'fwd-hpm']);
const REQUEST = Buffer.alloc(1500, 0x61);
const REPLY = Buffer.alloc(400, 0x62);
const cpuMs = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1000;

// ---- server side (a forked child: `hop-bench.js serve <kind>`) ----

function serveHttp(): Promise<number> {
  const server = http.createServer((req, res) => {
    req.on('data', () => {});
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': REPLY.length });
      res.end(REPLY);
    });
  });
  server.keepAliveTimeout = 65_000;
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

/**
 * Frame: u32 length of the rest, u32 request id, then the body (request) or u16 status + body
 * (reply). Splits a socket's bytes into frames: calls `onFrame(id)` for each complete one, then
 * `afterBatch()` once per read (where the server writes its batched replies).
 */
function readFrames(socket: net.Socket, onFrame: (id: number) => void, afterBatch: () => void = () => {}): void {
  let pending: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 8) {
      const len = pending.readUInt32BE(0);
      if (pending.length < 4 + len) break;
      const id = pending.readUInt32BE(4);
      pending = pending.subarray(4 + len);
      onFrame(id);
    }
    afterBatch();
  });
}

function serveFramed(): Promise<number> {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    let out: Buffer[] = [];
    readFrames(
      socket,
      (id) => {
        const head = Buffer.allocUnsafe(10);
        head.writeUInt32BE(6 + REPLY.length, 0);
        head.writeUInt32BE(id, 4);
        head.writeUInt16BE(200, 8);
        out.push(head, REPLY);
      },
      () => {
        if (out.length > 0) socket.write(Buffer.concat(out));
        out = [];
      },
    );
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

// ---- front side (a forked child: `hop-bench.js front <kind> <server port>`) ----

const listen = (server: http.Server): Promise<number> =>
  new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));

/** The forwarding step with undici, as the gatekeeper does it: body read whole, answer read whole. */
function frontUndici(target: number): Promise<number> {
  const pool = new Pool(`http://127.0.0.1:${target}`, { connections: 512, pipelining: 1, headersTimeout: 3000, bodyTimeout: 3000 });
  const secret = 'x'.repeat(48);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers = { 'content-type': 'text/plain; charset=utf-8', 'x-zax-internal-secret': secret };
      pool.request({ method: 'POST', path: req.url ?? '/', headers, body: Buffer.concat(chunks) }).then(
        async (r) => {
          const body = Buffer.from(await r.body.arrayBuffer());
          res.writeHead(r.statusCode, { 'content-type': String(r.headers['content-type']), 'content-length': body.length });
          res.end(body);
        },
        () => {
          res.writeHead(503, { 'content-length': 0 });
          res.end();
        },
      );
    });
  });
  server.keepAliveTimeout = 65_000;
  return listen(server);
}

/** The forwarding step with http-proxy-middleware 3: streamed, keep-alive agent, errors → 503. */
function frontHpm(target: number): Promise<number> {
  const proxy = createProxyMiddleware<http.IncomingMessage, http.ServerResponse>({
    target: `http://127.0.0.1:${target}`,
    agent: new http.Agent({ keepAlive: true, maxSockets: 512, scheduling: 'lifo' }),
    proxyTimeout: 3000,
    timeout: 3000,
    ejectPlugins: true,
    plugins: [
      (server) => {
        server.on('proxyReq', (proxyReq) => proxyReq.setHeader('x-zax-internal-secret', 'x'.repeat(48)));
        server.on('error', (_err, _req, res) => {
          const r = res as http.ServerResponse;
          if (!r.headersSent) r.writeHead(503, { 'content-length': 0 });
          r.end();
        });
      },
    ],
  });
  const server = http.createServer((req, res) => void proxy(req, res));
  server.keepAliveTimeout = 65_000;
  return listen(server);
}

async function serve(kind: Kind | 'front', target?: Kind, targetPort?: number): Promise<void> {
  const port =
    kind === 'front' ? await (target === 'fwd-hpm' ? frontHpm(targetPort!) : frontUndici(targetPort!)) : kind === 'framed' ? await serveFramed() : await serveHttp();
  let base = process.cpuUsage();
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'reset') base = process.cpuUsage();
    if (m.cmd === 'report') process.send!({ cpuMs: cpuMs(process.cpuUsage(base)) });
    if (m.cmd === 'exit') process.exit(0);
  });
  process.send!({ port });
}

// ---- client side ----

type Send = () => Promise<void>;

function undiciClient(port: number): { send: Send; close: () => Promise<void> } {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 512, pipelining: 1, headersTimeout: 3000, bodyTimeout: 3000 });
  const headers = { 'content-type': 'text/plain; charset=utf-8', 'x-zax-internal-secret': 'x'.repeat(48) };
  return {
    send: async () => {
      const r = await pool.request({ method: 'POST', path: '/command', headers, body: REQUEST });
      for await (const _ of r.body) void _;
    },
    close: () => pool.close(),
  };
}

function nodeClient(port: number): { send: Send; close: () => Promise<void> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512, scheduling: 'lifo' });
  return {
    send: () =>
      new Promise((resolve, reject) => {
        const req = http.request({
          hostname: '127.0.0.1',
          port,
          path: '/command',
          method: 'POST',
          agent,
          headers: { 'content-type': 'text/plain; charset=utf-8', 'content-length': REQUEST.length, 'x-zax-internal-secret': 'x'.repeat(48) },
        });
        req.on('error', reject);
        req.on('response', (res) => {
          res.on('data', () => {});
          res.on('end', () => resolve());
        });
        req.end(REQUEST);
      }),
    close: async () => agent.destroy(),
  };
}

async function framedClient(port: number, links: number): Promise<{ send: Send; close: () => Promise<void> }> {
  const waiting = new Map<number, () => void>();
  const sockets: net.Socket[] = [];
  for (let i = 0; i < links; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.setNoDelay(true);
    await new Promise<void>((r) => s.once('connect', () => r()));
    readFrames(s, (id) => {
      const done = waiting.get(id);
      waiting.delete(id);
      done?.();
    });
    sockets.push(s);
  }
  let next = 0;
  return {
    send: () =>
      new Promise((resolve) => {
        const id = ++next >>> 0;
        waiting.set(id, resolve);
        const head = Buffer.allocUnsafe(8);
        head.writeUInt32BE(4 + REQUEST.length, 0);
        head.writeUInt32BE(id, 4);
        const s = sockets[id % sockets.length]!;
        s.cork();
        s.write(head);
        s.write(REQUEST);
        process.nextTick(() => s.uncork());
      }),
    close: async () => sockets.forEach((s) => s.destroy()),
  };
}

interface Child {
  next<T>(): Promise<T>;
  ask<T>(cmd: string): Promise<T>;
  send(cmd: string): void;
}

/** A forked server or front process, talked to over IPC. */
function forkChild(args: string[], name: string): Child {
  const child = fork(new URL(import.meta.url).pathname, args, { stdio: 'inherit' });
  // A child that dies fails the run instead of leaving it waiting.
  const died = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`${name} exited (${code})`))));
  died.catch(() => {});
  const next = <T>(): Promise<T> => Promise.race([new Promise<T>((resolve) => child.once('message', (m) => resolve(m as T))), died]);
  return {
    next,
    ask: <T>(cmd: string): Promise<T> => {
      const answer = next<T>();
      child.send({ cmd });
      return answer;
    },
    send: (cmd) => child.send({ cmd }),
  };
}

async function measure(kind: Kind, requests: number, concurrency: number): Promise<{ kind: Kind; clientUs: number; serverUs: number; perSec: number }> {
  const forwarded = FORWARDED.has(kind);
  const server = forkChild(['serve', forwarded ? 'http' : kind], `${kind} server`);
  const { port: serverPort } = await server.next<{ port: number }>();
  const front = forwarded ? forkChild(['serve', 'front', kind, String(serverPort)], `${kind} front`) : null;
  const port = front !== null ? (await front.next<{ port: number }>()).port : serverPort;
  const client = kind === 'node' ? nodeClient(port) : kind === 'framed' ? await framedClient(port, 4) : undiciClient(port);
  const run = async (n: number): Promise<void> => {
    let left = n;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (left-- > 0) await client.send();
      }),
    );
  };
  await run(Math.min(5000, requests)); // warm-up (JIT, connections)
  server.send('reset');
  front?.send('reset');
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await run(requests);
  const wallMs = performance.now() - t0;
  const clientMs = front !== null ? (await front.ask<{ cpuMs: number }>('report')).cpuMs : cpuMs(process.cpuUsage(c0));
  const { cpuMs: serverMs } = await server.ask<{ cpuMs: number }>('report');
  await client.close();
  front?.send('exit');
  server.send('exit');
  return { kind, clientUs: (clientMs * 1000) / requests, serverUs: (serverMs * 1000) / requests, perSec: (requests / wallMs) * 1000 };
}

async function main(): Promise<void> {
  if (process.argv[2] === 'serve') return serve(process.argv[3] as Kind | 'front', process.argv[4] as Kind | undefined, Number(process.argv[5]));
  const { values } = parseArgs({
    options: { requests: { type: 'string', default: '40000' }, concurrency: { type: 'string', default: '32' }, rounds: { type: 'string', default: '3' } },
  });
  const requests = Number(values.requests);
  const concurrency = Number(values.concurrency);
  const rounds = Number(values.rounds);
  console.log(`one hop: ${REQUEST.length} B request, ${REPLY.length} B reply, ${concurrency} in flight, ${requests} requests per run; CPU µs per request`);
  console.log('(fwd-* rows: "client" is the front process, its node:http server side included)');
  const all = new Map<Kind, { clientUs: number[]; serverUs: number[]; perSec: number[] }>(KINDS.map((k) => [k, { clientUs: [], serverUs: [], perSec: [] }]));
  for (let r = 0; r < rounds; r++) {
    for (const kind of KINDS) {
      const m = await measure(kind, requests, concurrency);
      const a = all.get(kind)!;
      a.clientUs.push(m.clientUs);
      a.serverUs.push(m.serverUs);
      a.perSec.push(m.perSec);
      console.log(`  round ${r + 1} ${kind.padEnd(10)} client ${m.clientUs.toFixed(1).padStart(6)} · server ${m.serverUs.toFixed(1).padStart(6)} · ${m.perSec.toFixed(0)} req/s`);
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log('median:');
  for (const kind of KINDS) {
    const a = all.get(kind)!;
    console.log(`  ${kind.padEnd(10)} client ${median(a.clientUs).toFixed(1).padStart(6)} µs · server ${median(a.serverUs).toFixed(1).padStart(6)} µs · together ${(median(a.clientUs) + median(a.serverUs)).toFixed(1)} µs`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
