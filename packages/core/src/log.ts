/**
 * Logging: pino JSON lines on stdout, through `stdoutDestination` (never blocks, never outlives its
 * reader). Privacy rule (docs/PROTOCOL.md §7.1, DEVIATION D17): no bodies,
 * ciphertexts, tokens, keys, nonces or IPs are ever logged, and an hpk or handshake id appears at
 * most as its first 8 base64 characters (`short`).
 */
import type { Writable } from 'node:stream';
import { pino, type BaseLogger, type DestinationStream } from 'pino';
import type { LogLevel } from './config.js';

/** What the core needs of a logger; any pino logger fits. */
export type Log = Pick<BaseLogger, 'debug' | 'info' | 'warn' | 'error'>;

/** Log bytes a slow reader of stdout may leave waiting; lines beyond are dropped (and counted). */
export const MAX_PENDING_LOG_BYTES = 1024 * 1024;

/**
 * pino's destination: `out` (stdout) through Node's own stream, which on a pipe (the launcher, a
 * container runtime) writes without blocking and keeps what the reader has not taken yet. Nothing
 * here blocks the event loop, retries, or writes at exit:
 * - a reader that is gone (EPIPE: the launcher was killed) ends logging for good, silently;
 * - a slow or stopped reader: lines beyond `maxPending` waiting bytes are dropped, and one line
 *   says how many once it has caught up, so memory stays bounded.
 * (pino's default destination flushes synchronously at exit and retries a failed write there every
 * 100 ms, forever: a process whose launcher died while it logged could never exit.)
 */
export function stdoutDestination(out: Writable = process.stdout, maxPending = MAX_PENDING_LOG_BYTES): DestinationStream {
  let gone = false;
  let dropped = 0;
  out.on('error', () => {
    gone = true;
  });
  return {
    write(line: string): void {
      if (gone || out.destroyed || !out.writable) return;
      if (out.writableLength + line.length > maxPending) {
        dropped++;
        return;
      }
      if (dropped > 0) {
        out.write(`${JSON.stringify({ level: 40, time: Date.now(), service: 'core', dropped, msg: 'log lines dropped: stdout was not read fast enough' })}\n`);
        dropped = 0;
      }
      out.write(line);
    },
  };
}

let stdout: DestinationStream | null = null;

/** `destination`: stdout (`stdoutDestination`, one per process) unless given (tests read the lines). */
export function createLogger(level: LogLevel = 'info', destination?: DestinationStream): Log {
  return pino({ level, base: { service: 'core' } }, destination ?? (stdout ??= stdoutDestination()));
}

/** At most the first 8 characters of a base64 identifier, for logs only. */
export const short = (b64: string): string => b64.slice(0, 8);
