/**
 * The errors of the `zax` CLI and what becomes of them: the exit codes, the usage, interruption and
 * reworded network errors, and `describeError`, which turns any error into the message (with a hint
 * for a relay's refusals), kind and JSON fields that cli-app.ts reports.
 */
import { ContactsError } from './contacts-file.js';
import { IdentityError, RelayHttpError, RelayNetworkError, RelayProtocolError, UsageError, ZaxClientError } from './errors.js';

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;
/** A transfer stopped by SIGINT/SIGTERM (128 + SIGINT's number, as shells report it). */
export const EXIT_INTERRUPTED = 130;

/** A usage error in the CLI: message, then a pointer to the subcommand's help; exit 2. */
export class CliUsage extends Error {
  constructor(
    message: string,
    readonly command: string | null,
  ) {
    super(message);
  }
}

/** A network failure reworded for the CLI (its fixes are CLI options). */
class CliNetworkError extends ZaxClientError {}

/** An untrusted relay certificate: the fix is --ca or NODE_EXTRA_CA_CERTS. Other errors pass through. */
export function explainNetworkError(e: unknown, caFile: string | undefined): unknown {
  if (!(e instanceof RelayNetworkError) || e.reason !== 'certificate-untrusted') return e;
  const what = `cannot reach ${e.url ?? 'the relay'}: the relay's TLS certificate is not trusted (${e.code ?? 'unknown CA'})`;
  return new CliNetworkError(
    caFile === undefined
      ? `${what}. If this is your relay, trust its certificate for this run with --ca FILE (FILE: the PEM certificate of the CA that signed it, or the self-signed certificate itself), or set NODE_EXTRA_CA_CERTS=FILE`
      : `${what}, not even with --ca ${caFile}: that file does not hold the certificate that signed the relay's`,
    { cause: e },
  );
}

/** How an error is reported: its message (with the hint), exit code, and JSON fields. */
export interface ErrorReport {
  message: string;
  /** usage, relay (an HTTP status), network, identity, contacts, protocol, error, unexpected */
  kind: string;
  status?: number;
  reason?: string;
  retryAfterSec?: number;
  /** An interrupted upload: the command that continues it. */
  resume?: string;
}

/** A transfer stopped by SIGINT/SIGTERM: exit 130, kind `interrupted`. */
export class Interrupted extends ZaxClientError {
  constructor(
    message: string,
    readonly resume?: string,
  ) {
    super(message);
  }
}

export function describeError(e: unknown, debug = false): ErrorReport {
  if (e instanceof CliUsage || e instanceof UsageError) return { message: e.message, kind: 'usage' };
  if (e instanceof Interrupted) return { message: e.message, kind: 'interrupted', ...(e.resume !== undefined ? { resume: e.resume } : {}) };
  if (e instanceof RelayHttpError) {
    return { message: `${e.message}${hint(e)}`, kind: 'relay', status: e.status, ...(e.retryAfter !== null ? { retryAfterSec: e.retryAfter } : {}) };
  }
  if (e instanceof CliNetworkError) return { message: e.message, kind: 'network', reason: 'certificate-untrusted' };
  if (e instanceof RelayNetworkError) return { message: e.message, kind: 'network', reason: e.reason };
  if (e instanceof IdentityError) return { message: e.message, kind: 'identity' };
  if (e instanceof ContactsError) return { message: e.message, kind: 'contacts' };
  if (e instanceof RelayProtocolError) return { message: e.message, kind: 'protocol' };
  if (e instanceof ZaxClientError) return { message: e.message, kind: 'error' };
  const detail = debug && e instanceof Error && e.stack ? e.stack : e instanceof Error ? e.message : String(e);
  return { message: detail, kind: 'unexpected' };
}

function hint(e: RelayHttpError): string {
  switch (e.status) {
    case 403:
      // The gatekeeper's REQUIRE_HTTPS refusal says so; the core refuses anything without the
      // relay's internal secret with a bare 403.
      return e.details === 'HTTPS required'
        ? ' (this relay takes requests over HTTPS only: use an https:// URL)'
        : " (this looks like the relay's core port, which only the relay's gatekeeper may call: use the public gatekeeper port, 8080 by default)";
    case 400:
      return ' (is this machine\'s clock right? the relay accepts request nonces within 60 s of its own)';
    case 404:
      return ' (is the URL a Zax relay?)';
    case 413:
      return ' (the message is too large for this relay)';
    case 429:
      return e.details === 'Mailbox is full.' ? ' (the recipient has to delete messages first)' : ' (slow down)';
    case 503:
      return ' (try again later)';
    default:
      return '';
  }
}
