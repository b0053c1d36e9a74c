/**
 * Platforms for the node load generator: sodium-native through @zax/service's `bestCrypto()` (the
 * default, so the generator does not starve the relay of CPU), or the portable tweetnacl platform the
 * k6 bundles use (`--crypto portable`), both with Node's CSPRNG.
 */
import { randomFillSync } from 'node:crypto';
import { decodeStrict, h2 } from '@zax/protocol';
import { bestCrypto } from '@zax/service';
import { portablePlatform } from './shared/portable.js';
import type { Platform } from './shared/wire.js';

const random = (n: number): Uint8Array => randomFillSync(Buffer.allocUnsafe(n));

export function nodePlatform(): Platform {
  const c = bestCrypto();
  return {
    name: c.name,
    random: (n) => c.randomBytes(n),
    keyPair: () => c.keyPair(),
    before: (pk, sk) => c.before(pk, sk),
    boxAfter: (m, n, k) => c.boxAfter(m, n, k),
    boxOpenAfter: (b, n, k) => c.boxOpenAfter(b, n, k),
    h2: (...parts) => h2(...parts),
    b64: (b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64'),
    unb64: (s) => decodeStrict(s),
    utf8: (s) => Buffer.from(s, 'utf8'),
    fromUtf8: (b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8'),
    nowSec: () => Math.floor(Date.now() / 1000),
  };
}

export function platformByName(name: string): Platform {
  if (name === 'portable' || name === 'tweetnacl') return portablePlatform(random, 'tweetnacl (portable, as in k6)');
  if (name === 'best' || name === 'sodium' || name === 'sodium-native') return nodePlatform();
  throw new Error(`unknown --crypto ${name} (best | portable)`);
}
