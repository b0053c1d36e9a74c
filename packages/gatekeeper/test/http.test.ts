/** HTTP surface of the gatekeeper: routing, headers, body limits, /start_session (docs/PROTOCOL.md §2, §4.1). */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TEXT_F, TEXT_G, TEXT_TOO_LARGE, b64, h2 } from '@zax/protocol';
import { loadVector } from '../../../test/support/vectors.js';
import { post, request, startGatekeeper, type Gatekeeper, type Reply } from './helpers.js';

interface FramingCase {
  name: string;
  body: string;
  expected_status: number;
  expected_x_error_details: string | null;
}
const framing = loadVector<{ client_token_b64: string; cases: FramingCase[] }>('framing.json');

const CT_B64 = framing.client_token_b64;
const RT = Buffer.from(Array.from({ length: 32 }, (_, i) => 0x65 + i));
const API = ['/start_session', '/verify_session', '/prove', '/command'];

function expectCommonHeaders(r: Reply): void {
  expect(r.headers['access-control-allow-origin']).toBe('*');
  expect(r.headers['access-control-expose-headers']).toBe('X-Error-Details, Retry-After');
  expect(r.headers['cache-control']).toBe('no-store');
  expect(r.headers['x-content-type-options']).toBe('nosniff');
  expect(r.headers['set-cookie']).toBeUndefined();
}

function expectError(r: Reply, status: number, details: string | null): void {
  expect(r.status).toBe(status);
  expect(r.body).toBe('');
  expect(r.headers['x-error-details']).toBe(details ?? undefined);
  expectCommonHeaders(r);
}

let gk: Gatekeeper;
let randomCalls = 0;
beforeEach(async () => {
  randomCalls = 0;
  gk = await startGatekeeper({
    random: (n) => {
      randomCalls++;
      return randomCalls === 1 ? RT.subarray(0, n) : Buffer.alloc(n, randomCalls);
    },
  });
});
afterEach(() => gk.close());

describe('framing vectors on /start_session', () => {
  it('gives every case its status and X-Error-Details; all 200 cases return the same relay token', async () => {
    const tokens = new Set<string>();
    for (const c of framing.cases) {
      const r = await post(gk.port, '/start_session', c.body);
      expect({ name: c.name, status: r.status, details: r.headers['x-error-details'] ?? null }).toEqual({
        name: c.name,
        status: c.expected_status,
        details: c.expected_x_error_details,
      });
      expectCommonHeaders(r);
      if (r.status === 200) tokens.add(r.body.split('\r\n')[0]!);
      else expect(r.body).toBe('');
    }
    expect(tokens).toEqual(new Set([b64(RT)]));
  });
});

describe('/start_session', () => {
  it('answers 2 CRLF-joined lines: the relay token, then the difficulty (no trailing CRLF)', async () => {
    const r = await post(gk.port, '/start_session', CT_B64);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
    expectCommonHeaders(r);
    expect(r.body).toBe(`${b64(RT)}\r\n0`);
    expect(r.body).toHaveLength(47); // the docs/PROTOCOL.md §4.1 example
  });

  it('announces the configured difficulty', async () => {
    await gk.close();
    gk = await startGatekeeper({ env: { DIFFICULTY: '12' } });
    const r = await post(gk.port, '/start_session', CT_B64);
    expect(r.status).toBe(200);
    expect(r.body).toMatch(/^[A-Za-z0-9+/]{43}=\r\n12$/);
  });

  it('gives different client tokens different relay tokens', async () => {
    const a = await post(gk.port, '/start_session', CT_B64);
    const b = await post(gk.port, '/start_session', b64(Buffer.alloc(32, 9)));
    expect(a.body.split('\r\n')[0]).not.toBe(b.body.split('\r\n')[0]);
  });

  it('keeps the relay token for tokenTtlSec from the first call however often it is repeated (D8)', async () => {
    const first = (await post(gk.port, '/start_session', CT_B64)).body;
    gk.clock.ms += 150_000;
    expect((await post(gk.port, '/start_session', CT_B64)).body).toBe(first);
    gk.clock.ms += 149_999;
    expect((await post(gk.port, '/start_session', CT_B64)).body).toBe(first);
    gk.clock.ms += 1;
    const renewed = (await post(gk.port, '/start_session', CT_B64)).body;
    expect(renewed).not.toBe(first);
  });

  it('stores the handshake under h2(client_token) in the edge prefix', async () => {
    await post(gk.port, '/start_session', CT_B64);
    const id = b64(h2(Buffer.from(CT_B64, 'base64')));
    expect(await gk.redis.hget(`${gk.prefix}hs:${id}`, 'rt')).toBe(b64(RT));
  });

  it('ignores the request Content-Type', async () => {
    for (const ct of ['application/json', 'application/x-www-form-urlencoded', 'text/plain']) {
      const r = await request(gk.port, { path: '/start_session', body: CT_B64, headers: { 'content-type': ct } });
      expect(r.status).toBe(200);
    }
  });

  it('accepts a chunked body', async () => {
    const r = await request(gk.port, { path: '/start_session', body: `${CT_B64}\r\n`, chunkBytes: 5 });
    expect(r.status).toBe(200);
    expect(r.body).toBe(`${b64(RT)}\r\n0`);
  });
});

describe('routing', () => {
  it('answers 404 with an empty body and no X-Error-Details for unknown paths, whatever the method', async () => {
    for (const path of ['/foo', '/COMMAND', '/prove_hpk', '/start_session.json', '/', '/start_session//']) {
      for (const method of ['POST', 'GET', 'OPTIONS']) {
        expectError(await request(gk.port, { method, path, body: CT_B64 }), 404, null);
      }
    }
  });

  it('answers 405 with Allow and an empty body for other methods on API paths', async () => {
    for (const path of API) {
      for (const method of ['GET', 'PUT', 'HEAD', 'DELETE', 'PATCH']) {
        const r = await request(gk.port, { method, path });
        expectError(r, 405, null);
        expect(r.headers['allow']).toBe('POST, OPTIONS');
      }
    }
  });

  it('answers a CORS preflight with 204 and the preflight headers', async () => {
    for (const path of API) {
      const r = await request(gk.port, { method: 'OPTIONS', path });
      expect(r.status).toBe(204);
      expect(r.body).toBe('');
      expect(r.headers['access-control-allow-methods']).toBe('POST, OPTIONS');
      expect(r.headers['access-control-allow-headers']).toBe('Content-Type');
      expect(r.headers['access-control-max-age']).toBe('86400');
      expect(r.headers['content-type']).toBeUndefined();
      expectCommonHeaders(r);
    }
  });

  it('treats //start_session, /start_session/ and /start_session?x=1 as /start_session', async () => {
    for (const path of ['//start_session', '///start_session', '/start_session/', '/start_session?x=1', '//start_session/?a=b']) {
      const r = await post(gk.port, path, CT_B64);
      expect({ path, status: r.status, body: r.body }).toEqual({ path, status: 200, body: `${b64(RT)}\r\n0` });
    }
  });

  it('serves /livez and /readyz', async () => {
    expect((await request(gk.port, { method: 'GET', path: '/livez' })).status).toBe(200);
    expect((await request(gk.port, { method: 'GET', path: '/readyz' })).status).toBe(200);
  });
});

describe('body limits (413, checked before parsing)', () => {
  const big = (n: number): string => 'A'.repeat(n);

  it('refuses handshake bodies above MAX_HANDSHAKE_BODY_BYTES, by Content-Length and chunked', async () => {
    for (const path of ['/start_session', '/verify_session', '/prove']) {
      expectError(await post(gk.port, path, big(4097)), 413, TEXT_TOO_LARGE);
      expectError(await request(gk.port, { path, body: big(4097), chunkBytes: 1000 }), 413, TEXT_TOO_LARGE);
    }
  });

  it('lets a handshake body of exactly the limit through to parsing (400 F, not 413)', async () => {
    expectError(await post(gk.port, '/start_session', big(4096)), 400, TEXT_F);
    expectError(await request(gk.port, { path: '/verify_session', body: big(4096), chunkBytes: 512 }), 400, TEXT_F);
  });

  it('refuses /command bodies above MAX_COMMAND_BODY_BYTES, by Content-Length and chunked', async () => {
    expectError(await post(gk.port, '/command', big(1048577)), 413, TEXT_TOO_LARGE);
    expectError(await request(gk.port, { path: '/command', body: big(1048577), chunkBytes: 65536 }), 413, TEXT_TOO_LARGE);
  });

  it('keeps serving on the same server after a 413', async () => {
    expectError(await post(gk.port, '/start_session', big(100_000)), 413, TEXT_TOO_LARGE);
    expect((await post(gk.port, '/start_session', CT_B64)).status).toBe(200);
  });
});

describe('/verify_session format checks', () => {
  const id = b64(h2(Buffer.from(CT_B64, 'base64')));
  const answer = b64(h2(Buffer.from(CT_B64, 'base64'), RT));

  it('gives 401 G for an unknown handshake', async () => {
    expectError(await post(gk.port, '/verify_session', `${id}\r\n${answer}`), 401, TEXT_G);
  });

  it('gives 400 F for 1 line, 3 lines or a 43-char line', async () => {
    await post(gk.port, '/start_session', CT_B64);
    expectError(await post(gk.port, '/verify_session', id), 400, TEXT_F);
    expectError(await post(gk.port, '/verify_session', `${id}\r\n${answer}\r\n${answer}`), 400, TEXT_F);
    expectError(await post(gk.port, '/verify_session', `${id}\r\n${answer.slice(0, 43)}`), 400, TEXT_F);
    expectError(await post(gk.port, '/verify_session', `${id.slice(0, 43)}\r\n${answer}`), 400, TEXT_F);
    expectError(await post(gk.port, '/verify_session', ''), 400, TEXT_F);
  });

  it('gives 400 G for 44-char lines that decode to 31 or 33 bytes, or are not strict base64', async () => {
    await post(gk.port, '/start_session', CT_B64);
    const b31 = `${b64(Buffer.alloc(31, 1))}`; // 44 chars with "=="
    const b33 = `${b64(Buffer.alloc(33, 1))}`; // 44 chars, no padding
    expect(b31).toHaveLength(44);
    expect(b33).toHaveLength(44);
    expectError(await post(gk.port, '/verify_session', `${id}\r\n${b31}`), 400, TEXT_G);
    expectError(await post(gk.port, '/verify_session', `${id}\r\n${b33}`), 400, TEXT_G);
    expectError(await post(gk.port, '/verify_session', `${b33}\r\n${answer}`), 400, TEXT_G);
    expectError(await post(gk.port, '/verify_session', `${id}\r\n${answer.slice(0, 42)}B=`), 400, TEXT_G);
  });
});
