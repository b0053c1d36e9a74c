/**
 * `/command` envelope and `/prove` rules over HTTP (docs/PROTOCOL.md §3.2, §3.3, §4.3, §4.4): checklist
 * items 28–30, 32–34, 53–55, 58, 60–64. Runs once on each core Crypto backend.
 */
import nacl from 'tweetnacl';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TEXT_F, TEXT_G, b64, hsalsa20, randomBytes, tweetnaclCrypto } from '@zax/protocol';
import { loadVector, unb64 } from '../../../test/support/vectors.js';
import {
  CORE_BACKENDS,
  T0,
  command,
  commandBody,
  commandPlain,
  establishSession,
  hpkOf,
  mint,
  nonceAt,
  openResponse,
  proveBody,
  startCore,
  type Core,
  type HttpReply,
} from './helpers.js';

const C = tweetnaclCrypto;

/** The object with a padding field so that its JSON is exactly 176 bytes (the real inner JSON size). */
function sized(o: Record<string, unknown>): Record<string, unknown> {
  const base = JSON.stringify({ ...o, p: '' }).length;
  return { ...o, p: 'x'.repeat(176 - base) };
}

function expectG(r: HttpReply, status = 400, label?: string): void {
  expect(r.status, label).toBe(status);
  expect(r.headers.get('x-error-details'), label).toBe(TEXT_G);
  expect(r.body, label).toBe('');
}

/**
 * Low-order X25519 points (u-coordinates, little-endian). With any secret key their shared secret is
 * all zero, so without the check the box key is HSalsa20 of 32 zero bytes: a key anyone can compute.
 */
const LOW_ORDER_POINTS: ReadonlyArray<readonly [string, Buffer]> = [
  ['0', Buffer.alloc(32)],
  ['1', Buffer.from('01' + '00'.repeat(31), 'hex')],
  ['a point of order 8', Buffer.from('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', 'hex')],
  ['p - 1', Buffer.from('ec' + 'ff'.repeat(30) + '7f', 'hex')],
];
/** The key an attacker seals under with a low-order point: HSalsa20(32 zero bytes). */
const ZERO_SECRET_KEY = hsalsa20(new Uint8Array(32));

it('raw NaCl (no low-order check) derives HSalsa20(0) from every low-order point, whatever the secret key', () => {
  for (const [name, point] of LOW_ORDER_POINTS) {
    expect(Buffer.from(nacl.box.before(point, nacl.randomBytes(32))).equals(Buffer.from(ZERO_SECRET_KEY)), name).toBe(true);
  }
});

for (const crypto of CORE_BACKENDS) {
  describe(`core on ${crypto.name}`, () => {
    let core: Core;
    beforeEach(async () => {
      core = await startCore({ crypto });
    });
    afterEach(async () => {
      await core.close();
    });

    describe('checked nonces (§3.2)', () => {
      it('accepts timestamps within ±60 s and refuses ±61 s (nonce.json, item 28)', async () => {
        const s = await establishSession(core);
        const v = loadVector('nonce.json');
        for (const w of v.window_checks as Array<{ nonce_b64: string; relay_clock: number; accept: boolean; label: string }>) {
          core.clock.ms = w.relay_clock * 1000;
          // The vector's random part is shared by all cases: keep the timestamp, vary the rest.
          const nonce = unb64(w.nonce_b64);
          nonce.set(randomBytes(16), 8);
          const r = await core.post('/command', commandBody(s, { cmd: 'count' }, { nonce }));
          expect(r.status, w.label).toBe(w.accept ? 200 : 400);
        }
        for (const m of v.malformed as Array<{ nonce_b64: string; label: string }>) {
          const body = [s.hpk, m.nonce_b64, b64(randomBytes(40))].join('\r\n');
          const r = await core.post('/command', body);
          // A nonce line that is not 32 chars is a framing error; a 32-char one that fails is 400 G.
          expect(r.status, m.label).toBe(400);
          expect(r.headers.get('x-error-details'), m.label).toBe(m.nonce_b64.length === 32 ? TEXT_G : TEXT_F);
        }
      });

      it('a repeated body is a replay (item 29)', async () => {
        const s = await establishSession(core);
        const body = commandBody(s, { cmd: 'count' });
        expect((await core.post('/command', body)).status).toBe(200);
        expectG(await core.post('/command', body));
      });

      it('/prove nonces (inner and outer) cannot be reused by /command (item 30)', async () => {
        const { handshake } = await mint(core);
        const identity = C.keyPair();
        const aSess = C.keyPair();
        const outerNonce = nonceAt(T0);
        const innerNonce = nonceAt(T0);
        expect((await core.post('/prove', proveBody({ handshake, identity, aSess, outerNonce, innerNonce }))).status).toBe(200);
        const s = { hpk: hpkOf(identity), sharedKey: C.before(handshake.relaySessionPk, aSess.secretKey)! };
        expectG(await core.post('/command', commandBody(s, { cmd: 'count' }, { nonce: outerNonce })));
        expectG(await core.post('/command', commandBody(s, { cmd: 'count' }, { nonce: innerNonce })));
        expect((await core.post('/command', commandBody(s, { cmd: 'count' }))).status).toBe(200);
      });

      it('a request refused for want of authentication does not use up its nonce (item 33)', async () => {
        const s = await establishSession(core);
        const nonce = nonceAt(T0);
        const noSession = commandBody({ hpk: b64(randomBytes(32)), sharedKey: s.sharedKey }, { cmd: 'count' }, { nonce });
        expectG(await core.post('/command', noSession), 401);
        const wrongKey = commandBody({ hpk: s.hpk, sharedKey: randomBytes(32) }, { cmd: 'count' }, { nonce });
        expectG(await core.post('/command', wrongKey), 401);
        expect((await core.post('/command', commandBody(s, { cmd: 'count' }, { nonce }))).status).toBe(200);
      });

      it('the replay cache is per hpk: a replay is 400 G whatever the box, the same nonce under another hpk is not a replay', async () => {
        const [s, t] = [await establishSession(core), await establishSession(core)];
        const nonce = nonceAt(T0);
        expect((await core.post('/command', commandBody(s, { cmd: 'count' }, { nonce }))).status).toBe(200);
        expectG(await core.post('/command', commandBody(s, { cmd: 'count' }, { nonce })));
        expectG(await core.post('/command', commandBody({ hpk: s.hpk, sharedKey: randomBytes(32) }, { cmd: 'count' }, { nonce })));
        expect((await core.post('/command', commandBody(t, { cmd: 'count' }, { nonce }))).status).toBe(200);
      });

      it('message nonces are not checked for freshness (item 34)', async () => {
        const s = await establishSession(core);
        const old = b64(Buffer.concat([Buffer.alloc(8), randomBytes(16)]));
        const token = await commandPlain(core, s, { cmd: 'upload', to: s.hpk, payload: { nonce: old, ctext: 'x' } });
        expect(token).toHaveLength(44);
      });
    });

    describe('/prove (§4.3)', () => {
      it('a /prove whose inner nonce equals its outer nonce → 400 G (item 32)', async () => {
        const { handshake } = await mint(core);
        const n = nonceAt(T0);
        expectG(await core.post('/prove', proveBody({ handshake, identity: C.keyPair(), aSess: C.keyPair(), outerNonce: n, innerNonce: n })));
      });

      it('answers the live message count of the hpk (item 54)', async () => {
        const identity = C.keyPair();
        const first = await establishSession(core, identity);
        expect(first.proveReply.body).toBe('0');
        const other = await establishSession(core);
        for (let i = 0; i < 3; i++) await commandPlain(core, other, { cmd: 'upload', to: first.hpk, payload: `m${i}` });
        expect((await establishSession(core, identity)).proveReply.body).toBe('3');
      });

      it('before mint, after expiry, or for an unknown id → 401 G (items 45, 46)', async () => {
        const { handshake } = await mint(core, { expiresAtMs: core.clock.nowMs() + 300_000 });
        const parts = { handshake, identity: C.keyPair(), aSess: C.keyPair() };
        core.clock.advanceSec(300);
        const now = core.clock.nowSec();
        expectG(await core.post('/prove', proveBody({ ...parts, outerNonce: nonceAt(now), innerNonce: nonceAt(now) })), 401);
        const unknown = { ...handshake, handshakeId: b64(randomBytes(32)) };
        expectG(await core.post('/prove', proveBody({ ...parts, handshake: unknown, outerNonce: nonceAt(now), innerNonce: nonceAt(now) })), 401);
      });

      it('keeps the order of its checks: the handshake first, then a_sess_pk, then the outer nonce', async () => {
        const { handshake } = await mint(core);
        const unknown = { ...handshake, handshakeId: b64(randomBytes(32)) };
        const parts = { identity: C.keyPair(), aSess: C.keyPair() };
        const used = nonceAt(T0);
        // `used` spent by a successful /prove of another handshake.
        const other = (await mint(core)).handshake;
        expect((await core.post('/prove', proveBody({ identity: C.keyPair(), aSess: C.keyPair(), handshake: other, outerNonce: used, innerNonce: nonceAt(T0) }))).status).toBe(200);
        // A replayed outer nonce: 401 without a live handshake (step 3 first), 400 with one (step 5).
        expectG(await core.post('/prove', proveBody({ ...parts, handshake: unknown, outerNonce: used, innerNonce: nonceAt(T0) })), 401);
        expectG(await core.post('/prove', proveBody({ ...parts, handshake, outerNonce: used, innerNonce: nonceAt(T0) })));
        // An a_sess_pk line that is not 32 bytes: 401 without a live handshake, 400 with one.
        const badPk = (h: typeof handshake): string => {
          const lines = proveBody({ ...parts, handshake: h, outerNonce: nonceAt(T0), innerNonce: nonceAt(T0) }).split('\r\n');
          lines[1] = b64(randomBytes(31)); // 44 characters, 31 bytes
          return lines.join('\r\n');
        };
        expect((await core.post('/prove', badPk(unknown))).status).toBe(401);
        expect((await core.post('/prove', badPk(handshake))).status).toBe(400);
        // The handshake is still there: a well-formed /prove succeeds.
        expect((await core.post('/prove', proveBody({ ...parts, handshake, outerNonce: nonceAt(T0), innerNonce: nonceAt(T0) }))).status).toBe(200);
      });

      it('a wrong signature → 401 G, pretty-printed inner JSON → 400 F (items 49, 51)', async () => {
        const { handshake } = await mint(core);
        const parts = { handshake, identity: C.keyPair(), aSess: C.keyPair() };
        expectG(await core.post('/prove', proveBody({ ...parts, outerNonce: nonceAt(T0), innerNonce: nonceAt(T0), sign: randomBytes(32) })), 401);
        const pretty = proveBody({ ...parts, outerNonce: nonceAt(T0), innerNonce: nonceAt(T0), innerJson: (f) => ({ ...f, pad: '  ' }) });
        const r = await core.post('/prove', pretty);
        expect(r.status).toBe(400);
        expect(r.headers.get('x-error-details')).toBe(TEXT_F);
      });

      it('inner JSON that is not an object, lacks ctext or has a non-string pub_key → 400 G (item 50)', async () => {
        const { handshake } = await mint(core);
        const parts = { handshake, identity: C.keyPair(), aSess: C.keyPair() };
        // Keep the inner JSON at 176 bytes so the outer line stays 256 chars and only step 7 fails.
        const cases: Array<(f: { pub_key: string; nonce: string; ctext: string }) => unknown> = [
          (f) => sized({ pub_key: f.pub_key, nonce: f.nonce }),
          (f) => sized({ pub_key: 12345, nonce: f.nonce, ctext: f.ctext }),
          (f) => sized({ pub_key: f.pub_key, nonce: f.nonce, ctext: 7 }),
          (f) => sized({ pub_key: f.pub_key, nonce: 'AAAA', ctext: f.ctext }),
          (f) => [f.pub_key, f.nonce, f.ctext, 'x'.repeat(176 - 2 - 3 * 2 - 3 - 44 - 32 - 64 - 2)],
        ];
        for (const innerJson of cases) {
          const body = proveBody({ ...parts, outerNonce: nonceAt(T0), innerNonce: nonceAt(T0), innerJson });
          expect(body.split('\r\n')[3]).toHaveLength(256);
          expectG(await core.post('/prove', body));
        }
        // The handshake is still there: a correct proof succeeds (item 52).
        expect((await core.post('/prove', proveBody({ ...parts, outerNonce: nonceAt(T0), innerNonce: nonceAt(T0) }))).status).toBe(200);
      });

    });

    describe('low-order keys (§3.3, item 55)', () => {
      it('the forged construction is accepted when its keys are real (control for the two tests below)', async () => {
        const { handshake } = await mint(core);
        const identity = C.keyPair();
        const aSess = C.keyPair();
        const body = proveBody({
          handshake,
          identity,
          aSess,
          outerNonce: nonceAt(T0),
          innerNonce: nonceAt(T0),
          outerKey: C.before(handshake.relaySessionPk, aSess.secretKey)!,
          innerKey: C.before(handshake.relaySessionPk, identity.secretKey)!,
        });
        expect((await core.post('/prove', body)).status).toBe(200);
      });

      it('a low-order a_sess_pk → 400 G although the outer box opens under HSalsa20(0); nothing is created', async () => {
        const { handshake } = await mint(core);
        const identity = C.keyPair();
        for (const [name, point] of LOW_ORDER_POINTS) {
          // A proof the relay would accept if it derived the key: the inner box and the signature are
          // real, the signature covers the low-order a_sess_pk.
          const aSess = { publicKey: point, secretKey: new Uint8Array(32) };
          const body = proveBody({ handshake, identity, aSess, outerNonce: nonceAt(T0), innerNonce: nonceAt(T0), outerKey: ZERO_SECRET_KEY });
          expectG(await core.post('/prove', body), 400, `a_sess_pk = ${name}`);
        }
        // No session for the identity, the handshake is still there: the real proof succeeds.
        expectG(await core.post('/command', commandBody({ hpk: hpkOf(identity), sharedKey: ZERO_SECRET_KEY }, { cmd: 'count' })), 401);
        expect((await core.post('/prove', proveBody({ handshake, identity, aSess: C.keyPair(), outerNonce: nonceAt(T0), innerNonce: nonceAt(T0) }))).status).toBe(200);
      });

      it('a low-order pub_key → 400 G although the inner box opens under HSalsa20(0); nothing is created', async () => {
        const { handshake } = await mint(core);
        const aSess = C.keyPair();
        for (const [name, point] of LOW_ORDER_POINTS) {
          // A valid outer box holding an identity whose box key anyone can compute.
          const identity = { publicKey: point, secretKey: new Uint8Array(32) };
          const body = proveBody({ handshake, identity, aSess, outerNonce: nonceAt(T0), innerNonce: nonceAt(T0), innerKey: ZERO_SECRET_KEY });
          expectG(await core.post('/prove', body), 400, `pub_key = ${name}`);
          const sharedKey = C.before(handshake.relaySessionPk, aSess.secretKey)!;
          expectG(await core.post('/command', commandBody({ hpk: hpkOf(identity), sharedKey }, { cmd: 'count' })), 401, `no session for h2(${name})`);
        }
        expect((await core.post('/prove', proveBody({ handshake, identity: C.keyPair(), aSess, outerNonce: nonceAt(T0), innerNonce: nonceAt(T0) }))).status).toBe(200);
      });

      it('a low-order a_sess_pk with a random outer box → 400 G', async () => {
        const { handshake } = await mint(core);
        for (const [name, point] of LOW_ORDER_POINTS) {
          const body = [handshake.handshakeId, b64(point), b64(nonceAt(T0)), b64(randomBytes(192))].join('\r\n');
          expectG(await core.post('/prove', body), 400, name);
        }
      });
    });

    describe('/command envelope (§4.4)', () => {
      it('no session → 401 G (item 58)', async () => {
        const s = await establishSession(core);
        expectG(await core.post('/command', commandBody({ ...s, hpk: b64(randomBytes(32)) }, { cmd: 'count' })), 401);
      });

      it('a second /prove replaces the session: old keys 401 G, new keys 200 (item 60)', async () => {
        const identity = C.keyPair();
        const first = await establishSession(core, identity);
        const second = await establishSession(core, identity);
        expectG(await command(core, first, { cmd: 'count' }), 401);
        const r = await command(core, second, { cmd: 'count' });
        expect(r.status).toBe(200);
        expect(openResponse(second, r.body)).toBe('0');
      });

      it('corrupted ciphertext → 401 G (D5) and the session keeps working (item 61)', async () => {
        const s = await establishSession(core);
        const lines = commandBody(s, { cmd: 'count' }).split('\r\n');
        const box = unb64(lines[2]!);
        box[box.length - 1]! ^= 1;
        expectG(await core.post('/command', [lines[0], lines[1], b64(box)].join('\r\n')), 401);
        expect((await command(core, s, { cmd: 'count' })).status).toBe(200);
      });

      it('invalid JSON, non-object, no cmd, unknown cmd → 400 G (item 62)', async () => {
        const s = await establishSession(core);
        for (const p of ['{"cmd":"count"', '[1,2]', '"count"', '42', '{}', '{"cmd":"Count"}', '{"cmd":"nope"}', '{"cmd":null}', '\xff']) {
          expectG(await core.post('/command', commandBody(s, p)));
        }
        // Invalid UTF-8 in the plaintext.
        const nonce = nonceAt(T0);
        const box = C.boxAfter(Buffer.from([0x7b, 0xff, 0x7d]), nonce, s.sharedKey);
        expectG(await core.post('/command', [s.hpk, b64(nonce), b64(box)].join('\r\n')));
      });

      it('2 or 5 lines, bad line lengths, empty lines → 400 F (item 63)', async () => {
        const s = await establishSession(core);
        const lines = commandBody(s, { cmd: 'count' }).split('\r\n');
        for (const body of [
          lines.slice(0, 2).join('\r\n'),
          [...lines, 'AAAA', 'AAAA'].join('\r\n'),
          [lines[0], lines[1], ''].join('\r\n'),
          [lines[0], lines[1], lines[2], ''].join('\r\n') + '\r\n',
          [lines[0] + 'A', lines[1], lines[2]].join('\r\n'),
          [lines[0], lines[1]!.slice(1), lines[2]].join('\r\n'),
          '',
        ]) {
          const r = await core.post('/command', body);
          expect(r.status).toBe(400);
          expect(r.headers.get('x-error-details')).toBe(TEXT_F);
        }
      });

      it('an invalid hpk line, or non-base64 lines 3/4 → 400 G, never 500 (item 64)', async () => {
        const s = await establishSession(core);
        const lines = commandBody(s, { cmd: 'count' }).split('\r\n');
        expectG(await core.post('/command', ['!' + lines[0]!.slice(1), lines[1], lines[2]].join('\r\n')));
        expectG(await core.post('/command', [s.hpk, b64(nonceAt(T0)), lines[2] + ' '].join('\r\n')));
        const four = commandBody(s, { cmd: 'count' }, { line4: 'AB==' });
        expectG(await core.post('/command', four));
        // A valid line 4 is ignored by other commands.
        expect((await core.post('/command', commandBody(s, { cmd: 'count' }, { line4: 'AA==' }))).status).toBe(200);
      });

      it('LF separators and one trailing line break are accepted (items 11, 12)', async () => {
        const s = await establishSession(core);
        expect((await core.post('/command', commandBody(s, { cmd: 'count' }, { sep: '\n' }))).status).toBe(200);
        expect((await core.post('/command', commandBody(s, { cmd: 'count' }) + '\r\n')).status).toBe(200);
        expect((await core.post('/command', commandBody(s, { cmd: 'count' }) + '\n')).status).toBe(200);
        expect((await core.post('/command', commandBody(s, { cmd: 'count' }) + '\r\n\r\n')).status).toBe(400);
      });

      it('encrypted responses are 2 CRLF lines with a fresh relay nonce at the relay clock (item 20)', async () => {
        const s = await establishSession(core);
        const a = await command(core, s, { cmd: 'count' });
        const b = await command(core, s, { cmd: 'count' });
        const [na] = a.body.split('\r\n');
        const [nb] = b.body.split('\r\n');
        expect(na).not.toBe(nb);
        expect(unb64(na!).readUInt32BE(4)).toBe(T0);
        expect(a.body.endsWith('\r\n')).toBe(false);
      });
    });
  });
}
