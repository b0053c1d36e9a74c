/**
 * Logging (pino JSON lines on stdout). PROTOCOL.md §7.1 / DEVIATION D17: never bodies, tokens, keys
 * or client IPs; an hpk or handshake id at most as its first 8 base64 characters (`short`).
 */
import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.js';

export type { Logger };

export function createLogger(level: LogLevel): Logger {
  return pino({ level, base: { service: 'gatekeeper' } });
}

/** The first 8 characters of an identifier: all that may reach a log. */
export const short = (id: string): string => id.slice(0, 8);

/**
 * Calls `fn` at most once per `intervalMs` and reports how many calls were skipped since, so an
 * outage (core or Redis down) gives one warning every few seconds instead of one per request.
 */
export function everyInterval(intervalMs: number, fn: (skipped: number) => void): () => void {
  let last = -Infinity;
  let skipped = 0;
  return () => {
    const now = Date.now();
    if (now - last < intervalMs) {
      skipped++;
      return;
    }
    last = now;
    fn(skipped);
    skipped = 0;
  };
}
