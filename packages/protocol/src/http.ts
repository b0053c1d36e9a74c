/**
 * HTTP rules shared by both services (docs/PROTOCOL.md §2.1, §2.4): path normalisation and the
 * headers every response carries. Pure: the services' response writers and body reader (on Node's
 * http) are @zax/service's.
 */

/**
 * Normalises a request target: the query is dropped, a run of leading slashes counts as one, one
 * trailing slash is allowed. Returns the normalised path (not necessarily an API path).
 */
export function normalizePath(url: string): string {
  const q = url.indexOf('?');
  let p = q === -1 ? url : url.slice(0, q);
  const h = p.indexOf('#');
  if (h !== -1) p = p.slice(0, h);
  p = p.replace(/^\/+/, '/');
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  return p;
}

/** Headers on every API response (docs/PROTOCOL.md §2.4; DEVIATION D7: no-store, expose headers). */
export const COMMON_HEADERS: Readonly<Record<string, string>> = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'X-Error-Details, Retry-After',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
};

export const PREFLIGHT_HEADERS: Readonly<Record<string, string>> = {
  ...COMMON_HEADERS,
  'access-control-allow-methods': 'POST, OPTIONS',
  'access-control-allow-headers': 'Content-Type',
  'access-control-max-age': '86400',
};

export const TEXT_CONTENT_TYPE = 'text/plain; charset=utf-8';
