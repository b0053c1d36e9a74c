/** Nothing a client sends gives a 5xx or takes the process down (docs/DESIGN.md "Tests"). */
import net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { b64, h2 } from '@zax/protocol';
import { post, request, startGatekeeper, type Gatekeeper } from './helpers.js';

let gk: Gatekeeper;
beforeAll(async () => {
  // Hundreds of handshakes from one address under a frozen clock: the budgets are tested elsewhere.
  gk = await startGatekeeper({ env: { HANDSHAKE_BURST_PER_IP: '0', REQUEST_BURST_PER_IP: '0' } });
});
afterAll(() => gk.close());

const b64Char = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \r\n\t'.split(''));
const lineish = fc.array(fc.oneof(fc.string({ unit: b64Char, minLength: 40, maxLength: 48 }), fc.constant(b64(Buffer.alloc(32, 3)))), {
  maxLength: 4,
});
const bodies = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  lineish.chain((lines) => fc.constantFrom('\r\n', '\n').map((sep) => Buffer.from(lines.join(sep), 'latin1'))),
);

describe('random and corrupted bodies', () => {
  it('always get 200, 400 or 401 with an empty error body on the handshake endpoints', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('/start_session', '/verify_session'), bodies, async (path, body) => {
        const r = await post(gk.port, path, body);
        expect([200, 400, 401]).toContain(r.status);
        if (r.status !== 200) expect(r.body).toBe('');
      }),
      { numRuns: 150 },
    );
  });

  it('a valid verify for a started handshake with a random answer is 401, never 5xx', async () => {
    const ct = Buffer.alloc(32, 0x42);
    await post(gk.port, '/start_session', b64(ct));
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 32, maxLength: 32 }), async (answer) => {
        const r = await post(gk.port, '/verify_session', `${b64(h2(ct))}\r\n${b64(answer)}`);
        expect(r.status).toBe(401);
      }),
      { numRuns: 30 },
    );
  });
});

describe('broken clients', () => {
  it('survives a client that aborts mid-body, and one that sends garbage instead of HTTP', async () => {
    for (const path of ['/start_session', '/verify_session', '/command', '/prove']) {
      await new Promise<void>((resolve) => {
        const s = net.connect(gk.port, '127.0.0.1', () => {
          s.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nAQID`);
          setTimeout(() => {
            s.destroy();
            resolve();
          }, 20);
        });
        s.on('error', () => resolve());
      });
    }
    await new Promise<void>((resolve) => {
      const s = net.connect(gk.port, '127.0.0.1', () => s.end('\x00\x01GARBAGE\r\n\r\n'));
      s.on('data', () => {});
      s.on('close', () => resolve());
      s.on('error', () => resolve());
    });
    await new Promise<void>((resolve) => {
      const s = net.connect(gk.port, '127.0.0.1', () => {
        s.write('POST /command HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nAQIDB\r\n');
        setTimeout(() => {
          s.destroy();
          resolve();
        }, 20);
      });
      s.on('error', () => resolve());
    });
    expect((await request(gk.port, { method: 'GET', path: '/livez' })).status).toBe(200);
    expect((await post(gk.port, '/start_session', b64(Buffer.alloc(32, 1)))).status).toBe(200);
  });
});
