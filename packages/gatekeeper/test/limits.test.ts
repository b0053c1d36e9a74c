/**
 * Memory bounds (limits.ts): request-body budgets per process (503) and per client address (429),
 * refused before any of the body is read and the connection closed; budgets given back however a
 * request ends; stalled and trickling bodies cut off with 408; a client that stops reading a
 * response is dropped after WRITE_TIMEOUT_MS and the core's answer released; absolute-form targets.
 * Real sockets throughout; assertions are on statuses and on the budget accounting, never on time.
 */
import type http from 'node:http';
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TEXT_BUSY, TEXT_TOO_MANY } from '@zax/protocol';
import { until } from '../../../test/support/until.js';
import { post, request, startFakeCore, startGatekeeper, type FakeCore, type Gatekeeper } from './helpers.js';

const BODY = 1_048_000; // just under the default MAX_COMMAND_BODY_BYTES
const FIRST = 64 * 1024; // what a stalled client sends before it stops

let core: FakeCore;
const open: Gatekeeper[] = [];
const sockets: net.Socket[] = [];
beforeEach(async () => {
  core = await startFakeCore();
});
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const g of open.splice(0)) await g.close();
  await core.close();
});

async function gatekeeper(env: Record<string, string>): Promise<Gatekeeper> {
  const gk = await startGatekeeper({
    coreUrl: core.url,
    env: { REQUEST_BURST_PER_IP: '0', HANDSHAKE_BURST_PER_IP: '0', TRUSTED_PROXIES: '127.0.0.0/8', ...env },
  });
  open.push(gk);
  return gk;
}

/** A gauge or counter of the app's registry (0 when the series is absent). */
async function sample(gk: Gatekeeper, series: string): Promise<number> {
  const text = await gk.app.metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}
const bodyBytes = (gk: Gatekeeper): Promise<number> => sample(gk, 'zax_gatekeeper_body_bytes_in_flight');

interface Raw {
  readonly socket: net.Socket;
  /** The status of the first response, or -1 if the connection closed without one. */
  readonly status: Promise<number>;
  /** The raw bytes of the response head. */
  head(): string;
  readonly closed: Promise<void>;
}

/** A raw POST: the head (with `headers`) and `first` bytes of the body, then nothing until told. */
function rawPost(port: number, path: string, headers: Record<string, string | number>, first: Buffer | string = ''): Raw {
  const socket = net.connect(port, '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => {});
  let got = '';
  const status = new Promise<number>((resolve) => {
    socket.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3}) /.exec(got);
      if (m !== null) resolve(Number(m[1]));
    });
    socket.on('close', () => resolve(-1));
  });
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  const head = Object.entries({ host: 'relay', 'content-type': 'text/plain', ...headers })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.write(`POST ${path} HTTP/1.1\r\n${head}\r\n`);
  if (first.length > 0) socket.write(first);
  return { socket, status, closed, head: () => got.split('\r\n\r\n')[0] ?? '' };
}

/** A stalled upload of BODY declared bytes from `client` (via the trusted loopback proxy). */
const stalled = (gk: Gatekeeper, client: string): Raw =>
  rawPost(gk.port, '/command', { 'content-length': BODY, 'x-forwarded-for': client }, Buffer.alloc(FIRST, 0x41));

describe('request-body budgets', () => {
  const env = {
    MAX_BODY_BYTES_IN_FLIGHT_PER_IP: String(2 * BODY),
    MAX_BODY_BYTES_IN_FLIGHT: String(4 * BODY),
    BODY_IDLE_TIMEOUT_MS: '600000',
    BODY_GRACE_MS: '600000',
  };

  it('reserves a declared length up front; refuses past the address (429) and process (503) budgets and closes; gives back on abort and on completion', async () => {
    const gk = await gatekeeper(env);
    const a1 = stalled(gk, '198.51.100.1');
    await until('a1 reserved', async () => (await bodyBytes(gk)) === BODY);
    const a2 = stalled(gk, '198.51.100.1');
    await until('a2 reserved', async () => (await bodyBytes(gk)) === 2 * BODY);

    // a third body from the same address: 429, connection closed, nothing more reserved
    const a3 = stalled(gk, '198.51.100.1');
    expect(await a3.status).toBe(429);
    expect(a3.head()).toContain(`x-error-details: ${TEXT_TOO_MANY}`);
    expect(a3.head()).toMatch(/retry-after: \d+/i);
    await a3.closed;
    expect(await bodyBytes(gk)).toBe(2 * BODY);

    const b1 = stalled(gk, '198.51.100.2');
    const b2 = stalled(gk, '198.51.100.2');
    await until('b reserved', async () => (await bodyBytes(gk)) === 4 * BODY);

    // the process budget is full: a new address gets 503 busy
    const c1 = stalled(gk, '198.51.100.3');
    expect(await c1.status).toBe(503);
    expect(c1.head()).toContain(`x-error-details: ${TEXT_BUSY}`);
    expect(c1.head()).toContain('retry-after: 7');
    await c1.closed;
    expect(await bodyBytes(gk)).toBe(4 * BODY);
    // small bodies have headroom above the process budget: other clients' commands still pass
    expect((await request(gk.port, { path: '/command', body: 'x', headers: { 'x-forwarded-for': '198.51.100.7' } })).status).toBe(200);
    expect(await sample(gk, 'zax_gatekeeper_body_refused_total{reason="address"}')).toBe(1);
    expect(await sample(gk, 'zax_gatekeeper_body_refused_total{reason="process"}')).toBe(1);

    // the client of a1 and a2 goes away: their bytes come back, exactly once each
    a1.socket.destroy();
    a2.socket.destroy();
    await until('a given back', async () => (await bodyBytes(gk)) === 2 * BODY);
    const c2 = stalled(gk, '198.51.100.3');
    await until('c2 reserved', async () => (await bodyBytes(gk)) === 3 * BODY);

    // a body that completes is forwarded, answered, and its bytes come back
    b1.socket.write(Buffer.alloc(BODY - FIRST, 0x41));
    expect(await b1.status).toBe(200);
    await until('b1 given back', async () => (await bodyBytes(gk)) === 2 * BODY);
    expect(core.forwarded.at(-1)?.body.length).toBe(BODY);

    b2.socket.destroy();
    c2.socket.destroy();
    await until('all given back', async () => (await bodyBytes(gk)) === 0);
    // and a normal request still gets through
    expect((await post(gk.port, '/command', 'x')).status).toBe(200);
  });

  it('a chunked body reserves what arrives and is refused (503) when the process budget runs out', async () => {
    const gk = await gatekeeper(env);
    const held = [stalled(gk, '198.51.100.1'), stalled(gk, '198.51.100.2'), stalled(gk, '198.51.100.4')];
    await until('three reserved', async () => (await bodyBytes(gk)) === 3 * BODY);
    const chunk = Buffer.alloc(256 * 1024, 0x41);
    const frame = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
    const ch = rawPost(gk.port, '/command', { 'transfer-encoding': 'chunked', 'x-forwarded-for': '198.51.100.5' }, frame);
    await until('first chunk reserved', async () => (await bodyBytes(gk)) === 3 * BODY + chunk.length);
    // four more chunks would pass the budget (4 × BODY) on the fourth
    for (let i = 0; i < 4 && !ch.socket.destroyed; i++) ch.socket.write(frame);
    expect(await ch.status).toBe(503);
    await ch.closed;
    await until('chunked given back', async () => (await bodyBytes(gk)) === 3 * BODY);
    for (const r of held) r.socket.destroy();
    await until('all given back', async () => (await bodyBytes(gk)) === 0);
  });

  it('200 stalled 1 MB bodies from one address: all but the budget refused, the reservation never above it', async () => {
    const gk = await gatekeeper(env);
    const raws: Raw[] = [];
    for (let i = 0; i < 200; i++) raws.push(stalled(gk, '198.51.100.9'));
    const refused = await until('all but two answered', async () => {
      const answered = (await Promise.all(raws.map((r) => Promise.race([r.status, Promise.resolve(0)])))).filter((s) => s !== 0);
      return answered.length >= 198 ? answered : false;
    });
    expect(refused.filter((s) => s === 429)).toHaveLength(198);
    expect(await bodyBytes(gk)).toBe(2 * BODY);
    expect(await sample(gk, 'zax_gatekeeper_body_refused_total{reason="address"}')).toBe(198);
    for (const r of raws) r.socket.destroy();
    await until('all given back', async () => (await bodyBytes(gk)) === 0);
  });
});

describe('minimum body rate', () => {
  it('a body that stops is cut off with 408 and closed; its bytes come back', async () => {
    const gk = await gatekeeper({ BODY_IDLE_TIMEOUT_MS: '300', BODY_GRACE_MS: '600000' });
    const r = stalled(gk, '198.51.100.1');
    expect(await r.status).toBe(408);
    await r.closed;
    expect(await bodyBytes(gk)).toBe(0);
    expect(await sample(gk, 'zax_gatekeeper_body_refused_total{reason="slow"}')).toBe(1);
    expect((await post(gk.port, '/command', 'x')).status).toBe(200);
  });

  it('a body that trickles (bytes keep coming, too slowly) is cut off with 408', async () => {
    const gk = await gatekeeper({ BODY_IDLE_TIMEOUT_MS: '600000', BODY_GRACE_MS: '200', BODY_MIN_BYTES_PER_SEC: '100000' });
    const r = rawPost(gk.port, '/command', { 'content-length': 1000 }, 'x');
    const drip = setInterval(() => r.socket.write('x'), 50);
    try {
      expect(await r.status).toBe(408);
      await r.closed;
    } finally {
      clearInterval(drip);
    }
    expect(core.forwarded).toHaveLength(0);
    expect(await bodyBytes(gk)).toBe(0);
  });
});

describe('responses', () => {
  it('a client that stops reading a streamed answer is dropped after WRITE_TIMEOUT_MS, and the core answer released', async () => {
    const gk = await gatekeeper({ WRITE_TIMEOUT_MS: '300' });
    let coreRes: http.ServerResponse | null = null;
    const coreClosed = new Promise<boolean>((resolve) => {
      core.onForward = (_p, _b, res) => {
        coreRes = res;
        let gone = false;
        res.on('close', () => {
          gone = true;
          resolve(res.writableFinished);
        });
        // An endless answer (chunked, no length): the gatekeeper streams it.
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        const chunk = Buffer.alloc(64 * 1024, 0x42);
        const pump = (): void => {
          while (!gone && res.write(chunk));
        };
        res.on('drain', pump);
        pump();
      };
    });
    const r = rawPost(gk.port, '/command', { 'content-length': 1 }, 'x');
    expect(await r.status).toBe(200);
    r.socket.pause(); // and stops reading
    // the gatekeeper gives up on it, and the core's answer (and pool connection) goes with it
    expect(await coreClosed).toBe(false);
    // reading again, the client finds its connection closed
    r.socket.resume();
    await r.closed;
    expect(coreRes).not.toBeNull();
    expect(await sample(gk, 'zax_gatekeeper_write_timeouts_total')).toBe(1);
    // the pool has its connection back: the next request is answered
    core.onForward = (_p, _b, res) => res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('0');
    expect((await post(gk.port, '/command', 'x')).status).toBe(200);
  });

  it('with MAX_RESPONSE_BYTES_HELD=0 answers are streamed, whole and unchanged', async () => {
    const gk = await gatekeeper({ MAX_RESPONSE_BYTES_HELD: '0' });
    const answer = Buffer.alloc(700_000, 0x43).toString('latin1');
    core.onForward = (_p, _b, res) => res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': answer.length }).end(answer);
    const r = await post(gk.port, '/command', 'x');
    expect(r.status).toBe(200);
    expect(r.body).toBe(answer);
    expect(await sample(gk, 'zax_gatekeeper_response_bytes_held')).toBe(0);
  });
});

describe('absolute-form request targets', () => {
  it('are handled as their path', async () => {
    const gk = await gatekeeper({});
    const r = await request(gk.port, { path: `http://127.0.0.1:${gk.port}/command`, body: 'x' });
    expect(r.status).toBe(200);
    expect(core.forwarded.at(-1)?.path).toBe('/command');
    expect((await request(gk.port, { path: `HTTP://relay.example/start_session?x=1`, body: Buffer.alloc(32).toString('base64') })).status).toBe(200);
    expect((await request(gk.port, { method: 'GET', path: `http://relay.example/livez` })).status).toBe(200);
    expect((await request(gk.port, { path: `http://relay.example/other`, body: 'x' })).status).toBe(404);
  });
});
