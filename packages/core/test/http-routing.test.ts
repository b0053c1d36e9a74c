/** Routing, the internal-secret gate, health, body limits and `/internal/sessions` over HTTP. */
import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { TEXT_F, TEXT_G, TEXT_TOO_LARGE, b64, h2, randomBytes } from '@zax/protocol';
import { SECRET, mint, startCore, type Core } from './helpers.js';

let cores: Core[] = [];
afterEach(async () => {
  await Promise.all(cores.map((c) => c.close()));
  cores = [];
});
async function core(env: Record<string, string> = {}): Promise<Core> {
  const c = await startCore({ env });
  cores.push(c);
  return c;
}

function expectCommonHeaders(h: Headers): void {
  expect(h.get('access-control-allow-origin')).toBe('*');
  expect(h.get('cache-control')).toBe('no-store');
  expect(h.get('access-control-expose-headers')).toBe('X-Error-Details, Retry-After');
}

describe('health', () => {
  it('/livez and /readyz answer 200 without the secret', async () => {
    const c = await core();
    for (const p of ['/livez', '/readyz']) {
      const r = await c.request('GET', p, undefined, { 'x-zax-internal-secret': '' });
      expect(r.status).toBe(200);
    }
  });
});

describe('internal secret', () => {
  it('every other route needs it: missing or wrong → 403 with an empty body', async () => {
    const c = await core();
    for (const [method, path] of [
      ['POST', '/command'],
      ['POST', '/prove'],
      ['POST', '/internal/sessions'],
      ['GET', '/foo'],
      ['OPTIONS', '/command'],
    ] as const) {
      for (const secret of [undefined, 'wrong-secret-wrong-secret', SECRET + 'x', SECRET.slice(0, -1)]) {
        const headers: Record<string, string> = secret === undefined ? {} : { 'x-zax-internal-secret': secret };
        const res = await fetch(c.url + path, { method, headers, body: method === 'POST' ? 'x' : undefined });
        expect(res.status, `${method} ${path} ${secret}`).toBe(403);
        expect(await res.text()).toBe('');
      }
    }
  });

  it('accepts the previous secret during rotation', async () => {
    const prev = 'previous-secret-0123456789';
    const c = await core({ INTERNAL_SECRET_PREVIOUS: prev });
    const r = await c.post('/command', 'x', { 'x-zax-internal-secret': prev });
    expect(r.status).toBe(400);
    expect((await c.post('/command', 'x')).status).toBe(400);
  });
});

describe('routing (docs/PROTOCOL.md §2.1)', () => {
  it('unknown paths → 404, no X-Error-Details', async () => {
    const c = await core();
    for (const p of ['/foo', '/COMMAND', '/prove_hpk', '/command.json', '/start_session', '/verify_session']) {
      const r = await c.post(p, 'x');
      expect(r.status, p).toBe(404);
      expect(r.body).toBe('');
      expect(r.headers.get('x-error-details')).toBeNull();
      expectCommonHeaders(r.headers);
    }
  });

  it('wrong method → 405 with Allow; OPTIONS → 204 preflight', async () => {
    const c = await core();
    for (const m of ['GET', 'PUT', 'DELETE']) {
      const r = await c.request(m, '/command');
      expect(r.status).toBe(405);
      expect(r.headers.get('allow')).toBe('POST, OPTIONS');
      expect(r.body).toBe('');
    }
    const o = await c.request('OPTIONS', '/prove');
    expect(o.status).toBe(204);
    expect(o.headers.get('access-control-allow-methods')).toBe('POST, OPTIONS');
    expect(o.headers.get('access-control-allow-headers')).toBe('Content-Type');
    expectCommonHeaders(o.headers);
  });

  it('normalises slashes and ignores the query', async () => {
    const c = await core();
    for (const p of ['//command', '/command/', '/command?x=1']) {
      const r = await c.post(p, '');
      expect(r.status, p).toBe(400);
      expect(r.headers.get('x-error-details')).toBe(TEXT_F);
      expectCommonHeaders(r.headers);
    }
  });
});

describe('body limits → 413 (DEVIATION D11)', () => {
  it('/prove above MAX_HANDSHAKE_BODY_BYTES', async () => {
    const c = await core();
    const r = await c.post('/prove', 'A'.repeat(4097));
    expect(r.status).toBe(413);
    expect(r.body).toBe('');
    expect(r.headers.get('x-error-details')).toBe(TEXT_TOO_LARGE);
    expect((await c.post('/prove', 'A'.repeat(4096))).status).toBe(400);
  });

  it('/command above MAX_COMMAND_BODY_BYTES, also when chunked', async () => {
    const c = await core({ MAX_CHUNK_SIZE: '3000', MAX_COMMAND_BODY_BYTES: '8096' });
    expect((await c.post('/command', 'A'.repeat(8097))).status).toBe(413);
    expect((await c.post('/command', 'A'.repeat(8096))).status).toBe(400);
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${c.url}/command`, { method: 'POST', headers: { 'x-zax-internal-secret': SECRET } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      for (let i = 0; i < 10; i++) req.write('A'.repeat(1000));
      req.end();
    });
    expect(status).toBe(413);
  });
});

describe('POST /internal/sessions', () => {
  it('mints once per relay token and answers the same key again (D9)', async () => {
    const c = await core();
    const ct = randomBytes(32);
    const rt = randomBytes(32);
    const a = await mint(c, { clientToken: ct, relayToken: rt });
    const b = await mint(c, { clientToken: ct, relayToken: rt });
    expect(a.reply.status).toBe(200);
    expect(a.reply.headers.get('content-type')).toBe('application/json');
    expect(b.reply.body).toBe(a.reply.body);
    expect(a.handshake.relaySessionPk).toHaveLength(32);
    const other = await mint(c, { clientToken: ct, relayToken: randomBytes(32) });
    expect(other.reply.status).toBe(200);
    expect(other.reply.body).not.toBe(a.reply.body);
  });

  it('refuses malformed requests with 400', async () => {
    const c = await core();
    const ct = randomBytes(32);
    const good = { v: 1, handshakeId: b64(h2(ct)), clientToken: b64(ct), relayToken: b64(randomBytes(32)), expiresAtMs: c.clock.nowMs() + 1000 };
    const bad: unknown[] = [
      'not json',
      [],
      { ...good, v: 2 },
      { ...good, handshakeId: b64(h2(randomBytes(32))) },
      { ...good, clientToken: 'AAAA' },
      { ...good, relayToken: b64(randomBytes(31)) },
      { ...good, expiresAtMs: '1' },
      { ...good, expiresAtMs: 1.5 },
    ];
    for (const body of bad) {
      const r = await c.post('/internal/sessions', typeof body === 'string' ? body : JSON.stringify(body));
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.headers.get('x-error-details')).toBe(TEXT_G);
    }
    expect((await c.post('/internal/sessions', JSON.stringify(good))).status).toBe(200);
    expect((await c.request('GET', '/internal/sessions')).status).toBe(405);
    expect((await c.post('/internal/sessions', 'x'.repeat(5000))).status).toBe(413);
  });
});
