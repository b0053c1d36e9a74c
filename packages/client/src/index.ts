/**
 * @zax/client: the TypeScript SDK for a Zax relay. `RelaySession` runs the handshake and sends
 * encrypted commands; `Mailbox` is the message API on top (glow.ts-compatible message format),
 * with file transfer (`files.ts`); `identity` handles identities and identity files; `MultiMailbox`
 * spreads a mailbox over k of n relays (`relays.ts`).
 */
export * from './errors.js';
export * from './identity.js';
export * from './identity-file.js';
export * from './message.js';
export * from './relay.js';
export * from './mailbox.js';
export * from './files.js';
export * from './relays.js';
