/**
 * docs/PROTOCOL.md §8 conformance over real HTTP against real processes (Redis, core, gatekeeper).
 * Each test names the checklist items it covers ("§8.n"). Items that need an injected clock or
 * injected keys are in vectors.test.ts; the file items (88–98) are in packages/core/test/files-*
 * and test/e2e/files.test.ts; throttling and the difficulty grace window (17, 25, 26) in
 * packages/gatekeeper/test and test/defenses.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { b64, h2, hsalsa20, tweetnaclCrypto as nacl, TEXT_F, TEXT_G } from '@zax/protocol';
import { Relay, post } from '../support/relay.js';
import { loadVector } from '../support/vectors.js';
import * as raw from '../support/raw.js';

let relay: Relay;
let url: string;

beforeAll(async () => {
  relay = await Relay.start({ redisUrl: inject('redisUrl'), env: { MAILBOX_QUOTA: '3' } });
  url = relay.url;
});
afterAll(async () => relay?.stop());

/**
 * Low-order X25519 points (u-coordinates, little-endian): with any secret key the shared secret is all
 * zero, so a relay without the check would use HSalsa20 of 32 zero bytes as the box key.
 */
const LOW_ORDER_POINTS: ReadonlyArray<readonly [string, Buffer]> = [
  ['0', Buffer.alloc(32)],
  ['1', Buffer.from('01' + '00'.repeat(31), 'hex')],
  ['a point of order 8', Buffer.from('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', 'hex')],
];
const ZERO_SECRET_KEY = hsalsa20(new Uint8Array(32));

/**
 * A /prove body for identity `comm` with session key `sess`. The outer box is sealed under
 * `outerKey` and the inner box under `innerKey` when given (forged boxes), else under the real keys.
 */
function proveSealed(
  hs: raw.Handshake,
  comm: { publicKey: Uint8Array; secretKey?: Uint8Array },
  sess: { publicKey: Uint8Array; secretKey?: Uint8Array },
  outerKey: Uint8Array | undefined,
  innerKey: Uint8Array | undefined,
): string {
  const rpk = hs.relaySessionPk!;
  const keyOf = (forged: Uint8Array | undefined, sk: Uint8Array | undefined): Uint8Array => forged ?? nacl.before(rpk, sk!)!;
  const innerNonce = raw.freshNonce();
  const outerNonce = raw.freshNonce();
  const sign = h2(sess.publicKey, hs.relayToken, hs.clientToken);
  const inner = nacl.boxAfter(sign, innerNonce, keyOf(innerKey, comm.secretKey));
  const json = JSON.stringify({ pub_key: b64(comm.publicKey), nonce: b64(innerNonce), ctext: b64(inner) });
  const outer = nacl.boxAfter(Buffer.from(json), outerNonce, keyOf(outerKey, sess.secretKey));
  return [hs.handshakeId, b64(sess.publicKey), b64(outerNonce), b64(outer)].join('\r\n');
}

const G = TEXT_G;
const F = TEXT_F;
const details = (r: { headers: Headers }): string | null => r.headers.get('x-error-details');

describe('HTTP, framing, encoding', () => {
  it('§8.1 §8.2 §8.7 success responses: 200, text/plain, CORS, no-store, CRLF only between lines', async () => {
    const r = await post(`${url}/start_session`, b64(raw.rnd(32)));
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.headers.get('set-cookie')).toBeNull();
    expect(r.text.endsWith('\r\n')).toBe(false);
    expect(r.text.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
    const s = await raw.connect(url);
    const c = await raw.command(s, { cmd: 'count' });
    expect(c.status).toBe(200);
    expect(c.text.split('\r\n')).toHaveLength(2);
    expect(c.text.endsWith('\r\n')).toBe(false);
  });

  it('§8.3 OPTIONS preflight on each API path', async () => {
    for (const p of ['/start_session', '/verify_session', '/prove', '/command']) {
      const r = await fetch(url + p, { method: 'OPTIONS' });
      expect(r.status).toBe(204);
      expect(r.headers.get('access-control-allow-origin')).toBe('*');
      expect(r.headers.get('access-control-allow-methods')).toBe('POST, OPTIONS');
      expect(r.headers.get('access-control-allow-headers')).toBe('Content-Type');
    }
  });

  it('§8.4 GET, PUT, HEAD → 405 with Allow and an empty body', async () => {
    for (const p of ['/start_session', '/verify_session', '/prove', '/command']) {
      for (const method of ['GET', 'PUT', 'HEAD', 'DELETE']) {
        const r = await fetch(url + p, { method, body: method === 'PUT' ? 'x' : undefined });
        expect(r.status).toBe(405);
        expect(r.headers.get('allow')).toBe('POST, OPTIONS');
        expect(await r.text()).toBe('');
        expect(r.headers.get('access-control-allow-origin')).toBe('*');
      }
    }
  });

  it('§8.5 unknown paths → 404, empty body, no X-Error-Details', async () => {
    for (const p of ['/foo', '/COMMAND', '/prove_hpk', '/start_session.json', '/', '/internal/sessions']) {
      for (const method of ['POST', 'GET', 'OPTIONS']) {
        const r = await fetch(url + p, { method, body: method === 'POST' ? 'x' : undefined });
        expect(r.status, `${method} ${p}`).toBe(404);
        expect(await r.text()).toBe('');
        expect(details(r)).toBeNull();
      }
    }
  });

  it('§8.6 //path, path/ and ?query behave like the path', async () => {
    const ct = b64(raw.rnd(32));
    const a = await post(`${url}/start_session`, ct);
    for (const p of ['/start_session/', '//start_session', '/start_session?x=1', '///start_session/?y']) {
      const r = await post(url + p, ct);
      expect(r.status).toBe(200);
      expect(r.text).toBe(a.text);
    }
    const s = await raw.connect(url);
    const r = await post(`${url}//command`, raw.commandBody(s, { cmd: 'count' }));
    expect(r.status).toBe(200);
  });

  it('§8.8 §8.10 §8.12 §8.13 vectors/framing.json on /start_session', async () => {
    const v = loadVector('framing.json');
    let relayToken: string | null = null;
    for (const c of v.cases) {
      const r = await post(`${url}/start_session`, c.body);
      expect(r.status, c.name).toBe(c.expected_status);
      expect(details(r), c.name).toBe(c.expected_x_error_details);
      if (r.status === 200) {
        const rt = r.text.split('\r\n')[0]!;
        relayToken ??= rt;
        expect(rt).toBe(relayToken);
      } else {
        expect(r.text).toBe('');
      }
    }
    expect(relayToken).not.toBeNull();
  });

  it('§8.9 the request Content-Type changes nothing', async () => {
    const ct = b64(raw.rnd(32));
    const texts = new Set<string>();
    for (const type of [undefined, 'text/plain', 'application/json', 'application/x-www-form-urlencoded']) {
      const r = await fetch(`${url}/start_session`, { method: 'POST', body: ct, headers: type ? { 'content-type': type } : {} });
      expect(r.status).toBe(200);
      texts.add(await r.text());
    }
    expect(texts.size).toBe(1);
  });

  it('§8.11 LF separators on every endpoint', async () => {
    const id = raw.newIdentity();
    const hs = await raw.startSession(url);
    const v = await post(`${url}/verify_session`, raw.verifyBody(hs).replace(/\r\n/g, '\n'));
    expect(v.status).toBe(200);
    const verified = { ...hs, relaySessionPk: Buffer.from(v.text, 'base64') };
    const { body, session } = raw.proveBody(verified, id);
    const p = await post(`${url}/prove`, body.replace(/\r\n/g, '\n') + '\n');
    expect(p.status).toBe(200);
    const s = raw.sessionOf(url, id, verified, session);
    const c = await post(`${url}/command`, raw.commandBody(s, { cmd: 'count' }).replace(/\r\n/g, '\n'));
    expect(c.status).toBe(200);
  });

  it('§8.14 bodies above the limits → 413 with an empty body', async () => {
    const big = await post(`${url}/start_session`, 'A'.repeat(4097));
    expect(big.status).toBe(413);
    expect(big.text).toBe('');
    for (const p of ['/verify_session', '/prove']) expect((await post(url + p, 'A'.repeat(5000))).status).toBe(413);
    const cmd = await post(`${url}/command`, 'A'.repeat(1048577));
    expect(cmd.status).toBe(413);
    expect(cmd.text).toBe('');
    // chunked, no Content-Length
    const stream = new ReadableStream({
      start(ctl) {
        for (let i = 0; i < 5; i++) ctl.enqueue(new Uint8Array(1000).fill(65));
        ctl.close();
      },
    });
    const r = await fetch(`${url}/start_session`, { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(r.status).toBe(413);
  });

  it('§8.15 vectors/base64.json as 32-byte and 24-byte fields', async () => {
    const v = loadVector('base64.json');
    const s = await raw.connect(url);
    for (const c of v.cases) {
      if (c.input.length === 44) {
        const r = await post(`${url}/start_session`, c.input);
        expect(r.status, c.label).toBe(c.accept_as_32_byte_field ? 200 : 400);
      }
      if (c.input.length === 32) {
        // as a message nonce (format-checked only, never for freshness)
        const r = await raw.command(s, { cmd: 'upload', to: s.id.hpk, payload: { ctext: 'x', nonce: c.input } });
        expect(r.status, c.label).toBe(c.accept_as_24_byte_field ? 200 : 400);
        if (r.status === 200) expect((await raw.command(s, { cmd: 'delete', payload: [c.input] })).text).toBe('0');
      }
    }
  });

  it('§8.16 base64 in responses is canonical and padded', async () => {
    const s = await raw.connect(url);
    const up = await raw.command(s, { cmd: 'upload', to: s.id.hpk, payload: 'x' });
    expect(up.text).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    const d = await raw.command(s, { cmd: 'download' });
    const [item] = JSON.parse(d.plain!);
    expect(item.from).toBe(s.id.hpk);
    expect(Buffer.from(item.nonce, 'base64').toString('base64')).toBe(item.nonce);
  });
});

describe('proof of work and handshake', () => {
  it('§8.22 at difficulty 0 only h2(ct‖rt) is accepted', async () => {
    const hs = await raw.startSession(url);
    for (const wrong of [h2(hs.clientToken), h2(hs.relayToken, hs.clientToken), raw.rnd(32)]) {
      const r = await post(`${url}/verify_session`, `${hs.handshakeId}\r\n${b64(wrong)}`);
      expect(r.status).toBe(401);
      expect(details(r)).toBe(G);
    }
    const ok = await post(`${url}/verify_session`, `${hs.handshakeId}\r\n${b64(h2(hs.clientToken, hs.relayToken))}`);
    expect(ok.status).toBe(200);
  });

  it('§8.35 §8.36 §8.38 start_session: 2 lines, same token on repeat, distinct per client', async () => {
    const ct = b64(raw.rnd(32));
    const a = await post(`${url}/start_session`, ct);
    const lines = a.text.split('\r\n');
    expect(lines).toHaveLength(2);
    expect(Buffer.from(lines[0]!, 'base64')).toHaveLength(32);
    expect(lines[0]).toHaveLength(44);
    expect(lines[1]).toBe('0');
    expect((await post(`${url}/start_session`, ct)).text).toBe(a.text);
    expect((await post(`${url}/start_session`, b64(raw.rnd(32)))).text.split('\r\n')[0]).not.toBe(lines[0]);
  });

  it('§8.39 raw bytes, base64 of 24 bytes, empty body → 400', async () => {
    expect((await post(`${url}/start_session`, raw.rnd(32))).status).toBe(400);
    const r24 = await post(`${url}/start_session`, b64(raw.rnd(24)));
    expect(r24.status).toBe(400);
    expect(details(r24)).toBe(F);
    const empty = await post(`${url}/start_session`, '');
    expect(empty.status).toBe(400);
    expect(details(empty)).toBe(F);
  });

  it('§8.40 §8.41 verify_session: unknown handshake 401; wrong line count or length 400 F', async () => {
    const unknown = await post(`${url}/verify_session`, `${b64(raw.rnd(32))}\r\n${b64(raw.rnd(32))}`);
    expect(unknown.status).toBe(401);
    expect(details(unknown)).toBe(G);
    const hs = await raw.startSession(url);
    const ans = b64(h2(hs.clientToken, hs.relayToken));
    for (const body of [hs.handshakeId, `${hs.handshakeId}\r\n${ans}\r\n${ans}`, `${hs.handshakeId}\r\n${ans.slice(0, 43)}`]) {
      const r = await post(`${url}/verify_session`, body);
      expect(r.status).toBe(400);
      expect(details(r)).toBe(F);
    }
  });

  it('§8.42 §8.43 §8.44 verify: one 44-char line; idempotent; 401 after prove', async () => {
    const hs = await raw.startSession(url);
    const a = await post(`${url}/verify_session`, raw.verifyBody(hs));
    expect(a.status).toBe(200);
    expect(a.text).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    const b = await post(`${url}/verify_session`, raw.verifyBody(hs));
    expect(b.text).toBe(a.text);
    const id = raw.newIdentity();
    const p = await post(`${url}/prove`, raw.proveBody({ ...hs, relaySessionPk: Buffer.from(a.text, 'base64') }, id).body);
    expect(p.status).toBe(200);
    expect(p.headers.get('x-zax-consumed-handshake')).toBeNull();
    const after = await post(`${url}/verify_session`, raw.verifyBody(hs));
    expect(after.status).toBe(401);
    expect(details(after)).toBe(G);
    // the same client token can start afresh, with a new relay token
    const again = await raw.startSession(url, hs.clientToken);
    expect(again.relayToken.equals(hs.relayToken)).toBe(false);
    expect((await post(`${url}/verify_session`, raw.verifyBody(again))).status).toBe(200);
  });

  it('§8.45 prove before verify → 401 G', async () => {
    const hs = await raw.startSession(url);
    const fake = { ...hs, relaySessionPk: Buffer.from(raw.newIdentity().comm.publicKey) };
    const r = await post(`${url}/prove`, raw.proveBody(fake, raw.newIdentity()).body);
    expect(r.status).toBe(401);
    expect(details(r)).toBe(G);
  });

  it('§8.55 control: the /prove builder of the low-order case is accepted when its keys are real', async () => {
    const hs = await raw.verifySession(url, await raw.startSession(url));
    const r = await post(`${url}/prove`, proveSealed(hs, raw.newIdentity().comm, nacl.keyPair(), undefined, undefined));
    expect([r.status, r.text]).toEqual([200, '0']);
  });

  it('§8.49 §8.50 §8.51 §8.52 §8.53 §8.54 §8.55 prove failures, retry, repeat and the count', async () => {
    const hs = await raw.verifySession(url, await raw.startSession(url));
    const id = raw.newIdentity();
    // 49: pretty-printed JSON makes line 4 longer than 256 chars
    const pretty = raw.proveBody(hs, id, { innerJson: (p) => JSON.stringify(p, null, 1) }).body;
    expect(await post(`${url}/prove`, pretty).then((r) => [r.status, details(r)])).toEqual([400, F]);
    // 50: non-object, no ctext, non-string pub_key (each kept at 176 bytes)
    const pad = (s: string): string => s + ' '.repeat(176 - s.length);
    for (const f of [
      () => pad('[1,2,3]'),
      (p: { pub_key: string; nonce: string }) => pad(JSON.stringify({ pub_key: p.pub_key, nonce: p.nonce, sign: 'x' })),
      (p: { nonce: string; ctext: string }) => pad(JSON.stringify({ pub_key: 5, nonce: p.nonce, ctext: p.ctext })),
    ]) {
      const r = await post(`${url}/prove`, raw.proveBody(hs, id, { innerJson: f as never }).body);
      expect([r.status, details(r)]).toEqual([400, G]);
    }
    // 51: wrong signature → 401 G
    const wrongSig = raw.proveBody(hs, id, { signature: h2('not the signature') }).body;
    expect(await post(`${url}/prove`, wrongSig).then((r) => [r.status, details(r)])).toEqual([401, G]);
    // 55: low-order a_sess_pk or pub_key → 400 G, although each box is sealed under the key a relay
    // without the check would derive (so it would open them and accept the proof)
    for (const [name, point] of LOW_ORDER_POINTS) {
      const lowSess = proveSealed(hs, id.comm, { publicKey: point }, ZERO_SECRET_KEY, undefined);
      expect(await post(`${url}/prove`, lowSess).then((r) => [r.status, details(r)]), `a_sess_pk = ${name}`).toEqual([400, G]);
      const lowPub = proveSealed(hs, { publicKey: point }, nacl.keyPair(), undefined, ZERO_SECRET_KEY);
      expect(await post(`${url}/prove`, lowPub).then((r) => [r.status, details(r)]), `pub_key = ${name}`).toEqual([400, G]);
    }
    // 52: after all that, a correct prove on the same handshake succeeds; 54: it answers the count
    await raw.command(await raw.connect(url), { cmd: 'upload', to: id.hpk, payload: 'for id' });
    const good = raw.proveBody(hs, id).body;
    const ok = await post(`${url}/prove`, good);
    expect([ok.status, ok.text]).toEqual([200, '1']);
    // 53: repeating it is never 200
    const again = await post(`${url}/prove`, good);
    expect([400, 401]).toContain(again.status);
    expect(details(again)).toBe(G);
  });
});

describe('nonces and the /command envelope', () => {
  it('§8.28 command nonce window ±60 s', async () => {
    const s = await raw.connect(url);
    // allow a second of clock movement at the edges
    expect((await raw.command(s, { cmd: 'count' }, { nonce: raw.freshNonce(-59) })).status).toBe(200);
    expect((await raw.command(s, { cmd: 'count' }, { nonce: raw.freshNonce(59) })).status).toBe(200);
    for (const off of [-62, 62, -3600]) {
      const r = await raw.command(s, { cmd: 'count' }, { nonce: raw.freshNonce(off) });
      expect([r.status, details(r)]).toEqual([400, G]);
    }
  });

  it('§8.29 §8.33 replays are 400 G; a request refused for want of a session leaves its nonce unused', async () => {
    const s = await raw.connect(url);
    const body = raw.commandBody(s, { cmd: 'count' });
    expect((await post(`${url}/command`, body)).status).toBe(200);
    expect(await post(`${url}/command`, body).then((r) => [r.status, details(r)])).toEqual([400, G]);
    const nobody = { ...s, id: raw.newIdentity() };
    const failing = raw.commandBody(nobody, { cmd: 'count' });
    expect((await post(`${url}/command`, failing)).status).toBe(401);
    expect((await post(`${url}/command`, failing)).status).toBe(401);
  });

  it('§8.30 §8.32 prove nonces are in the same replay cache', async () => {
    const hs = await raw.verifySession(url, await raw.startSession(url));
    const id = raw.newIdentity();
    const outerNonce = raw.freshNonce();
    const innerNonce = raw.freshNonce();
    const dup = raw.freshNonce();
    const r32 = await post(`${url}/prove`, raw.proveBody(hs, id, { outerNonce: dup, innerNonce: dup }).body);
    expect([r32.status, details(r32)]).toEqual([400, G]);
    const p = await post(`${url}/prove`, raw.proveBody(hs, id, { outerNonce, innerNonce }).body);
    expect(p.status).toBe(200);
    const s = await raw.connect(url, id);
    for (const n of [outerNonce, innerNonce]) {
      const r = await raw.command(s, { cmd: 'count' }, { nonce: n });
      expect([r.status, details(r)]).toEqual([400, G]);
    }
  });

  it('§8.31 of N concurrent identical commands exactly one succeeds; §8.65 concurrent distinct ones all do', async () => {
    const s = await raw.connect(url);
    const body = raw.commandBody(s, { cmd: 'count' });
    const rs = await Promise.all(Array.from({ length: 12 }, () => post(`${url}/command`, body)));
    expect(rs.filter((r) => r.status === 200)).toHaveLength(1);
    expect(rs.filter((r) => r.status === 400)).toHaveLength(11);
    const distinct = await Promise.all(Array.from({ length: 12 }, () => raw.command(s, { cmd: 'count' })));
    expect(distinct.every((r) => r.status === 200)).toBe(true);
  });

  it('§8.58 §8.60 §8.61 §8.62 §8.63 §8.64 envelope failures', async () => {
    const id = raw.newIdentity();
    const s1 = await raw.connect(url, id);
    const nobody = { ...s1, id: raw.newIdentity() };
    expect(await raw.command(nobody, { cmd: 'count' }).then((r) => [r.status, details(r)])).toEqual([401, G]);
    // 60: a second prove replaces the session
    const s2 = await raw.connect(url, id);
    expect((await raw.command(s1, { cmd: 'count' })).status).toBe(401);
    expect((await raw.command(s2, { cmd: 'count' })).status).toBe(200);
    // 61: corrupted ciphertext → 401, and the session still works
    const body = raw.commandBody(s2, { cmd: 'count' }).split('\r\n');
    const ct = Buffer.from(body[2]!, 'base64');
    ct[3]! ^= 1;
    body[2] = ct.toString('base64');
    expect((await post(`${url}/command`, body.join('\r\n'))).status).toBe(401);
    expect((await raw.command(s2, { cmd: 'count' })).status).toBe(200);
    // 62: invalid JSON, non-object, no cmd, unknown cmd
    for (const p of ['{"cmd":', '[1]', '"count"', '{}', '{"cmd":"Count"}', '{"cmd":"startSession"}', 'null']) {
      const r = await raw.command(s2, p);
      expect([r.status, details(r)], p).toEqual([400, G]);
    }
    // 63: 2 or 5 lines
    const lines = raw.commandBody(s2, { cmd: 'count' }).split('\r\n');
    for (const l of [lines.slice(0, 2), [...lines, 'AAAA', 'AAAA']]) {
      expect(await post(`${url}/command`, l.join('\r\n')).then((r) => [r.status, details(r)])).toEqual([400, F]);
    }
    // 64: invalid base64 hpk line
    const bad = raw.commandBody(s2, { cmd: 'count' }).replace(/^./, '!');
    expect(await post(`${url}/command`, bad).then((r) => [r.status, details(r)])).toEqual([400, G]);
  });
});

describe('message commands', () => {
  it('§8.66 §8.67 §8.68 §8.69 upload tokens, download shape, byte-identical data', async () => {
    const a = await raw.connect(url);
    const b = await raw.connect(url);
    const up1 = await raw.command(a, { cmd: 'upload', to: b.id.hpk, payload: '{"object":"message"}' });
    expect(up1.status).toBe(200);
    const nonce = b64(raw.freshNonce());
    const up2 = await raw.command(a, { cmd: 'upload', to: b.id.hpk, payload: { ctext: 'ünï ✓ \u2028 "q"', nonce } });
    expect(up2.text).toBe(b64(h2(b.id.hpk + nonce)));
    const d = await raw.command(b, { cmd: 'download' });
    const items = JSON.parse(d.plain!);
    expect(items).toHaveLength(2);
    for (const it of items) expect(Object.keys(it).sort()).toEqual(['data', 'from', 'kind', 'nonce', 'time']);
    expect(items[0].data).toBe('{"object":"message"}');
    expect(items[0].from).toBe(a.id.hpk);
    expect(items[0].kind).toBe('message');
    expect(up1.text).toBe(b64(h2(b.id.hpk + items[0].nonce)));
    expect(items[1].data).toBe('ünï ✓ \u2028 "q"');
    expect(items[1].nonce).toBe(nonce);
    expect(Math.abs(items[1].time - Date.now() / 1000)).toBeLessThan(5);
  });

  it('§8.70 §8.71 §8.72 upload validation', async () => {
    const a = await raw.connect(url);
    const to31 = b64(raw.rnd(31));
    const to33 = b64(raw.rnd(33));
    for (const cmd of [
      { to: to31, payload: 'x' },
      { to: to33, payload: 'x' },
      { to: a.id.hpk, payload: 5 },
      { to: a.id.hpk, payload: ['x'] },
      { to: a.id.hpk, payload: { nonce: b64(raw.rnd(24)) } },
      { to: a.id.hpk, payload: { ctext: 'x', nonce: b64(raw.rnd(23)) } },
    ]) {
      const r = await raw.command(a, { cmd: 'upload', ...cmd });
      expect([r.status, details(r)]).toEqual([400, G]);
    }
    const big = await raw.command(a, { cmd: 'upload', to: a.id.hpk, payload: 'x'.repeat(262145) });
    expect(big.status).toBe(413);
    expect(JSON.parse((await raw.command(a, { cmd: 'count' })).plain!)).toBe(0);
  });

  it('§8.73 §8.75 quota 3: a 4th message is 429 Mailbox is full; replacement keeps its place', async () => {
    const a = await raw.connect(url);
    const b = await raw.connect(url);
    const nonces = [0, 1, 2].map(() => b64(raw.freshNonce()));
    for (const [i, n] of nonces.entries()) {
      expect((await raw.command(a, { cmd: 'upload', to: b.id.hpk, payload: { ctext: `m${i}`, nonce: n } })).status).toBe(200);
    }
    const full = await raw.command(a, { cmd: 'upload', to: b.id.hpk, payload: 'fourth' });
    expect(full.status).toBe(429);
    expect(details(full)).toBe('Mailbox is full.');
    expect(Number(full.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await raw.command(a, { cmd: 'upload', to: b.id.hpk, payload: { ctext: 'm0 again', nonce: nonces[0] } })).status).toBe(200);
    const items = JSON.parse((await raw.command(b, { cmd: 'download' })).plain!);
    expect(items.map((i: { data: string }) => i.data)).toEqual(['m0 again', 'm1', 'm2']);
  });

  it('§8.74 §8.76 §8.77 §8.78 count and download paging, filters and validation', async () => {
    const a = await raw.connect(url);
    const c = await raw.connect(url);
    const b = await raw.connect(url);
    await raw.command(a, { cmd: 'upload', to: b.id.hpk, payload: 'a1' });
    await raw.command(c, { cmd: 'upload', to: b.id.hpk, payload: 'c1' });
    await raw.command(a, { cmd: 'upload', to: b.id.hpk, payload: 'a2' });
    expect((await raw.command(b, { cmd: 'count' })).plain).toBe('3');
    const page = async (q: object): Promise<string[]> => JSON.parse((await raw.command(b, { cmd: 'download', ...q })).plain!).map((i: { data: string }) => i.data);
    expect(await page({ start: 1, count: 1 })).toEqual(['c1']);
    expect(await page({ start: 5 })).toEqual([]);
    expect(await page({ count: 500 })).toEqual(['a1', 'c1', 'a2']);
    expect(await page({ from: [a.id.hpk] })).toEqual(['a1', 'a2']);
    expect(await page({ from: [c.id.hpk], start: 0, count: 1 })).toEqual(['c1']);
    for (const q of [{ count: 0 }, { count: '1' }, { start: -1 }, { start: 1.5 }]) {
      expect((await raw.command(b, { cmd: 'download', ...q })).status).toBe(400);
    }
  });

  it('§8.79 §8.80 §8.81 messageStatus', async () => {
    const a = await raw.connect(url);
    const b = await raw.connect(url);
    const up = await raw.command(a, { cmd: 'upload', to: b.id.hpk, payload: 'x' });
    const ttl = Number((await raw.command(a, { cmd: 'messageStatus', token: up.text })).text);
    expect(ttl).toBeGreaterThan(432000 - 5);
    expect(ttl).toBeLessThanOrEqual(432000);
    const [item] = JSON.parse((await raw.command(b, { cmd: 'download' })).plain!);
    expect((await raw.command(b, { cmd: 'delete', payload: [item.nonce] })).text).toBe('0');
    expect((await raw.command(a, { cmd: 'messageStatus', token: up.text })).text).toBe('-2');
    expect((await raw.command(a, { cmd: 'messageStatus', token: b64(raw.rnd(32)) })).text).toBe('-2');
    expect((await raw.command(a, { cmd: 'messageStatus', token: up.text.slice(1) })).status).toBe(400);
  });

  it('§8.82 §8.83 §8.84 delete', async () => {
    const a = await raw.connect(url);
    const b = await raw.connect(url);
    const n = b64(raw.freshNonce());
    await raw.command(a, { cmd: 'upload', to: b.id.hpk, payload: { ctext: 'x', nonce: n } });
    await raw.command(a, { cmd: 'upload', to: a.id.hpk, payload: { ctext: 'x', nonce: n } });
    expect((await raw.command(b, { cmd: 'delete', payload: [] })).text).toBe('1');
    expect((await raw.command(b, { cmd: 'delete', payload: Array(101).fill(n) })).status).toBe(400);
    expect((await raw.command(b, { cmd: 'delete', payload: n })).status).toBe(400);
    // a deletes n from its own mailbox only
    expect((await raw.command(a, { cmd: 'delete', payload: [n, n, 'unknown'] })).text).toBe('0');
    expect((await raw.command(b, { cmd: 'count' })).plain).toBe('1');
    expect((await raw.command(b, { cmd: 'delete', payload: [n] })).text).toBe('0');
  });

  it('§8.86 §8.87 getEntropy', async () => {
    const a = await raw.connect(url);
    const r = await raw.command(a, { cmd: 'getEntropy', size: 1000 });
    expect(r.lines).toHaveLength(1);
    const obj = JSON.parse(Buffer.from(r.text, 'base64').toString('utf8'));
    expect(Object.keys(obj)).toEqual(['entropy']);
    expect(Buffer.from(obj.entropy, 'base64')).toHaveLength(1000);
    for (const size of [0, 512001, '5']) expect((await raw.command(a, { cmd: 'getEntropy', size })).status).toBe(400);
  });

  it('§8.99 file commands answer 405 while the file store is disabled; upload and getEntropy still work', async () => {
    // The file store is on by default: this item needs a relay with FILE_STORE_ENABLED=false.
    const off = await Relay.start({ redisUrl: inject('redisUrl'), env: { FILE_STORE_ENABLED: 'false' } });
    try {
      const a = await raw.connect(off.url);
      const nonce = b64(raw.freshNonce());
      const uid = b64(raw.rnd(32));
      for (const cmd of [
        { cmd: 'startFileUpload', to: a.id.hpk, file_size: 10, metadata: { nonce, ctext: 'm' } },
        { cmd: 'fileStatus', uploadID: uid },
        { cmd: 'downloadFileChunk', uploadID: uid, part: 0 },
        { cmd: 'deleteFile', uploadID: uid },
      ]) {
        const r = await raw.command(a, cmd);
        expect([r.status, r.text, details(r)], cmd.cmd).toEqual([405, '', null]);
      }
      const up = await raw.command(a, { cmd: 'uploadFileChunk', uploadID: uid, part: 0, nonce }, { line4: 'AAAA' });
      expect(up.status).toBe(405);
      expect((await raw.command(a, { cmd: 'upload', to: a.id.hpk, payload: 'x' })).status).toBe(200);
    } finally {
      await off.stop();
    }
  });
});
