/**
 * The gatekeeper's only way to the core: POSTs over one undici connection pool (keep-alive, no
 * pipelining) with the internal secret. Every failure to reach the core (refused, reset, timeout,
 * 5xx, 403) becomes RelayError('busy'), which the app answers with 503 + Retry-After
 * (docs/CONTRACT.md); never 500, never a hang.
 *
 * Why undici and not node:http: measured on the forwarding path, node:http's client (Agent,
 * ClientRequest, IncomingMessage, per-request socket timers) was about a fifth of the gatekeeper's
 * CPU per forwarded command; undici's pool does the same work in about half the CPU.
 *
 * An `https://` CORE_URL runs the same requests over TLS (≥ 1.2), verifying the core's certificate
 * against the system roots plus the extra CA of CORE_CA_FILE. The shared secret is sent all the
 * same: TLS protects it on the wire, the secret is what the core checks. A certificate the
 * gatekeeper cannot verify is a failure to reach the core like any other (503).
 */
import type { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { Pool } from 'undici';
import {
  INTERNAL_LOAD_PATH,
  INTERNAL_SECRET_HEADER,
  INTERNAL_SESSIONS_PATH,
  RelayError,
  parseLoadReport,
  parseMintResponse,
  type LoadReport,
  type MintRequest,
} from '@zax/protocol';
import { everyInterval, readStream, type Logger } from '@zax/service';

/**
 * Idle keep-alive connections are dropped after 4 s, whatever keep-alive hint the core sends. The
 * core's server keeps idle sockets for 65 s (`keepAliveTimeout` in packages/core/src/main.ts;
 * Node's default would be 5 s): 4 s is below both, so the gatekeeper always gives up an idle
 * socket before the core closes it and never writes a request onto a socket the core is closing.
 * The one race left (a core restart) is covered by one retry on a fresh connection. If the core's
 * timeout drops below 4 s, lower this too.
 */
const AGENT_IDLE_TIMEOUT_MS = 4000;


/** Most connections to one core address (node:http's agent had the same socket cap). */
const MAX_CONNECTIONS = 512;

/** A mint answer or a load report is a tiny JSON object; anything longer is not one. */
const MAX_SMALL_RESPONSE_BYTES = 4096;

export type MintResult = { status: 'ok'; relaySessionPk: string } | { status: 'proven' };

/** The core's answer once its headers are here; `body` streams the rest (read or dump it). */
export interface CoreResponse {
  readonly statusCode: number;
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Readable;
}

export interface CoreClient {
  /** POST /internal/sessions. Throws RelayError('busy') unless the core answers ok or proven. */
  mint(req: MintRequest): Promise<MintResult>;
  /**
   * POSTs a client body to the core and resolves with the response once its headers arrive. A 5xx
   * or 403 response, or no response within the timeout, throws RelayError('busy') (its body drained).
   */
  send(path: string, body: Buffer, contentType: string): Promise<CoreResponse>;
  /**
   * GET /internal/load. Null when the core cannot be reached or gives no valid version-1 report
   * (a core without the route answers 404): the difficulty controller treats all of these alike.
   */
  load(): Promise<LoadReport | null>;
  /** Closes the pool's connections. */
  close(): void;
}

export interface CoreClientOptions {
  coreUrl: string;
  internalSecret: string;
  /** Deadline for the core's response headers, from the start of the request. */
  timeoutMs: number;
  log: Logger;
  /** PEM of an extra CA trusted for an https:// coreUrl (CORE_CA_FILE), added to the system roots. */
  ca?: string | Buffer;
}

const errCode = (err: unknown): string =>
  typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : 'unknown';

/**
 * Errors of a connection that broke before any answer: a keep-alive socket the core closed just as
 * it was reused (or a core restart). Worth one retry on a fresh connection.
 */
const RETRYABLE = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

export function createCoreClient(opts: CoreClientOptions): CoreClient {
  const base = new URL(opts.coreUrl);
  const overTls = base.protocol === 'https:';
  const pool = new Pool(base.origin, {
    connections: MAX_CONNECTIONS,
    pipelining: 1,
    keepAliveTimeout: AGENT_IDLE_TIMEOUT_MS,
    keepAliveMaxTimeout: AGENT_IDLE_TIMEOUT_MS,
    // The core writes a whole answer at once, so the gap between its body chunks gets the same
    // bound as its headers. One value for both lets undici keep one timer per connection instead of
    // making a new one at every switch (measured: a few % of the gatekeeper's CPU). A slow phone
    // does not count against it: undici stops the body timer while the client side is paused.
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
    connect: {
      timeout: opts.timeoutMs,
      ...(overTls
        ? {
            minVersion: 'TLSv1.2' as const,
            // `ca` replaces the default trust store, so the system roots go in with the extra CA.
            ...(opts.ca !== undefined ? { ca: [...rootCertificates, opts.ca.toString()] } : {}),
          }
        : {}),
    },
  });
  // Parsed once: the path prefix and credentials of CORE_URL, sent with every request.
  const pathPrefix = base.pathname.replace(/\/+$/, '');
  const fixedHeaders: Record<string, string> = { [INTERNAL_SECRET_HEADER]: opts.internalSecret };
  if (base.username !== '') {
    const user = `${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`;
    fixedHeaders.authorization = `Basic ${Buffer.from(user).toString('base64')}`;
  }
  const warnUnreachable = (reason: string) =>
    everyInterval(5000, (skipped) => opts.log.warn({ reason, skipped }, 'core unavailable'));
  const warners = new Map<string, () => void>();
  const busy = (reason: string): RelayError => {
    let w = warners.get(reason);
    if (w === undefined) warners.set(reason, (w = warnUnreachable(reason)));
    w();
    return new RelayError('busy', `core: ${reason}`);
  };

  const loadWarner = everyInterval(60_000, (skipped) => opts.log.info({ skipped }, 'core load report unavailable; difficulty follows handshake counts only'));
  const warnLoad = (reason: string): void => {
    opts.log.debug({ reason }, 'core load report unavailable');
    loadWarner();
  };

  /**
   * One request with one retry after a connection that broke before any answer. Resolves once the
   * headers are here; rejects with the transport error (callers turn it into "busy" or null).
   */
  const request = async (method: 'GET' | 'POST', path: string, body: Buffer | null, contentType: string | null, deadlineMs: number): Promise<CoreResponse> => {
    const headers = contentType === null ? fixedHeaders : { ...fixedHeaders, 'content-type': contentType };
    for (let retry = true; ; retry = false) {
      try {
        const res = await pool.request({
          method,
          path: `${pathPrefix}${path}`,
          headers,
          body,
          // The pool's timeout, except on the retry: the rest of the deadline.
          ...(retry ? {} : { headersTimeout: Math.max(1, deadlineMs - Date.now()) }),
        });
        return { statusCode: res.statusCode, headers: res.headers, body: res.body };
      } catch (err) {
        if (retry && RETRYABLE.has(errCode(err)) && Date.now() < deadlineMs) continue;
        throw err;
      }
    }
  };

  const send = async (path: string, body: Buffer, contentType: string): Promise<CoreResponse> => {
    let res: CoreResponse;
    try {
      res = await request('POST', path, body, contentType, Date.now() + opts.timeoutMs);
    } catch (err) {
      throw busy(errCode(err));
    }
    res.body.on('error', () => {}); // a body that breaks off surfaces to its reader as 'close' without 'end'
    if (res.statusCode >= 500 || res.statusCode === 403) {
      res.body.resume();
      throw busy(`status ${res.statusCode}`);
    }
    return res;
  };

  /** Reads a small response body whole, within the deadline; any failure drops the body and is 503. */
  const readSmall = (res: CoreResponse, deadlineMs: number): Promise<Buffer> => {
    let timer: NodeJS.Timeout | undefined;
    return readStream(res.body, MAX_SMALL_RESPONSE_BYTES, {
      tooLarge: () => busy('response too large'),
      broken: () => busy('aborted'),
      stopper: (stop) => {
        timer = setTimeout(() => stop(busy('timeout reading body')), Math.max(1, deadlineMs - Date.now()));
      },
      settled: () => clearTimeout(timer),
    }).catch((err: unknown) => {
      res.body.destroy();
      throw err;
    });
  };

  return {
    async mint(req) {
      const deadlineMs = Date.now() + opts.timeoutMs;
      const res = await send(INTERNAL_SESSIONS_PATH, Buffer.from(JSON.stringify(req)), 'application/json');
      const raw = await readSmall(res, deadlineMs);
      let parsed: ReturnType<typeof parseMintResponse> = null;
      try {
        parsed = parseMintResponse(JSON.parse(raw.toString('utf8')));
      } catch {
        parsed = null;
      }
      if (res.statusCode === 200 && parsed?.status === 'ok') return { status: 'ok', relaySessionPk: parsed.relaySessionPk };
      if (res.statusCode === 409 && parsed?.status === 'proven') return { status: 'proven' };
      throw busy(`unexpected mint answer ${res.statusCode}`);
    },
    send,
    async load() {
      const deadlineMs = Date.now() + opts.timeoutMs;
      let res: CoreResponse;
      try {
        res = await request('GET', INTERNAL_LOAD_PATH, null, null, deadlineMs);
      } catch (err) {
        warnLoad(errCode(err));
        return null;
      }
      res.body.on('error', () => {});
      if (res.statusCode !== 200) {
        res.body.resume();
        warnLoad(`status ${res.statusCode}`);
        return null;
      }
      let report: LoadReport | null = null;
      try {
        report = parseLoadReport(JSON.parse((await readSmall(res, deadlineMs)).toString('utf8')));
      } catch {
        report = null;
      }
      if (report === null) warnLoad('bad load report');
      return report;
    },
    close() {
      void pool.destroy().catch(() => {});
    },
  };
}
