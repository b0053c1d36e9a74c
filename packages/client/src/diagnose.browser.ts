/**
 * diagnose.ts for browsers (package.json `browser` field). A page cannot probe a port or see why a
 * request failed (the fetch TypeError says nothing on purpose), so a failed request becomes a
 * RelayNetworkError that names the URL and the causes a page usually meets, with the original error
 * as its cause. Same exports as diagnose.ts.
 */
import { RelayNetworkError } from './errors.js';

/** The body a Go (Caddy) or nginx TLS port sends to a plain HTTP request, with a 400. */
export const PLAIN_TO_TLS_BODY = /HTTP request to an HTTPS server|plain HTTP request was sent to HTTPS port/i;

/** The RelayNetworkError for a request to `requestUrl` that failed with `e` and no response. */
export async function diagnoseNetworkFailure(e: unknown, requestUrl: string, _baseUrl: string, _probeTimeoutMs: number): Promise<RelayNetworkError> {
  const said = e instanceof Error ? e.message : String(e);
  return new RelayNetworkError(
    `cannot reach ${requestUrl}: ${said} (the relay may be down, the address wrong, its certificate untrusted, or the request blocked by CORS or a Content-Security-Policy)`,
    { cause: e, reason: 'other', url: requestUrl },
  );
}

/** For a 400 whose body is a TLS port's complaint about a plain HTTP request (Caddy, nginx). */
export function plainRequestToTlsPort(requestUrl: string, baseUrl: string, status: number, body: string): RelayNetworkError | null {
  const url = new URL(requestUrl);
  if (status !== 400 || url.protocol !== 'http:' || !PLAIN_TO_TLS_BODY.test(body)) return null;
  const other = new URL(baseUrl);
  other.protocol = 'https:';
  return new RelayNetworkError(`cannot reach ${requestUrl}: the relay speaks HTTPS at ${url.host}, not plain HTTP; use ${other.href.replace(/\/+$/, '')}`, {
    reason: 'port-speaks-https',
    url: requestUrl,
  });
}
