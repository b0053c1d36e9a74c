/**
 * Logging: pino JSON lines on stdout, through `stdoutDestination` (never blocks, never outlives its
 * reader). Privacy rule (docs/PROTOCOL.md §7.1, DEVIATION D17): no bodies,
 * ciphertexts, tokens, keys, nonces or IPs are ever logged, and an hpk or handshake id appears at
 * most as its first 8 base64 characters (`short`).
 */
import { pino, type BaseLogger, type DestinationStream } from 'pino';
import { stdoutDestination } from '@zax/protocol';
import type { LogLevel } from './config.js';

/** What the core needs of a logger; any pino logger fits. */
export type Log = Pick<BaseLogger, 'debug' | 'info' | 'warn' | 'error'>;

let stdout: DestinationStream | null = null;

/** `destination`: stdout (`stdoutDestination`, one per process) unless given (tests read the lines). */
export function createLogger(level: LogLevel = 'info', destination?: DestinationStream): Log {
  return pino({ level, base: { service: 'core' } }, destination ?? (stdout ??= stdoutDestination('core')));
}

/** At most the first 8 characters of a base64 identifier, for logs only. */
export const short = (b64: string): string => b64.slice(0, 8);
