/**
 * The client's error types. Every failure the SDK expects (a relay status, a network failure, a
 * timeout, a malformed relay answer, a bad identity file, a bad argument) is one of these, so
 * callers and the CLI can report it without a stack trace; anything else is a bug.
 */

/** Base class of every error the SDK throws on purpose. */
export class ZaxClientError extends Error {
  override readonly name: string = 'ZaxClientError';
}

/** The relay answered with a non-2xx status (docs/PROTOCOL.md §6). */
export class RelayHttpError extends ZaxClientError {
  override readonly name = 'RelayHttpError';
  constructor(
    /** HTTP status, e.g. 401. */
    readonly status: number,
    /** The `X-Error-Details` text, or null when the relay sent none. */
    readonly details: string | null,
    /** `Retry-After` in seconds (429, 503), or null when absent or unreadable. */
    readonly retryAfter: number | null,
    /** The API path that failed, e.g. `command`. */
    readonly path: string = '',
  ) {
    super(`relay answered ${status}${path ? ` to /${path}` : ''}${details ? `: ${details}` : ''}${retryAfter !== null ? ` (retry after ${retryAfter} s)` : ''}`);
  }
}

/** The relay could not be reached (connection refused or reset, DNS failure, …). */
export class RelayNetworkError extends ZaxClientError {
  override readonly name: string = 'RelayNetworkError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The relay did not answer within the timeout. */
export class RelayTimeoutError extends RelayNetworkError {
  override readonly name = 'RelayTimeoutError';
}

/** The relay answered 200 with something this client cannot read (wrong line count, bad base64, a box that does not open). */
export class RelayProtocolError extends ZaxClientError {
  override readonly name = 'RelayProtocolError';
}

/** An identity file or key string that cannot be used. */
export class IdentityError extends ZaxClientError {
  override readonly name = 'IdentityError';
}

/** A caller passed an argument the SDK cannot use (e.g. encrypting to a bare hpk). */
export class UsageError extends ZaxClientError {
  override readonly name = 'UsageError';
}
