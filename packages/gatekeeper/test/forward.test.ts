/** /prove and /command: raw forwarding to the core, header handling, and every core failure → 503. */
import type http from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TEXT_BUSY, TEXT_G, b64, h2 } from '@zax/protocol';
import { asClient } from './as-client.js';
import { post, request, startFakeCore, startGatekeeper, SECRET, type FakeCore, type Gatekeeper, type Reply } from './helpers.js';

const CT = Buffer.alloc(32, 0x11);
const ID = b64(h2(CT));
const PATHS = ['/prove', '/command'] as const;

function expectBusy(r: Reply): void {
  expect(r.status).toBe(503);
  expect(r.body).toBe('');
  expect(r.headers['x-error-details']).toBe(TEXT_BUSY);
  expect(r.headers['retry-after']).toBe('7');
  expect(r.headers['access-control-allow-origin']).toBe('*');
  expect(r.headers['cache-control']).toBe('no-store');
}

let core: FakeCore;
let gk: Gatekeeper;
beforeEach(async () => {
  core = await startFakeCore();
  gk = await startGatekeeper({ coreUrl: core.url });
});
afterEach(async () => {
  await gk.close();
  await core.close();
});

describe('forwarding', () => {
  it('sends the raw body bytes unchanged, to the normalised path, with the internal secret', async () => {
    const body = Buffer.concat([Buffer.from('line1\r\nline2\nline3\r'), Buffer.from([0, 0xff, 0x80, 0x0d]), Buffer.from('\r\n')]);
    for (const path of PATHS) {
      const r = await request(gk.port, { path: `/${path}/?q=1`, body, headers: { 'content-type': 'application/json' } });
      expect(r.status).toBe(200);
      expect(r.body).toBe('0');
    }
    expect(core.forwarded.map((f) => f.path)).toEqual(['/prove', '/command']);
    for (const f of core.forwarded) {
      expect(f.body.equals(body)).toBe(true);
      expect(f.headers['x-zax-internal-secret']).toBe(SECRET);
    }
  });

  it('copies the status, body and protocol headers of the core answer, and no others', async () => {
    core.onForward = (_p, _b, res) => {
      res.writeHead(429, {
        'content-type': 'text/plain; charset=utf-8',
        'x-error-details': 'Mailbox is full.',
        'retry-after': '3600',
        'x-internal-thing': 'secret-ish',
        'set-cookie': 'a=b',
      });
      res.end();
    };
    const r = await post(gk.port, '/command', 'x');
    expect(r.status).toBe(429);
    expect(r.body).toBe('');
    expect(r.headers['x-error-details']).toBe('Mailbox is full.');
    expect(r.headers['retry-after']).toBe('3600');
    expect(r.headers['x-internal-thing']).toBeUndefined();
    expect(r.headers['set-cookie']).toBeUndefined();
    expect(r.headers['access-control-allow-origin']).toBe('*');
    expect(r.headers['access-control-expose-headers']).toBe('X-Error-Details, Retry-After');
    expect(r.headers['cache-control']).toBe('no-store');
  });

  it('passes 400/401/405 answers through unchanged (they are the client\'s, not the core\'s, fault)', async () => {
    for (const status of [400, 401, 405]) {
      core.onForward = (_p, _b, res) => {
        const h: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8' };
        if (status !== 405) h['x-error-details'] = TEXT_G;
        res.writeHead(status, h).end();
      };
      const r = await post(gk.port, '/command', 'x');
      expect(r.status).toBe(status);
      expect(r.headers['x-error-details']).toBe(status === 405 ? undefined : TEXT_G);
    }
  });

  it('streams a large multi-line answer through byte for byte', async () => {
    const big = `${'A'.repeat(32)}\r\n${'B'.repeat(2_000_000)}\r\n${'C'.repeat(44)}`;
    core.onForward = (_p, _b, res) => res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(big);
    const r = await post(gk.port, '/command', 'x');
    expect(r.status).toBe(200);
    expect(r.body).toBe(big);
  });

  it('on a 200 with x-zax-consumed-handshake deletes that edge record and strips the header', async () => {
    await post(gk.port, '/start_session', b64(CT));
    const key = `${gk.prefix}hs:${ID}`;
    expect(await gk.redis.exists(key)).toBe(1);
    core.onForward = (_p, _b, res) => res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'x-zax-consumed-handshake': ID }).end('0');
    const r = await post(gk.port, '/prove', 'x');
    expect(r.status).toBe(200);
    expect(r.body).toBe('0');
    expect(r.headers['x-zax-consumed-handshake']).toBeUndefined();
    expect(await gk.redis.exists(key)).toBe(0);
    // the same client token now starts a new handshake
    expect((await post(gk.port, '/start_session', b64(CT))).status).toBe(200);
    expect(await gk.redis.exists(key)).toBe(1);
  });

  it('ignores x-zax-consumed-handshake on a non-200 and a malformed value, and strips it', async () => {
    await post(gk.port, '/start_session', b64(CT));
    const key = `${gk.prefix}hs:${ID}`;
    core.onForward = (_p, _b, res) => res.writeHead(401, { 'x-error-details': TEXT_G, 'x-zax-consumed-handshake': ID }).end();
    const r1 = await post(gk.port, '/prove', 'x');
    expect(r1.status).toBe(401);
    expect(r1.headers['x-zax-consumed-handshake']).toBeUndefined();
    core.onForward = (_p, _b, res) => res.writeHead(200, { 'x-zax-consumed-handshake': '*' }).end('0');
    expect((await post(gk.port, '/prove', 'x')).status).toBe(200);
    expect(await gk.redis.exists(key)).toBe(1);
  });

  it('answers the client even when deleting the consumed handshake fails', async () => {
    // The request budget off: with it on, an edge Redis outage is a 503 before forwarding.
    const gk2 = await startGatekeeper({ coreUrl: core.url, env: { REQUEST_BURST_PER_IP: '0' } });
    try {
      core.onForward = (_p, _b, res) => res.writeHead(200, { 'x-zax-consumed-handshake': ID }).end('0');
      gk2.redis.disconnect(); // edge Redis gone: the DEL fails at once
      const r = await post(gk2.port, '/prove', 'x');
      expect(r.status).toBe(200);
      expect(r.body).toBe('0');
    } finally {
      await gk2.close();
    }
  });

  it('with the request budget on, an edge Redis outage is 503 before anything reaches the core (fail closed)', async () => {
    gk.redis.disconnect();
    for (const path of PATHS) expectBusy(await post(gk.port, path, 'x'));
    expect(core.forwarded).toHaveLength(0);
  });
});

describe('core failures → 503 busy, never 500', () => {
  it('a closed core port', async () => {
    const closedCore = await startFakeCore();
    await closedCore.close();
    const gk2 = await startGatekeeper({ coreUrl: closedCore.url });
    try {
      for (const path of PATHS) expectBusy(await post(gk2.port, path, 'anything'));
    } finally {
      await gk2.close();
    }
  });

  it.each([500, 502, 503, 403])('a %i answer (its body and headers are not passed on)', async (status) => {
    core.onForward = (_p, _b, res) => res.writeHead(status, { 'x-error-details': 'Something is wrong with this relay. Try again later.', 'retry-after': '99' }).end('oops');
    for (const path of PATHS) expectBusy(await post(gk.port, path, 'x'));
  });

  it('a reset connection', async () => {
    core.onForward = (_p, _b, res) => res.socket?.destroy();
    for (const path of PATHS) expectBusy(await post(gk.port, path, 'x'));
  });

  it('no answer within CORE_TIMEOUT_MS: 503 while the core still holds the request, which the gatekeeper drops', async () => {
    expect(gk.config.coreTimeoutMs).toBe(1000);
    let held: http.ServerResponse | null = null;
    const dropped = new Promise<void>((resolve) => {
      core.onForward = (_p, _b, res) => {
        held = res; // never answered
        res.on('close', () => resolve());
      };
    });
    // A client that would wait five times the gatekeeper's timeout before giving up.
    const r = await asClient(post(gk.port, '/command', 'x'), 5 * gk.config.coreTimeoutMs);
    expectBusy(r);
    await dropped; // the gatekeeper closed its request to the core…
    expect(held!.writableEnded).toBe(false); // …which the core had not answered
    console.log(`core silent: 503 after ${r.ms.toFixed(0)} ms (CORE_TIMEOUT_MS ${gk.config.coreTimeoutMs})`);
  });

  it('retries once on a fresh connection when a reused keep-alive socket is reset', async () => {
    const seen = new WeakSet<object>();
    let calls = 0;
    core.onForward = (_p, _b, res) => {
      calls++;
      const socket = res.socket!;
      if (seen.has(socket)) {
        socket.destroy(); // as if the core closed the idle socket just as it was reused
        return;
      }
      seen.add(socket);
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(String(calls));
    };
    expect((await post(gk.port, '/command', 'x')).body).toBe('1');
    const r = await post(gk.port, '/command', 'x'); // reuses the first socket, which is reset
    expect(r.status).toBe(200);
    expect(r.body).toBe('3');
    expect(calls).toBe(3);
  });

  it('recovers once the core answers again, over the keep-alive agent', async () => {
    core.onForward = (_p, _b, res) => res.writeHead(500).end();
    expectBusy(await post(gk.port, '/command', 'x'));
    core.onForward = (_p, _b, res) => res.writeHead(200).end('1');
    for (let i = 0; i < 5; i++) expect((await post(gk.port, '/command', 'x')).body).toBe('1');
  });
});
