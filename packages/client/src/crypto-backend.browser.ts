/**
 * The client's default crypto in a browser: tweetnacl (@zax/protocol's `tweetnaclCrypto`), with the
 * Web Crypto CSPRNG. A bundler that honours package.json's `browser` field (esbuild, webpack, Vite)
 * uses this file instead of crypto-backend.ts, which loads the native sodium binding through Node.
 */
import { tweetnaclCrypto, type Crypto } from '@zax/protocol';

/** The tweetnacl reference: the only backend a browser has. Same shape as the Node module's. */
export const bestCrypto = (): Crypto => tweetnaclCrypto;
