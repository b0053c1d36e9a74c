/**
 * The one table from relay error codes to HTTP status and `X-Error-Details` text (docs/PROTOCOL.md §6).
 * Services throw `RelayError(code, logMessage)`; one place per service turns it into a response.
 * The log message never reaches the client.
 */
import { TEXT_BUSY, TEXT_F, TEXT_G, TEXT_I, TEXT_MAILBOX_FULL, TEXT_TOO_LARGE, TEXT_TOO_MANY } from './constants.js';

export interface ErrorSpec {
  readonly status: number;
  /** `X-Error-Details` text, or null for none. */
  readonly details: string | null;
  /** Whether the response carries `Retry-After`. */
  readonly retry: boolean;
}

export const ERRORS = {
  /** Framing: wrong line count or line length, empty body. */
  framing: { status: 400, details: TEXT_F, retry: false },
  /** Any other malformed or invalid input, nonce failures, undecryptable `/prove` boxes. */
  invalid: { status: 400, details: TEXT_G, retry: false },
  /** Unknown/expired handshake or session, bad proof, failed ownership proof, stale session box. */
  unauthorized: { status: 401, details: TEXT_G, retry: false },
  /** An API request over plain HTTP in production mode (REQUIRE_HTTPS); the connection is closed. */
  httpsRequired: { status: 403, details: 'HTTPS required', retry: false },
  /** A core request without a valid internal secret. */
  forbidden: { status: 403, details: null, retry: false },
  notFound: { status: 404, details: null, retry: false },
  /** A method the route does not take; the refusal carries the route's `Allow`. */
  methodNotAllowed: { status: 405, details: null, retry: false },
  /** A file command while the file store is disabled. */
  fileStoreDisabled: { status: 405, details: null, retry: false },
  /** A request body that stopped or trickled below the minimum rate. */
  bodyTimeout: { status: 408, details: null, retry: false },
  tooLarge: { status: 413, details: TEXT_TOO_LARGE, retry: false },
  throttled: { status: 429, details: TEXT_TOO_MANY, retry: true },
  mailboxFull: { status: 429, details: TEXT_MAILBOX_FULL, retry: true },
  internal: { status: 500, details: TEXT_I, retry: false },
  /** Backing store or core unreachable, store full, overload. */
  busy: { status: 503, details: TEXT_BUSY, retry: true },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export class RelayError extends Error {
  override readonly name: string = 'RelayError';
  constructor(
    readonly code: ErrorCode,
    /** For the log only; never sent to a client. */
    readonly logMessage: string = code,
    /** Seconds for `Retry-After` where the code carries one; the service default otherwise. */
    readonly retryAfterSec?: number,
    /** Headers the refusal adds (a 405's `Allow`, a `Connection: close`). */
    readonly headers?: Readonly<Record<string, string>>,
  ) {
    super(logMessage);
  }
}

export const isRelayError = (e: unknown): e is RelayError => e instanceof RelayError;
