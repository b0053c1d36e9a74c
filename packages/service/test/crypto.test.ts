/**
 * The Crypto interface on both backends (tweetnacl, the reference, from @zax/protocol; sodium-native,
 * the fast path the services load), against the prove.json and command_count.json vectors, and
 * cross-checked on random inputs.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { b64, h2, tweetnaclCrypto, type Crypto } from '@zax/protocol';
import { bestCrypto, sodiumCrypto } from '@zax/service';
import { hex, loadVector, unb64 } from '../../../test/support/vectors.js';

const prove = loadVector('prove.json');
const count = loadVector('command_count.json');
const k = prove.keys;

const sodium = sodiumCrypto();
const backends: Crypto[] = [tweetnaclCrypto, ...(sodium ? [sodium] : [])];

it('sodium-native loads here and is the backend the services pick', () => {
  expect(sodium).not.toBeNull();
  expect(bestCrypto().name).toBe('sodium-native');
});

for (const c of backends) {
  describe(`${c.name}`, () => {
    describe('key pairs', () => {
      it('derives the vector public keys from the secret keys', () => {
        expect(Buffer.from(c.keyPairFromSecretKey(hex(k.a_comm_sk_hex)).publicKey).toString('base64')).toBe(k.a_comm_pk_b64);
        expect(Buffer.from(c.keyPairFromSecretKey(hex(k.a_sess_sk_hex)).publicKey).toString('base64')).toBe(k.a_sess_pk_b64);
        expect(Buffer.from(c.keyPairFromSecretKey(hex(k.r_sess_sk_hex)).publicKey).toString('base64')).toBe(k.r_sess_pk_b64);
        expect(b64(h2(unb64(k.a_comm_pk_b64)))).toBe(prove.hpk_b64);
      });
      it('makes fresh, distinct key pairs', () => {
        const a = c.keyPair();
        const b = c.keyPair();
        expect(a.publicKey).toHaveLength(32);
        expect(Buffer.from(a.secretKey).equals(Buffer.from(b.secretKey))).toBe(false);
        expect(Buffer.from(c.keyPairFromSecretKey(a.secretKey).publicKey).equals(Buffer.from(a.publicKey))).toBe(true);
      });
    });

    describe('boxes (vectors/prove.json, vectors/command_count.json)', () => {
      const rSess = c.keyPairFromSecretKey(hex(k.r_sess_sk_hex));
      const aSess = hex(k.a_sess_sk_hex);
      const aComm = hex(k.a_comm_sk_hex);
      it('reproduces the /prove inner and outer boxes byte for byte', () => {
        const inner = c.box(hex(prove.prove.session_sign_hex), unb64(prove.prove.nonce_inner_b64), rSess.publicKey, aComm);
        expect(Buffer.from(inner).toString('base64')).toBe(prove.prove.inner_ctext_b64);
        const outer = c.box(Buffer.from(prove.prove.inner_json), unb64(prove.prove.nonce_outer_b64), rSess.publicKey, aSess);
        expect(Buffer.from(outer).toString('base64')).toBe(prove.prove.outer_ctext_b64);
      });
      it('opens them on the relay side', () => {
        const outer = c.boxOpen(unb64(prove.prove.outer_ctext_b64), unb64(prove.prove.nonce_outer_b64), unb64(k.a_sess_pk_b64), rSess.secretKey);
        expect(Buffer.from(outer!).toString()).toBe(prove.prove.inner_json);
        const inner = c.boxOpen(unb64(prove.prove.inner_ctext_b64), unb64(prove.prove.nonce_inner_b64), unb64(k.a_comm_pk_b64), rSess.secretKey);
        expect(Buffer.from(inner!).toString('hex')).toBe(prove.prove.session_sign_hex);
      });
      it('precomputed keys give the same boxes (command and response of command_count.json)', () => {
        const relayKey = c.before(unb64(count.session.a_sess_pk_b64), hex(count.session.r_sess_sk_hex))!;
        const clientKey = c.before(unb64(count.session.r_sess_pk_b64), hex(count.session.a_sess_sk_hex))!;
        expect(Buffer.from(relayKey).equals(Buffer.from(clientKey))).toBe(true);
        const req = c.boxAfter(Buffer.from(count.request.plaintext_json), unb64(count.request.nonce_b64), clientKey);
        expect(Buffer.from(req).toString('base64')).toBe(count.request.ctext_b64);
        const rsp = c.boxAfter(Buffer.from(count.response.plaintext_json), unb64(count.response.nonce_b64), relayKey);
        expect(Buffer.from(rsp).toString('base64')).toBe(count.response.ctext_b64);
        expect(Buffer.from(c.boxOpenAfter(unb64(count.request.ctext_b64), unb64(count.request.nonce_b64), relayKey)!).toString()).toBe('{"cmd":"count"}');
      });
      it('secretboxInto seals the same bytes as boxAfter, into the caller\'s buffer', () => {
        const key = c.before(unb64(count.session.r_sess_pk_b64), hex(count.session.a_sess_sk_hex))!;
        const msg = Buffer.from(count.request.plaintext_json);
        for (const extra of [16, 32]) {
          const out = new Uint8Array(msg.length + extra);
          const box = c.secretboxInto!(out, msg, unb64(count.request.nonce_b64), key);
          expect(box.buffer).toBe(out.buffer);
          expect(Buffer.from(box).toString('base64')).toBe(count.request.ctext_b64);
        }
        expect(() => c.secretboxInto!(new Uint8Array(msg.length + 15), msg, unb64(count.request.nonce_b64), key)).toThrow();
      });
      it('treats a low-order public key (all-zero shared secret) as undecryptable', () => {
        const zero = new Uint8Array(32);
        expect(c.before(zero, rSess.secretKey)).toBeNull();
        expect(c.boxOpen(new Uint8Array(48), new Uint8Array(24), zero, rSess.secretKey)).toBeNull();
        expect(() => c.box(new Uint8Array(1), new Uint8Array(24), zero, rSess.secretKey)).toThrow();
        // the other small-order point of order 1 (u = 1) gives a zero shared secret too
        const one = new Uint8Array(32);
        one[0] = 1;
        expect(c.before(one, rSess.secretKey)).toBeNull();
      });
      it('rejects wrong sizes instead of throwing', () => {
        expect(c.boxOpen(new Uint8Array(10), new Uint8Array(24), rSess.publicKey, aSess)).toBeNull();
        expect(c.boxOpen(new Uint8Array(32), new Uint8Array(23), rSess.publicKey, aSess)).toBeNull();
        expect(c.boxOpenAfter(new Uint8Array(32), new Uint8Array(24), new Uint8Array(31))).toBeNull();
      });
      it('round-trips and detects any flipped bit (property)', () => {
        const a = c.keyPair();
        const b = c.keyPair();
        fc.assert(
          fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), (msg, bit) => {
            const n = c.randomBytes(24);
            const boxed = c.box(msg, n, b.publicKey, a.secretKey);
            expect(Buffer.from(c.boxOpen(boxed, n, a.publicKey, b.secretKey)!)).toEqual(Buffer.from(msg));
            const bad = Uint8Array.from(boxed);
            bad[Math.floor(bit / 8) % bad.length]! ^= 1 << bit % 8;
            expect(c.boxOpen(bad, n, a.publicKey, b.secretKey)).toBeNull();
          }),
          { numRuns: 200 },
        );
      });
    });
  });
}

describe('the two backends agree (property)', () => {
  const a = tweetnaclCrypto;
  const b = sodium!;
  it('on key pairs, shared keys and boxes of random inputs', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ minLength: 24, maxLength: 24 }), (sk1, sk2, msg, nonce) => {
        const p1 = a.keyPairFromSecretKey(sk1);
        expect(Buffer.from(b.keyPairFromSecretKey(sk1).publicKey)).toEqual(Buffer.from(p1.publicKey));
        const p2 = b.keyPairFromSecretKey(sk2);
        const ka = a.before(p2.publicKey, sk1);
        const kb = b.before(p2.publicKey, sk1);
        expect(kb === null ? null : Buffer.from(kb)).toEqual(ka === null ? null : Buffer.from(ka));
        if (ka === null) return;
        const boxA = a.box(msg, nonce, p2.publicKey, sk1);
        expect(Buffer.from(b.box(msg, nonce, p2.publicKey, sk1))).toEqual(Buffer.from(boxA));
        expect(Buffer.from(b.boxOpen(boxA, nonce, p1.publicKey, sk2)!)).toEqual(Buffer.from(msg));
        expect(Buffer.from(a.boxOpenAfter(b.boxAfter(msg, nonce, ka), nonce, ka)!)).toEqual(Buffer.from(msg));
      }),
      { numRuns: 300 },
    );
  });
});
