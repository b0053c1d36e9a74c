/**
 * Logging for both tiers: pino JSON lines on stdout, through `stdoutDestination` (never blocks,
 * never outlives its reader). docs/PROTOCOL.md §7.1 / DEVIATION D17: never bodies, tokens, keys,
 * nonces or client IPs; an hpk or handshake id at most as its first 8 base64 characters (`short`).
 *
 * The code never passes such values to the logger; the redaction list below is the second line of
 * defence for field names that would carry them. Client addresses are logged (field `client`) only
 * with `logClientIps`; otherwise the field is removed.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { stdoutDestination } from './process.js';
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
  /** The `service` field of every line ("core", "gatekeeper"). @default none (tests) */
  readonly service?: string;
  /** LOG_CLIENT_IPS. @default false */
  readonly logClientIps?: boolean;
  /**
   * Fields of the list above that this service logs on purpose, always cut by `short()` first
   * (the core's `hpk`). @default none
   */
  readonly shortened?: readonly string[];
}

/** One stdout destination per process, whichever loggers share it. */
let stdout: DestinationStream | null = null;

/** `destination`: stdout (`stdoutDestination`, one per process) unless given (tests read the lines). */
export function createLogger(level: LogLevel, opts: LoggerOptions = {}, destination?: DestinationStream): Logger {
  const paths = (fields: readonly string[]): string[] => fields.flatMap((f) => [f, `*.${f}`]);
  const secret = SECRET_FIELDS.filter((f) => opts.shortened?.includes(f) !== true);
  const options = {
    level,
    base: opts.service === undefined ? {} : { service: opts.service },
    redact: {
      paths: [...paths(secret), ...(opts.logClientIps === true ? [] : paths(IP_FIELDS))],
      remove: true,
    },
  };
  return pino(options, destination ?? (stdout ??= stdoutDestination(opts.service ?? 'zax')));
}

/** The first 8 characters of an identifier: all that may reach a log. */
export const short = (id: string): string => id.slice(0, 8);

/**
 * Rate-limits a log line: the first call runs `fn`, later ones at most once per `intervalMs`, each
 * told how many calls were suppressed since the last one it ran. An outage (core or Redis down)
 * then gives one line every so often instead of one per request. Timed on the monotonic clock, so
 * a wall-clock jump neither floods nor silences it.
 */
export function everyInterval<A extends unknown[]>(intervalMs: number, fn: (suppressed: number, ...args: A) => void): (...args: A) => void {
  let last = -Infinity;
  let suppressed = 0;
  return (...args: A): void => {
    const now = performance.now();
    if (now - last < intervalMs) {
      suppressed++;
      return;
    }
    last = now;
    fn(suppressed, ...args);
    suppressed = 0;
  };
}
