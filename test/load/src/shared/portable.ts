/**
 * The portable Platform: @zax/protocol's tweetnacl backend over a CSPRNG the runtime hands in, and a
 * UTF-8 decoder without TextDecoder or Buffer. It needs nothing from Node, so the k6 bundles use it
 * as is; the node generator uses it with `--crypto portable`.
 */
import { tweetnaclCryptoWith } from '@zax/protocol';
import { cryptoPlatform, type Platform } from './wire.js';

/** Decodes UTF-8 (invalid sequences become U+FFFD): k6 has no TextDecoder. */
export function utf8Decode(b: Uint8Array): string {
  let out = '';
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    let cp = 0xfffd;
    let len = 1;
    if (c < 0x80) cp = c;
    else if (c >= 0xc2 && c < 0xe0 && i + 1 < b.length) {
      cp = ((c & 31) << 6) | (b[i + 1]! & 63);
      len = 2;
    } else if (c >= 0xe0 && c < 0xf0 && i + 2 < b.length) {
      cp = ((c & 15) << 12) | ((b[i + 1]! & 63) << 6) | (b[i + 2]! & 63);
      len = 3;
    } else if (c >= 0xf0 && c < 0xf5 && i + 3 < b.length) {
      cp = ((c & 7) << 18) | ((b[i + 1]! & 63) << 12) | ((b[i + 2]! & 63) << 6) | (b[i + 3]! & 63);
      len = 4;
    }
    i += len;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out += String.fromCharCode(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
    } else out += String.fromCharCode(cp);
  }
  return out;
}

/** A Platform on tweetnacl; `random(n)` must be a CSPRNG (k6/crypto `randomBytes`, node:crypto). */
export function portablePlatform(random: (n: number) => Uint8Array, name = 'tweetnacl'): Platform {
  return cryptoPlatform(tweetnaclCryptoWith(random), utf8Decode, name);
}
