/**
 * The core's HTTP application (node:http, no framework): health routes, the internal-secret gate,
 * `/internal/sessions`, and the proxied `/prove` and `/command`. `createApp` builds it from its
 * dependencies without listening, so tests mount it on their own server with a fake clock.
 *
 * `fail` is the one place that turns errors into responses: RelayError → its status and texts,
 * a store failure → 503 with Retry-After, anything else → 500 I and a log line.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  BodyTooLargeError,
  COMMON_HEADERS,
  CONSUMED_HANDSHAKE_HEADER,
  INTERNAL_SECRET_HEADER,
  INTERNAL_SESSIONS_PATH,
  TEXT_CONTENT_TYPE,
  isRelayError,
  normalizePath,
  readBody,
  routeApi,
  sendError,
  sendOk,
  sendPreflight,
  type Clock,
  type Crypto,
} from '@zax/protocol';
import { runCommand } from './command.js';
import type { Config } from './config.js';
import { createFileSeed } from './file-seed.js';
import { mintSession } from './internal-sessions.js';
import { createKeys } from './keys.js';
import type { Log } from './log.js';
import { prove } from './prove.js';
import type { CoreRedis } from './redis.js';
import { createStoreGuard } from './store-guard.js';
import { createStores, isStoreUnavailable, storeCall } from './store/index.js';

export interface AppDeps {
  readonly config: Config;
  readonly redis: CoreRedis;
  readonly clock: Clock;
  readonly crypto: Crypto;
  readonly log: Log;
}

export interface App {
  /** A node:http request listener. */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** Stops taking requests (503 from now on) and resolves once in-flight requests have finished. */
  close(): Promise<void>;
}

const LIVEZ = '/livez';
const READYZ = '/readyz';

/** A log label for a path: the known routes, or "other" (raw paths are never logged). */
function routeLabel(path: string): string {
  return path === LIVEZ || path === READYZ || path === INTERNAL_SESSIONS_PATH || path === '/prove' || path === '/command' ? path : 'other';
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export function createApp(deps: AppDeps): App {
  const { config, redis, clock, crypto, log } = deps;
  const keys = createKeys(config.redisPrefix);
  const stores = createStores(redis, keys, config);
  const fileSeed = createFileSeed({ configured: config.fileSeed, redis, key: keys.fileSeed, randomBytes: crypto.randomBytes });
  const storeGuard = createStoreGuard(redis, { ratio: config.storeHighWaterRatio, retryAfterSec: config.busyRetryAfterSec, log });
  const secretDigests = [config.internalSecret, config.internalSecretPrevious].filter((s): s is string => s !== null).map(digest);

  /** Constant-time against every accepted secret (digests make the lengths equal). */
  function secretOk(header: string | string[] | undefined): boolean {
    if (typeof header !== 'string') return false;
    const got = digest(header);
    let ok = false;
    for (const d of secretDigests) ok = timingSafeEqual(got, d) || ok;
    return ok;
  }

  function sendPlain(res: ServerResponse, status: number, body: string, extra: Record<string, string> = {}): void {
    res.writeHead(status, { ...COMMON_HEADERS, ...extra, 'content-type': TEXT_CONTENT_TYPE, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  function sendJson(res: ServerResponse, status: number, value: unknown): void {
    const body = JSON.stringify(value);
    res.writeHead(status, { 'cache-control': 'no-store', 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  // During an outage every request fails the same way: log the first, then at most one a second.
  let lastStoreWarnMs = -Infinity;
  let suppressedStoreWarns = 0;
  function warnStoreUnavailable(op: string, message: string): void {
    const t = performance.now();
    if (t - lastStoreWarnMs < 1000) {
      suppressedStoreWarns++;
      return;
    }
    log.warn({ op, err: message, suppressed: suppressedStoreWarns }, 'store unavailable');
    lastStoreWarnMs = t;
    suppressedStoreWarns = 0;
  }

  function fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    if (isRelayError(err)) {
      log.debug({ code: err.code, why: err.logMessage }, 'request refused');
      sendError(res, err.code, err.retryAfterSec ?? config.busyRetryAfterSec);
    } else if (err instanceof BodyTooLargeError) {
      sendError(res, 'tooLarge', config.busyRetryAfterSec);
    } else if (isStoreUnavailable(err)) {
      warnStoreUnavailable(err.op, err.message);
      sendError(res, 'busy', config.busyRetryAfterSec);
    } else if (req.destroyed && !req.complete) {
      // The client went away while sending its body: nobody is left to answer.
      res.destroy();
    } else {
      log.error({ err: err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : String(err) }, 'internal error');
      sendError(res, 'internal', config.busyRetryAfterSec);
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const path = normalizePath(url);
    const method = req.method ?? '';

    if (path === LIVEZ) return sendPlain(res, 200, 'ok');
    if (path === READYZ) {
      await storeCall('ping', () => redis.ping());
      return sendPlain(res, 200, 'ok');
    }

    if (!secretOk(req.headers[INTERNAL_SECRET_HEADER])) {
      req.resume();
      res.writeHead(403, { ...COMMON_HEADERS, 'content-length': 0 });
      res.end();
      return;
    }

    if (path === INTERNAL_SESSIONS_PATH) {
      if (method !== 'POST') {
        res.writeHead(405, { ...COMMON_HEADERS, allow: 'POST', 'content-length': 0 });
        res.end();
        return;
      }
      const reply = await mintSession({ stores, crypto, clock, log }, await readBody(req, config.maxHandshakeBodyBytes));
      return sendJson(res, reply.status, reply.body);
    }

    const route = routeApi(method, url);
    switch (route.kind) {
      case 'notFound':
        return sendError(res, 'notFound', config.busyRetryAfterSec);
      case 'wrongMethod':
        return sendError(res, 'methodNotAllowed', config.busyRetryAfterSec);
      case 'preflight':
        return sendPreflight(res);
      case 'api':
        break;
    }
    switch (route.path) {
      case '/prove': {
        const body = await readBody(req, config.maxHandshakeBodyBytes);
        // latin1: one char per byte, so line lengths are byte lengths and nothing is lost.
        const result = await prove({ config, stores, crypto, clock, log }, body.toString('latin1'));
        res.setHeader(CONSUMED_HANDSHAKE_HEADER, result.consumedHandshake);
        return sendOk(res, result.body);
      }
      case '/command': {
        const body = await readBody(req, config.maxCommandBodyBytes);
        return sendOk(res, await runCommand({ config, stores, crypto, clock, log, fileSeed, storeGuard }, body.toString('latin1')));
      }
      case '/start_session':
      case '/verify_session':
        // Answered by the gatekeeper; never forwarded to the core.
        req.resume();
        return sendError(res, 'notFound', config.busyRetryAfterSec);
    }
  }

  let inFlight = 0;
  let closing = false;
  const drained: (() => void)[] = [];

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    if (closing) {
      req.resume();
      res.setHeader('connection', 'close');
      sendError(res, 'busy', config.busyRetryAfterSec);
      return;
    }
    inFlight++;
    handle(req, res)
      .catch((err: unknown) => fail(req, res, err))
      .catch((err: unknown) => {
        log.error({ err: err instanceof Error ? err.message : String(err) }, 'error while answering an error');
        res.destroy();
      })
      .finally(() => {
        log.debug(
          { method: req.method, route: routeLabel(normalizePath(req.url ?? '/')), status: res.statusCode, ms: Math.round(performance.now() - started) },
          'request',
        );
        inFlight--;
        if (inFlight === 0) drained.splice(0).forEach((f) => f());
      });
  };

  return {
    handler,
    close() {
      closing = true;
      if (inFlight === 0) return Promise.resolve();
      return new Promise((resolve) => drained.push(resolve));
    },
  };
}
