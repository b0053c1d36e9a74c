/**
 * Logging: pino JSON lines on stdout. Privacy rule (docs/PROTOCOL.md §7.1, DEVIATION D17): no bodies,
 * ciphertexts, tokens, keys, nonces or IPs are ever logged, and an hpk or handshake id appears at
 * most as its first 8 base64 characters (`short`).
 */
import { pino, type BaseLogger } from 'pino';
import type { LogLevel } from './config.js';

/** What the core needs of a logger; any pino logger fits. */
export type Log = Pick<BaseLogger, 'debug' | 'info' | 'warn' | 'error'>;

export function createLogger(level: LogLevel = 'info'): Log {
  return pino({ level, base: { service: 'core' } });
}

/** At most the first 8 characters of a base64 identifier, for logs only. */
export const short = (b64: string): string => b64.slice(0, 8);
