/**
 * Platforms for the node load generator: sodium-native through @zax/service's `bestCrypto()` (the
 * default, so the generator does not starve the relay of CPU), or the portable tweetnacl platform the
 * k6 bundles use (`--crypto portable`), both with Node's CSPRNG.
 */
import { randomFillSync } from 'node:crypto';
import { bestCrypto } from '@zax/service';
import { portablePlatform } from './shared/portable.js';
import { cryptoPlatform, type Platform } from './shared/wire.js';

const random = (n: number): Uint8Array => randomFillSync(Buffer.allocUnsafe(n));

const fromUtf8 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');

export function nodePlatform(): Platform {
  return cryptoPlatform(bestCrypto(), fromUtf8);
}

export function platformByName(name: string): Platform {
  if (name === 'portable' || name === 'tweetnacl') return portablePlatform(random, 'tweetnacl (portable, as in k6)');
  if (name === 'best' || name === 'sodium' || name === 'sodium-native') return nodePlatform();
  throw new Error(`unknown --crypto ${name} (best | portable)`);
}
