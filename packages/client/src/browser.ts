/**
 * @zax/client for browsers (`@zax/client/browser`): everything a page needs to talk to a relay,
 * and nothing that needs Node. Identity files on disk (identity-file.ts) and the CLI are left out;
 * bundled with the `browser` field of package.json honoured (esbuild `--platform=browser`), the
 * crypto backend is tweetnacl and network failures are reported without Node's socket probes.
 */
export * from './errors.js';
export * from './identity.js';
export * from './message.js';
export * from './relay.js';
export * from './mailbox.js';
