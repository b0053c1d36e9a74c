/**
 * `secretboxInto` on the tweetnacl backend: the command_count.json boxes byte for byte, and the
 * same bytes as `boxAfter` for any message, whether `out` has the 32-byte padding room or only the
 * 16 bytes of the tag. (packages/service/test/crypto.test.ts checks the sodium-native one.)
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { tweetnaclCrypto } from '@zax/protocol';
import { hex, loadVector, unb64 } from '../../../test/support/vectors.js';

const count = loadVector('command_count.json');
const c = tweetnaclCrypto;
const into = c.secretboxInto!;

describe('tweetnacl secretboxInto', () => {
  it('reproduces the command and response boxes of command_count.json', () => {
    const key = c.before(unb64(count.session.r_sess_pk_b64), hex(count.session.a_sess_sk_hex))!;
    for (const m of [count.request, count.response]) {
      const msg = new TextEncoder().encode(m.plaintext_json);
      for (const extra of [16, 32, 100]) {
        const out = new Uint8Array(msg.length + extra).fill(0xee);
        const box = into(out, msg, unb64(m.nonce_b64), key);
        expect(box.buffer).toBe(out.buffer);
        expect(box.byteOffset).toBe(0);
        expect(Buffer.from(box).toString('base64')).toBe(m.ctext_b64);
      }
    }
  });

  it('gives the bytes of boxAfter, into a reused buffer (property)', () => {
    const out = new Uint8Array(3000 + 32);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.uint8Array({ minLength: 24, maxLength: 24 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.boolean(), (msg, nonce, key, tight) => {
        const target = tight ? new Uint8Array(msg.length + 16) : out;
        const box = into(target, msg, nonce, key);
        expect(Array.from(box)).toEqual(Array.from(c.boxAfter(msg, nonce, key)));
        expect(Array.from(c.boxOpenAfter(box, nonce, key)!)).toEqual(Array.from(msg));
      }),
    );
  });

  it('leaves the message intact and refuses a short buffer or bad sizes', () => {
    const msg = new Uint8Array([1, 2, 3]);
    into(new Uint8Array(64), msg, new Uint8Array(24), new Uint8Array(32));
    expect(Array.from(msg)).toEqual([1, 2, 3]);
    expect(() => into(new Uint8Array(18), msg, new Uint8Array(24), new Uint8Array(32))).toThrow(/19 needed/);
    expect(() => into(new Uint8Array(64), msg, new Uint8Array(23), new Uint8Array(32))).toThrow(/size/);
    expect(() => into(new Uint8Array(64), msg, new Uint8Array(24), new Uint8Array(31))).toThrow(/size/);
  });
});
