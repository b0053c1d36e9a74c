/**
 * Logging (pino JSON lines on stdout, through `stdoutDestination`: never blocks, never outlives its
 * reader). docs/PROTOCOL.md §7.1 / DEVIATION D17: never bodies, tokens, keys
 * or client IPs; an hpk or handshake id at most as its first 8 base64 characters (`short`).
 *
 * The code never passes such values to the logger; the redaction list below is the second line of
 * defence for field names that would carry them. Client addresses are logged (field `client`) only
 * with LOG_CLIENT_IPS=true; otherwise the field is removed.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { stdoutDestination } from '@zax/protocol';
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
  return pino(options, destination ?? (stdout ??= stdoutDestination('gatekeeper')));
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
