/** Properties: random or corrupted bodies and random command fields never give 500 (or crash). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { COMMAND_NAMES, b64 } from '@zax/protocol';
import { command, commandBody, establishSession, mint, nonceAt, proveBody, startCore, type Core, type Session } from './helpers.js';
import { tweetnaclCrypto as C } from '@zax/protocol';

let core: Core;
let s: Session;
beforeAll(async () => {
  core = await startCore();
  s = await establishSession(core);
});
afterAll(async () => {
  await core.close();
});

const line = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.uint8Array({ maxLength: 200 }).map((b) => b64(b)),
  fc.constantFrom(44, 32, 256).chain((n) => fc.string({ minLength: n, maxLength: n })),
);
const body = fc.oneof(
  fc.array(line, { maxLength: 6 }).chain((ls) => fc.constantFrom('\r\n', '\n').map((sep) => ls.join(sep))),
  fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b).toString('latin1')),
);

describe('fuzz', () => {
  it('random bodies on /command and /prove → 4xx only', async () => {
    await fc.assert(
      fc.asyncProperty(body, fc.constantFrom('/command', '/prove'), async (b, path) => {
        const r = await core.post(path, b);
        expect([400, 401, 413]).toContain(r.status);
        expect(r.body).toBe('');
      }),
      { numRuns: 150 },
    );
  });

  it('a valid body with one character changed → 4xx, never 500', async () => {
    const { handshake } = await mint(core);
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.nat(), fc.integer({ min: 0, max: 127 }), async (isProve, pos, ch) => {
        const now = core.clock.nowSec();
        const valid = isProve
          ? proveBody({ handshake, identity: C.keyPair(), aSess: C.keyPair(), outerNonce: nonceAt(now), innerNonce: nonceAt(now), sign: new Uint8Array(32) })
          : commandBody(s, { cmd: 'count' }, { nowSec: now });
        const i = pos % valid.length;
        const corrupted = valid.slice(0, i) + String.fromCharCode(ch) + valid.slice(i + 1);
        const r = await core.post(isProve ? '/prove' : '/command', corrupted);
        expect(r.status).toBeLessThan(500);
        if (corrupted !== valid) expect(r.status).toBeGreaterThanOrEqual(400);
      }),
      { numRuns: 150 },
    );
  });

  it('random command fields under a live session → never 5xx', async () => {
    const value = fc.oneof(fc.anything({ maxDepth: 2 }), fc.constant(s.hpk), fc.constant(b64(nonceAt(0))), fc.integer(), fc.array(fc.constant(s.hpk)));
    const cmd = fc.record(
      {
        cmd: fc.constantFrom(...COMMAND_NAMES),
        to: value,
        payload: fc.oneof(value, fc.record({ ctext: value, nonce: value }, { requiredKeys: [] })),
        start: value,
        count: value,
        from: value,
        token: value,
        size: fc.oneof(value, fc.integer({ min: 1, max: 100 })),
        uploadID: value,
        part: value,
      },
      { requiredKeys: ['cmd'] },
    );
    await fc.assert(
      fc.asyncProperty(cmd, async (c) => {
        const r = await command(core, s, c);
        expect([200, 400, 405, 413, 429]).toContain(r.status);
      }),
      { numRuns: 200 },
    );
  });
});
