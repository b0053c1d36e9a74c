/** @zax/protocol: the pure wire layer shared by the relay's services and its clients. */
export * from './constants.js';
export * from './errors.js';
export * from './base64.js';
export * from './utf8.js';
export * from './framing.js';
export * from './h2.js';
export * from './nonce.js';
export * from './pow.js';
export * from './crypto.js';
export * from './json.js';
export * from './commands.js';
export * from './internal.js';
export * from './http.js';
export * from './clock.js';
export * from './crypto-sodium.js';
