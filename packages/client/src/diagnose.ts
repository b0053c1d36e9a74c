/**
 * Turns a request that failed below HTTP (no response) into a RelayNetworkError whose message names
 * the cause and the fix: connection refused at host:port, an unknown host, an untrusted or invalid
 * TLS certificate, `http://` against a port that speaks TLS, `https://` against one that does not.
 * `http://` against a TLS port shows up as a connection closed without an answer, and so does
 * `https://` against a plain HTTP server that drops what it cannot parse: those cases are confirmed
 * by a TLS handshake, or a plain HTTP request, to the same host and port before the message says so.
 */
import { connect as netConnect, isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { RelayNetworkError, type NetworkFailureReason } from './errors.js';

/** Certificate verification failures that mean "not signed by a CA this process trusts". */
const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);
/** A trusted chain that does not fit this connection. */
const INVALID = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID']);
/** What OpenSSL reports when the server answers a TLS hello with something that is not TLS. */
const NOT_TLS_CODES = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_HTTP_REQUEST']);
const NOT_TLS_TEXT = /wrong version number|packet length too long|http request/i;
/** A connection that ended without an HTTP answer. */
const CLOSED = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'UND_ERR_CLOSED']);

/** The body a Go (Caddy) or nginx TLS port sends to a plain HTTP request, with a 400. */
export const PLAIN_TO_TLS_BODY = /HTTP request to an HTTPS server|plain HTTP request was sent to HTTPS port/i;

interface Failure {
  code: string | null;
  message: string;
}

/** The first error with a code along the cause chain (fetch wraps the socket's error in a TypeError). */
function rootFailure(e: unknown): Failure {
  let cur: unknown = e;
  let last: unknown = e;
  for (let depth = 0; depth < 6 && cur !== null && cur !== undefined; depth++) {
    const c = cur as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof c.code === 'string') return { code: c.code, message: typeof c.message === 'string' ? c.message : '' };
    last = cur;
    cur = c.cause;
  }
  return { code: null, message: last instanceof Error ? last.message : String(last) };
}

/** OpenSSL's one-line reason out of its "…:error:0A00010B:SSL routines:fn:reason:file:line:" text. */
function shortMessage(message: string): string {
  const ssl = /SSL routines:[^:]*:([^:]+)/.exec(message);
  return (ssl ? ssl[1]! : message).trim().split('\n', 1)[0]!;
}

/** `base` with the other scheme and the same port. */
function otherScheme(base: URL): string {
  const u = new URL(base.href);
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  u.protocol = u.protocol === 'https:' ? 'http:' : 'https:';
  u.port = port; // cleared by the URL setter when it is the new scheme's default
  return u.href.replace(/\/+$/, '');
}

/** Whether a TLS handshake succeeds at host:port (certificate not checked: only "does it speak TLS"). */
export function speaksTls(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const bare = host.replace(/^\[(.*)\]$/, '$1');
    const socket = tlsConnect({ host: bare, port, rejectUnauthorized: false, ...(isIP(bare) === 0 ? { servername: bare } : {}) });
    const done = (v: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('secureConnect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Whether host:port answers a plain HTTP request with an HTTP status line. */
export function speaksPlainHttp(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const bare = host.replace(/^\[(.*)\]$/, '$1');
    const socket = netConnect({ host: bare, port });
    let got = '';
    const done = (v: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => socket.write(`HEAD / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
    socket.on('data', (b: Buffer) => {
      got += b.toString('latin1');
      if (got.length >= 5) done(got.startsWith('HTTP/'));
    });
    socket.once('error', () => done(false));
    socket.once('end', () => done(got.startsWith('HTTP/')));
  });
}

/**
 * The RelayNetworkError for a request to `requestUrl` (under the relay base URL `baseUrl`) that
 * failed with `e` and no response.
 */
export async function diagnoseNetworkFailure(e: unknown, requestUrl: string, baseUrl: string, probeTimeoutMs: number): Promise<RelayNetworkError> {
  const url = new URL(requestUrl);
  const tls = url.protocol === 'https:';
  const port = Number(url.port || (tls ? 443 : 80));
  const where = `${url.hostname}:${port}`;
  const { code, message } = rootFailure(e);
  const said = code === null ? shortMessage(message) : message === '' ? code : `${code}: ${shortMessage(message)}`;
  const fail = (reason: NetworkFailureReason, text: string): RelayNetworkError =>
    new RelayNetworkError(`cannot reach ${requestUrl}: ${text}`, { cause: e, reason, code, url: requestUrl });

  if (code === 'ECONNREFUSED') {
    return fail('connection-refused', `connection refused at ${where} (nothing listens there): is the relay running, and is that its address and port?`);
  }
  if (code === 'ENOTFOUND') return fail('host-not-found', `host ${url.hostname} not found (${code})`);
  if (code === 'EAI_AGAIN') return fail('host-not-found', `the address of ${url.hostname} could not be looked up (${code}): check the name and the network`);
  if (code !== null && UNTRUSTED.has(code)) {
    return fail('certificate-untrusted', `the relay's TLS certificate is not trusted (${said}); trust the CA that issued it, e.g. with NODE_EXTRA_CA_CERTS=ca.pem`);
  }
  if (code !== null && INVALID.has(code)) return fail('certificate-invalid', `the relay's TLS certificate is not valid for this connection (${said})`);
  if (tls && ((code !== null && NOT_TLS_CODES.has(code)) || (code === 'EPROTO' && NOT_TLS_TEXT.test(message)))) {
    return fail('port-speaks-http', `the relay speaks plain HTTP at ${where}, not HTTPS (${said}); use ${otherScheme(new URL(baseUrl))}`);
  }
  if (!tls && code !== null && CLOSED.has(code) && (await speaksTls(url.hostname, port, probeTimeoutMs))) {
    return fail('port-speaks-https', `the relay speaks HTTPS at ${where}, not plain HTTP; use ${otherScheme(new URL(baseUrl))}`);
  }
  if (tls && code !== null && CLOSED.has(code) && (await speaksPlainHttp(url.hostname, port, probeTimeoutMs))) {
    return fail('port-speaks-http', `the relay speaks plain HTTP at ${where}, not HTTPS (${said}); use ${otherScheme(new URL(baseUrl))}`);
  }
  if (code !== null && CLOSED.has(code)) return fail('other', `the connection to ${where} closed without an answer (${said})`);
  return fail('other', said);
}

/** For a 400 whose body is a TLS port's complaint about a plain HTTP request (Caddy, nginx). */
export function plainRequestToTlsPort(requestUrl: string, baseUrl: string, status: number, body: string): RelayNetworkError | null {
  const url = new URL(requestUrl);
  if (status !== 400 || url.protocol !== 'http:' || !PLAIN_TO_TLS_BODY.test(body)) return null;
  const where = `${url.hostname}:${url.port || 80}`;
  return new RelayNetworkError(`cannot reach ${requestUrl}: the relay speaks HTTPS at ${where}, not plain HTTP; use ${otherScheme(new URL(baseUrl))}`, {
    reason: 'port-speaks-https',
    url: requestUrl,
  });
}
