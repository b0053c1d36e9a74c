/**
 * `/prove` and `/command` against the shared vectors (prove.json, command_count.json), with the
 * vector tokens, the vector relay session key pair injected through `crypto.keyPair`, and the
 * clock at relay_clock. Checklist items 47, 48, 56, 57. Runs once on each core Crypto backend.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TEXT_G, b64, tweetnaclCrypto, type Crypto } from '@zax/protocol';
import { hex, loadVector, unb64 } from '../../../test/support/vectors.js';
import { CONSUMED, CORE_BACKENDS, FakeClock, mint, startCore, type Core } from './helpers.js';

interface Variant {
  name: string;
  body: string;
  expected_status: number;
  expected_x_error_details: string | null;
  expected_body?: string;
  expected_plaintext?: string;
}

const P = loadVector('prove.json');
const CC = loadVector('command_count.json');
const rSess = tweetnaclCrypto.keyPairFromSecretKey(hex(P.keys.r_sess_sk_hex));
const aSess = tweetnaclCrypto.keyPairFromSecretKey(hex(P.keys.a_sess_sk_hex));

/** `base`, but key pairs are the vector relay session pair and random bytes can be pinned. */
function vectorCrypto(base: Crypto): Crypto & { pinRandom(bytes: Buffer | null): void } {
  let pinned: Buffer | null = null;
  return {
    ...base,
    keyPair: () => rSess,
    randomBytes: (n: number) => (pinned !== null && pinned.length === n ? Buffer.from(pinned) : base.randomBytes(n)),
    pinRandom(bytes) {
      pinned = bytes;
    },
  };
}

let cores: Core[] = [];
afterEach(async () => {
  await Promise.all(cores.map((c) => c.close()));
  cores = [];
});

async function vectorCore(base: Crypto): Promise<{ core: Core; crypto: ReturnType<typeof vectorCrypto> }> {
  const crypto = vectorCrypto(base);
  const core = await startCore({ clock: new FakeClock(P.relay_clock * 1000), crypto });
  cores.push(core);
  const { reply } = await mint(core, { clientToken: unb64(P.client_token_b64), relayToken: unb64(P.relay_token_b64) });
  expect(reply.status).toBe(200);
  expect(JSON.parse(reply.body)).toEqual({ v: 1, status: 'ok', relaySessionPk: P.keys.r_sess_pk_b64 });
  return { core, crypto };
}

for (const backend of CORE_BACKENDS) {
  describe(`core on ${backend.name}`, () => {
    describe('prove.json', () => {
      it('the main request returns 200 "0" with the consumed-handshake header', async () => {
        const { core } = await vectorCore(backend);
        expect(P.prove.request_body.length).toBe(382);
        const r = await core.post('/prove', P.prove.request_body);
        expect(r.status).toBe(200);
        expect(r.body).toBe(P.prove.response_body);
        expect(r.headers.get(CONSUMED)).toBe(P.verify_session.request_lines[0]);
        expect(r.headers.get('content-type')).toBe('text/plain; charset=utf-8');
        expect(r.headers.get('x-error-details')).toBeNull();
        // The session exists for the vector hpk; the identity key is not stored anywhere.
        const keys = await core.redis.keys(`${core.prefix}*`);
        expect(keys).toContain(`${core.prefix}mb:{${P.hpk_b64}}:sess`);
        for (const k of keys) {
          const vals = (await core.redis.type(k)) === 'hash' ? Object.values(await core.redis.hgetall(k)) : [];
          expect(vals).not.toContain(P.keys.a_comm_pk_b64);
        }
      });

      it('a repeated mint after the proof answers 409 proven (verify-after-prove → 401 at the gatekeeper)', async () => {
        const { core } = await vectorCore(backend);
        expect((await core.post('/prove', P.prove.request_body)).status).toBe(200);
        const { reply } = await mint(core, { clientToken: unb64(P.client_token_b64), relayToken: unb64(P.relay_token_b64) });
        expect(reply.status).toBe(409);
        expect(JSON.parse(reply.body)).toEqual({ v: 1, status: 'proven' });
      });

      it('repeating the successful body never succeeds (item 53)', async () => {
        const { core } = await vectorCore(backend);
        expect((await core.post('/prove', P.prove.request_body)).status).toBe(200);
        const again = await core.post('/prove', P.prove.request_body);
        expect([400, 401]).toContain(again.status);
        expect(again.headers.get('x-error-details')).toBe(TEXT_G);
      });

      for (const v of P.prove_variants as Variant[]) {
        it(`variant: ${v.name} → ${v.expected_status}`, async () => {
          const { core } = await vectorCore(backend);
          const r = await core.post('/prove', v.body);
          expect(r.status).toBe(v.expected_status);
          expect(r.headers.get('x-error-details')).toBe(v.expected_x_error_details);
          if (v.expected_status === 200) {
            expect(r.body).toBe(v.expected_body);
            expect(r.headers.get(CONSUMED)).toBe(P.verify_session.request_lines[0]);
          } else {
            expect(r.body).toBe('');
            expect(r.headers.get(CONSUMED)).toBeNull();
            // A failed /prove leaves the handshake in place: the correct proof still succeeds (item 52).
            // (Every failing variant uses its own outer nonce, so the main body's nonces are unseen.)
            const ok = await core.post('/prove', P.prove.request_body);
            expect(ok.status).toBe(200);
          }
        });
      }
    });

    describe('command_count.json', () => {
      it('main request, then the variants in order', async () => {
        const { core, crypto } = await vectorCore(backend);
        expect((await core.post('/prove', P.prove.request_body)).status).toBe(200);

        // Pin the relay's response nonce to the vector's: clock at its timestamp, random part fixed.
        const rspNonce = unb64(CC.response.nonce_b64);
        core.clock.ms = rspNonce.readUInt32BE(4) * 1000;
        crypto.pinRandom(rspNonce.subarray(8));
        const r = await core.post('/command', CC.request.body);
        crypto.pinRandom(null);
        expect(r.status).toBe(200);
        expect(r.body).toBe(CC.response.body);
        expect(r.body.split('\r\n')).toHaveLength(CC.response.line_count);
        const [n, box] = r.body.split('\r\n') as [string, string];
        const opened = tweetnaclCrypto.boxOpen(unb64(box), unb64(n), unb64(P.keys.r_sess_pk_b64), aSess.secretKey);
        expect(Buffer.from(opened!).toString()).toBe('0');

        for (const v of CC.variants_in_order as Variant[]) {
          const rv = await core.post('/command', v.body);
          expect(rv.status, v.name).toBe(v.expected_status);
          expect(rv.headers.get('x-error-details'), v.name).toBe(v.expected_x_error_details);
          if (v.expected_plaintext !== undefined) {
            const [vn, vb] = rv.body.split('\r\n') as [string, string];
            const p = tweetnaclCrypto.boxOpen(unb64(vb), unb64(vn), rSess.publicKey, aSess.secretKey);
            expect(Buffer.from(p!).toString(), v.name).toBe(v.expected_plaintext);
          } else {
            expect(rv.body, v.name).toBe('');
          }
        }
      });
    });
  });
}

describe('command_count.json', () => {
  it('the request decrypts under the session the vector describes', () => {
    const shared = tweetnaclCrypto.before(aSess.publicKey, rSess.secretKey)!;
    const opened = tweetnaclCrypto.boxOpenAfter(unb64(CC.request.ctext_b64), unb64(CC.request.nonce_b64), shared);
    expect(Buffer.from(opened!).toString()).toBe(CC.request.plaintext_json);
    expect(b64(aSess.publicKey)).toBe(CC.session.a_sess_pk_b64);
  });
});
