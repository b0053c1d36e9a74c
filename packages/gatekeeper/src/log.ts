/**
 * Logging (pino JSON lines on stdout, through `stdoutDestination`: never blocks, never outlives its
 * reader). docs/PROTOCOL.md §7.1 / DEVIATION D17: never bodies, tokens, keys
 * or client IPs; an hpk or handshake id at most as its first 8 base64 characters (`short`).
 *
 * The code never passes such values to the logger; the redaction list below is the second line of
 * defence for field names that would carry them. Client addresses are logged (field `client`) only
 * with LOG_CLIENT_IPS=true; otherwise the field is removed.
 */
import type { Writable } from 'node:stream';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './config.js';

export type { Logger };

/** Field names whose values never reach a log line, at the top level or one level down. */
const SECRET_FIELDS = [
  'body',
  'payload',
  'headers',
  'token',
  'clientToken',
  'relayToken',
  'secret',
  'internalSecret',
  'key',
  'secretKey',
  'publicKey',
  'pk',
  'hpk',
  'nonce',
  'answer',
  'authorization',
];
const IP_FIELDS = ['client', 'ip', 'remoteAddress', 'xForwardedFor'];

export interface LoggerOptions {
  /** LOG_CLIENT_IPS. @default false */
  logClientIps?: boolean;
}

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
 * 100 ms, forever: a gatekeeper whose launcher died while it logged could never exit.)
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
        out.write(`${JSON.stringify({ level: 40, time: Date.now(), service: 'gatekeeper', dropped, msg: 'log lines dropped: stdout was not read fast enough' })}\n`);
        dropped = 0;
      }
      out.write(line);
    },
  };
}

let stdout: DestinationStream | null = null;

/** `destination`: stdout (`stdoutDestination`, one per process) unless given (tests read the lines). */
export function createLogger(level: LogLevel, opts: LoggerOptions = {}, destination?: DestinationStream): Logger {
  const paths = (fields: readonly string[]): string[] => fields.flatMap((f) => [f, `*.${f}`]);
  const options = {
    level,
    base: { service: 'gatekeeper' },
    redact: {
      paths: [...paths(SECRET_FIELDS), ...(opts.logClientIps === true ? [] : paths(IP_FIELDS))],
      remove: true,
    },
  };
  return pino(options, destination ?? (stdout ??= stdoutDestination()));
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
