/**
 * The gatekeeper's request handler (node:http, no framework): health, routing (PROTOCOL.md §2.1),
 * body limits (§2.2, DEVIATION D11), the two handshake endpoints answered here, /prove and /command
 * forwarded to the core. The one place that turns errors into responses: a RelayError becomes its
 * status and fixed texts; anything else is logged and answered 503, never 500 (the gatekeeper's
 * only faults are unavailable dependencies), and nothing a client sends can throw past here.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  API_PATHS,
  BodyTooLargeError,
  RelayError,
  isRelayError,
  normalizePath,
  readBody,
  routeApi,
  sendError,
  sendOk,
  sendPreflight,
  type ApiPath,
  type Clock,
} from '@zax/protocol';
import type { Config } from './config.js';
import { createCoreClient } from './core-client.js';
import { staticDifficulty, type DifficultyProvider } from './difficulty.js';
import { forward } from './forward.js';
import type { HandshakeDeps } from './handshake/deps.js';
import { startSession } from './handshake/start-session.js';
import { handshakeStore } from './handshake/store.js';
import { verifySession } from './handshake/verify-session.js';
import { edgeKeys } from './keys.js';
import type { Logger } from './log.js';
import type { EdgeRedis } from './redis.js';

export interface AppDeps {
  readonly config: Config;
  /** From connectRedis: the caller owns it and closes it. */
  readonly redis: EdgeRedis;
  readonly clock: Clock;
  /** CSPRNG (`randomBytes` from @zax/protocol); tests inject relay tokens. */
  readonly random: (n: number) => Uint8Array;
  readonly log: Logger;
  /** @default staticDifficulty(config.difficulty) */
  readonly difficulty?: DifficultyProvider;
}

export interface App {
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** Releases what the app owns (the core agent). Does not close `redis`. */
  close(): Promise<void>;
}

const noop = (): void => {};

const LOGGED_PATHS: ReadonlySet<string> = new Set([...API_PATHS, '/livez', '/readyz']);

export function createApp(deps: AppDeps): App {
  const { config, redis, log } = deps;
  const store = handshakeStore(redis, edgeKeys(config.edgeRedisPrefix));
  const core = createCoreClient({
    coreUrl: config.coreUrl,
    internalSecret: config.internalSecret,
    timeoutMs: config.coreTimeoutMs,
    log,
  });
  const hs: HandshakeDeps = {
    config,
    store,
    clock: deps.clock,
    random: deps.random,
    difficulty: deps.difficulty ?? staticDifficulty(config.difficulty),
    core,
    log,
  };

  const bodyLimit: Readonly<Record<ApiPath, number>> = {
    '/start_session': config.maxHandshakeBodyBytes,
    '/verify_session': config.maxHandshakeBodyBytes,
    '/prove': config.maxHandshakeBodyBytes,
    '/command': config.maxCommandBodyBytes,
  };

  /** After a 413 the rest of the body is read and dropped, up to a bound; past it the socket goes. */
  function discardRest(req: IncomingMessage, limit: number): void {
    const bound = 2 * limit + 65_536;
    let dropped = 0;
    req.on('data', (chunk: Buffer) => {
      dropped += chunk.length;
      if (dropped > bound) req.socket.destroy();
    });
    req.resume();
  }

  async function handleApi(path: ApiPath, req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body: Buffer;
    try {
      body = await readBody(req, bodyLimit[path]);
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        discardRest(req, bodyLimit[path]);
        throw new RelayError('tooLarge', err.message);
      }
      // The client went away mid-body: there is no one to answer.
      res.destroy();
      return;
    }
    switch (path) {
      case '/start_session':
        sendOk(res, await startSession(hs, body));
        return;
      case '/verify_session':
        sendOk(res, await verifySession(hs, body));
        return;
      case '/prove':
      case '/command':
        await forward(hs, path, body, res);
        return;
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const method = req.method ?? '';
    if (method === 'GET' || method === 'HEAD') {
      const p = normalizePath(url);
      if (p === '/livez') return sendOk(res, 'ok');
      if (p === '/readyz') {
        // Readiness is the edge Redis only: with the core down the gatekeeper still answers 503s.
        try {
          await redis.ping();
          return sendOk(res, 'ok');
        } catch {
          return sendError(res, 'busy', config.busyRetryAfterSec);
        }
      }
    }
    const route = routeApi(method, url);
    switch (route.kind) {
      case 'notFound':
        return sendError(res, 'notFound', 0);
      case 'wrongMethod':
        return sendError(res, 'methodNotAllowed', 0);
      case 'preflight':
        return sendPreflight(res);
      case 'api':
        return handleApi(route.path, req, res);
    }
  }

  function fail(res: ServerResponse, err: unknown): void {
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    if (isRelayError(err)) {
      if (err.code === 'busy') log.debug({ reason: err.logMessage }, 'busy');
      sendError(res, err.code, err.retryAfterSec ?? config.busyRetryAfterSec);
      return;
    }
    // A fault of ours. Only the name and message are logged: ioredis errors carry command
    // arguments, which may be tokens.
    log.error(
      { errName: err instanceof Error ? err.name : typeof err, errMessage: err instanceof Error ? err.message.slice(0, 200) : '' },
      'unexpected error',
    );
    sendError(res, 'busy', config.busyRetryAfterSec);
  }

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    // Aborted requests and broken sockets must never become uncaught 'error' events.
    req.on('error', noop);
    res.on('error', noop);
    const startedMs = performance.now();
    handle(req, res)
      .catch((err: unknown) => {
        try {
          fail(res, err);
        } catch {
          res.destroy();
        }
      })
      .finally(() => {
        if (log.isLevelEnabled('debug')) {
          // Only known paths are logged: anything else a client typed stays out of the log.
          const p = normalizePath(req.url ?? '/');
          log.debug(
            { method: req.method, path: LOGGED_PATHS.has(p) ? p : 'other', status: res.statusCode, ms: Math.round(performance.now() - startedMs) },
            'request',
          );
        }
      });
  };

  return {
    handler,
    close: async () => core.close(),
  };
}
