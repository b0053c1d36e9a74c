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

/**
 * Why a relay could not be reached (`RelayNetworkError.reason`), as far as the failure tells:
 * - `connection-refused`: nothing accepts connections at that host and port;
 * - `host-not-found`: the host name does not resolve;
 * - `certificate-untrusted`: the relay's TLS certificate is not signed by a CA this process trusts
 *   (self-signed, or a private CA): trust the CA with `NODE_EXTRA_CA_CERTS=FILE` or pass a `fetch`
 *   that does;
 * - `certificate-invalid`: the certificate is expired, not yet valid, or for another host name;
 * - `port-speaks-https`: an `http://` URL, but the server at that port speaks TLS: use `https://`;
 * - `port-speaks-http`: an `https://` URL, but the server at that port does not speak TLS: use `http://`;
 * - `timeout`: no answer within `timeoutMs` (a `RelayTimeoutError`);
 * - `other`: anything else (connection reset, …); the message and `code` say what.
 */
export type NetworkFailureReason =
  | 'connection-refused'
  | 'host-not-found'
  | 'certificate-untrusted'
  | 'certificate-invalid'
  | 'port-speaks-https'
  | 'port-speaks-http'
  | 'timeout'
  | 'other';

export interface RelayNetworkErrorOptions {
  cause?: unknown;
  /** @default 'other' */
  reason?: NetworkFailureReason;
  /** @default null */
  code?: string | null;
  /** @default null */
  url?: string | null;
}

/** The relay could not be reached (connection refused or reset, DNS failure, TLS failure, …). */
export class RelayNetworkError extends ZaxClientError {
  override readonly name: string = 'RelayNetworkError';
  /** What went wrong, as far as the failure tells; the message explains it and names the fix. */
  readonly reason: NetworkFailureReason;
  /** The underlying error code, e.g. `ECONNREFUSED` or `DEPTH_ZERO_SELF_SIGNED_CERT`, or null. */
  readonly code: string | null;
  /** The request URL that failed, or null. */
  readonly url: string | null;
  constructor(message: string, options: RelayNetworkErrorOptions = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.reason = options.reason ?? 'other';
    this.code = options.code ?? null;
    this.url = options.url ?? null;
  }
}

/** The relay did not answer within the timeout (`reason` is `timeout`). */
export class RelayTimeoutError extends RelayNetworkError {
  override readonly name = 'RelayTimeoutError';
  constructor(message: string, options: Omit<RelayNetworkErrorOptions, 'reason'> = {}) {
    super(message, { ...options, reason: 'timeout' });
  }
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

/** One relay's failure in an operation over several relays (`relays.ts`). */
export interface RelayFailure {
  /** The relay's normalised base URL. */
  readonly url: string;
  readonly error: Error;
}

/** An operation over several relays failed on every one of them; `failures` says how, relay by relay. */
export class AllRelaysFailedError extends ZaxClientError {
  override readonly name = 'AllRelaysFailedError';
  constructor(
    /** What was attempted, e.g. `send to <hpk>`. */
    readonly operation: string,
    readonly failures: readonly RelayFailure[],
  ) {
    super(`${operation} failed on every relay (${failures.length}): ${failures.map((f) => `${f.url}: ${f.error.message}`).join('; ')}`);
  }
}

/**
 * Why a file transfer failed (`FileTransferError.code`):
 * - `not-found`: the relay does not have the upload (never started, deleted, or expired);
 * - `incomplete`: the upload is not COMPLETE yet (receiving);
 * - `size`: a source or a received file does not have the declared size;
 * - `corrupt`: a chunk does not open under the file key (or the metadata is not file metadata);
 * - `aborted`: the caller's AbortSignal fired (`cause` is its reason).
 */
export type FileTransferFailure = 'not-found' | 'incomplete' | 'size' | 'corrupt' | 'aborted';

/** A file upload or download that cannot complete (see `code`). */
export class FileTransferError extends ZaxClientError {
  override readonly name = 'FileTransferError';
  constructor(
    readonly code: FileTransferFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
