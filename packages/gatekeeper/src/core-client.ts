/**
 * The gatekeeper's only way to the core: POSTs over one keep-alive agent with the internal secret.
 * Every failure to reach the core (refused, reset, timeout, 5xx, 403) becomes RelayError('busy'),
 * which the app answers with 503 + Retry-After (docs/CONTRACT.md); never 500, never a hang.
 *
 * An `https://` CORE_URL runs the same requests over TLS (≥ 1.2) through an https.Agent with the
 * same keep-alive rules, verifying the core's certificate against the system roots plus the extra
 * CA of CORE_CA_FILE. The shared secret is sent all the same: TLS protects it on the wire, the
 * secret is what the core checks. A certificate the gatekeeper cannot verify is a failure to reach
 * the core like any other (503).
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
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
import { everyInterval, type Logger } from './log.js';

/**
 * Idle keep-alive sockets are dropped after 4 s. The core's server keeps idle sockets for 65 s
 * (`keepAliveTimeout` in packages/core/src/main.ts; Node's default would be 5 s): 4 s is below
 * both, so the gatekeeper always gives up an idle socket before the core closes it and never
 * writes a request onto a socket the core is closing (ECONNRESET). The one race left (a core
 * restart) is covered by one retry on a fresh socket. If the core's timeout drops below 4 s, lower
 * this too.
 */
export const AGENT_IDLE_TIMEOUT_MS = 4000;

/**
 * Once the core has answered, its body may stream to a slow phone for a while (a `download` can be
 * megabytes): the socket may then idle this long while the client drains it.
 */
const BODY_IDLE_TIMEOUT_MS = 30_000;

/** A mint answer or a load report is a tiny JSON object; anything longer is not one. */
const MAX_SMALL_RESPONSE_BYTES = 4096;

export type MintResult = { status: 'ok'; relaySessionPk: string } | { status: 'proven' };

export interface CoreClient {
  /** POST /internal/sessions. Throws RelayError('busy') unless the core answers ok or proven. */
  mint(req: MintRequest): Promise<MintResult>;
  /**
   * POSTs a client body to the core and resolves with the response once its headers arrive. A 5xx
   * or 403 response, or no response within the timeout, throws RelayError('busy') (its body drained).
   */
  send(path: string, body: Buffer, contentType: string): Promise<IncomingMessage>;
  /**
   * GET /internal/load. Null when the core cannot be reached or gives no valid version-1 report
   * (a core without the route answers 404): the difficulty controller treats all of these alike.
   */
  load(): Promise<LoadReport | null>;
  /** Closes the agent's sockets. */
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

export function createCoreClient(opts: CoreClientOptions): CoreClient {
  const agentOptions: http.AgentOptions = {
    keepAlive: true,
    timeout: AGENT_IDLE_TIMEOUT_MS,
    maxSockets: 512,
    maxFreeSockets: 64,
    scheduling: 'lifo',
  };
  const overTls = new URL(opts.coreUrl).protocol === 'https:';
  const agent = overTls
    ? new https.Agent({
        ...agentOptions,
        minVersion: 'TLSv1.2',
        // `ca` replaces the default trust store, so the system roots go in with the extra CA.
        ...(opts.ca !== undefined ? { ca: [...rootCertificates, opts.ca.toString()] } : {}),
      })
    : new http.Agent(agentOptions);
  const request = overTls ? https.request : http.request;
  // Parsed once: a URL string per request costs a WHATWG URL parse on the hot path.
  const base = new URL(opts.coreUrl);
  const pathPrefix = base.pathname.replace(/\/+$/, '');
  const target = {
    protocol: base.protocol,
    hostname: base.hostname.startsWith('[') ? base.hostname.slice(1, -1) : base.hostname,
    port: base.port === '' ? (overTls ? 443 : 80) : Number(base.port),
    ...(base.username !== '' ? { auth: `${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}` } : {}),
  };
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

  /** One attempt; `retry` allows one more after a reset on a reused keep-alive socket. */
  const attempt = (path: string, body: Buffer, contentType: string, deadlineMs: number, retry: boolean): Promise<IncomingMessage> =>
    new Promise((resolve, reject) => {
      const req = request({
        ...target,
        path: `${pathPrefix}${path}`,
        method: 'POST',
        agent,
        timeout: opts.timeoutMs,
        headers: {
          'content-type': contentType,
          'content-length': body.length,
          [INTERNAL_SECRET_HEADER]: opts.internalSecret,
        },
      });
      let answered = false;
      const timer = setTimeout(() => req.destroy(Object.assign(new Error('core timeout'), { code: 'ETIMEDOUT' })), Math.max(1, deadlineMs - Date.now()));
      req.on('timeout', () => req.destroy(Object.assign(new Error('core socket idle'), { code: 'ETIMEDOUT' })));
      req.on('error', (err) => {
        clearTimeout(timer);
        if (answered) return; // the response stream reports it to whoever reads the body
        // Node's documented pattern: a keep-alive socket the core closed just as we reused it.
        if (retry && req.reusedSocket && errCode(err) === 'ECONNRESET' && Date.now() < deadlineMs) {
          resolve(attempt(path, body, contentType, deadlineMs, false));
          return;
        }
        reject(busy(errCode(err)));
      });
      req.on('response', (res) => {
        answered = true;
        clearTimeout(timer);
        req.setTimeout(BODY_IDLE_TIMEOUT_MS);
        res.on('error', () => {}); // an aborted body surfaces through 'aborted'/'close' to the reader
        if (res.statusCode === undefined || res.statusCode >= 500 || res.statusCode === 403) {
          res.resume();
          reject(busy(`status ${res.statusCode ?? 'none'}`));
          return;
        }
        resolve(res);
      });
      req.end(body);
    });

  const send = (path: string, body: Buffer, contentType: string): Promise<IncomingMessage> =>
    attempt(path, body, contentType, Date.now() + opts.timeoutMs, true);

  /** Reads a small response body, within the deadline. */
  const readSmall = (res: IncomingMessage, deadlineMs: number): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const fail = (reason: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        res.destroy();
        reject(busy(reason));
      };
      const timer = setTimeout(() => fail('timeout reading body'), Math.max(1, deadlineMs - Date.now()));
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_SMALL_RESPONSE_BYTES) fail('response too large');
        else chunks.push(c);
      });
      res.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(Buffer.concat(chunks));
      });
      res.on('aborted', () => fail('aborted'));
      res.on('close', () => {
        if (!res.complete) fail('aborted');
      });
    });

  return {
    async mint(req) {
      const deadlineMs = Date.now() + opts.timeoutMs;
      const res = await attempt(INTERNAL_SESSIONS_PATH, Buffer.from(JSON.stringify(req)), 'application/json', deadlineMs, true);
      const raw = await readSmall(res, deadlineMs);
      let parsed: ReturnType<typeof parseMintResponse> = null;
      try {
        parsed = parseMintResponse(JSON.parse(raw.toString('utf8')));
      } catch {
        parsed = null;
      }
      if (res.statusCode === 200 && parsed?.status === 'ok') return { status: 'ok', relaySessionPk: parsed.relaySessionPk };
      if (res.statusCode === 409 && parsed?.status === 'proven') return { status: 'proven' };
      throw busy(`unexpected mint answer ${res.statusCode ?? 'none'}`);
    },
    send,
    load() {
      const deadlineMs = Date.now() + opts.timeoutMs;
      return new Promise<LoadReport | null>((resolve) => {
        const req = request(`${opts.coreUrl}${INTERNAL_LOAD_PATH}`, {
          method: 'GET',
          agent,
          timeout: opts.timeoutMs,
          headers: { [INTERNAL_SECRET_HEADER]: opts.internalSecret },
        });
        const timer = setTimeout(() => req.destroy(), opts.timeoutMs);
        const unavailable = (reason: string): void => {
          clearTimeout(timer);
          warnLoad(reason);
          resolve(null);
        };
        req.on('timeout', () => req.destroy());
        req.on('error', (err) => unavailable(errCode(err)));
        req.on('response', (res) => {
          clearTimeout(timer);
          res.on('error', () => {});
          if (res.statusCode !== 200) {
            res.resume();
            unavailable(`status ${res.statusCode ?? 'none'}`);
            return;
          }
          readSmall(res, deadlineMs).then(
            (raw) => {
              let report: LoadReport | null = null;
              try {
                report = parseLoadReport(JSON.parse(raw.toString('utf8')));
              } catch {
                report = null;
              }
              if (report === null) unavailable('bad load report');
              else resolve(report);
            },
            () => unavailable('load report body'),
          );
        });
        req.end();
      });
    },
    close() {
      agent.destroy();
    },
  };
}
