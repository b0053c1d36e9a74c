/**
 * The client's default crypto on Node: sodium-native (an optional dependency of this package, so it
 * is resolved from here) when its binding loads, else tweetnacl, through @zax/protocol's
 * `sodiumBackends`. Run with `NODE_DEBUG=zax` to see which was picked and why. Node-only (it loads a
 * native module); an app elsewhere passes `crypto: tweetnaclCrypto` from @zax/protocol.
 */
import { createRequire } from 'node:module';
import { debuglog } from 'node:util';
import { sodiumBackends } from '@zax/protocol';

/** sodium-native when its binding loads, else the tweetnacl reference; chosen once per process. */
export const bestCrypto = sodiumBackends(() => createRequire(import.meta.url)('sodium-native'), debuglog('zax')).best;
