/**
 * The services' crypto: sodium-native (a dependency of this package, so it is resolved from here)
 * when its binding loads, else tweetnacl, through @zax/protocol's `sodiumBackends`. Which backend
 * was picked, and why sodium-native did not load, is reported with `NODE_DEBUG=zax`
 * (node:util debuglog), e.g. `ZAX 4242: crypto backend: tweetnacl (sodium-native is not installed)`.
 */
import { createRequire } from 'node:module';
import { debuglog } from 'node:util';
import { sodiumBackends } from '@zax/protocol';

const backends = sodiumBackends(() => createRequire(import.meta.url)('sodium-native'), debuglog('zax'));

/** sodium-native when its binding loads, else the tweetnacl reference; chosen once per process. */
export const bestCrypto = backends.best;
/** The sodium-native backend, or null where the binding does not load. */
export const sodiumCrypto = backends.sodium;
