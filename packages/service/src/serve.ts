/**
 * The serving skeleton of both tiers' main.ts: a bad configuration exits 1 with its list of
 * problems, the public port is plain HTTP or HTTPS (TLS ≥ 1.2, optionally reloaded on SIGHUP or a
 * file change), an optional plain-HTTP admin port listens first (so "listening" means everything is
 * up), a port that cannot be had exits 1 with a readable reason, and SIGTERM/SIGINT (or the
 * launcher's IPC channel closing) stop accepting and drain in-flight requests within a deadline.
 *
 * The stop is bounded whatever the stores or the reader of stdout do: connections still open after
 * the drain deadline are closed, the process exits 0 `STOP_EXIT_AFTER_DRAIN_MS` later however far
 * the stop got, and should its main thread be stuck even so, a thread of its own SIGKILLs it
 * `STOP_KILL_AFTER_EXIT_MS` after that (`killAfter`).
 */
import http from 'node:http';
import https from 'node:https';
import { cannotListenMessage } from './listen-error.js';
import { killAfter } from './process.js';
import { ConfigError } from './config.js';
import type { Logger } from './log.js';
import { TlsPairError, tlsReloader, type CertInfo, type TlsPair, type TlsReloader, type TlsVars } from './tls.js';

/** Longest drain on shutdown before open connections are cut. */
export const DRAIN_TIMEOUT_MS = 10_000;
/** After the drain deadline, the process exits 0 by then, however far the stop got. */
const STOP_EXIT_AFTER_DRAIN_MS = 3000;
/** ... and is SIGKILLed by its own watchdog thread by then if its main thread is stuck. */
const STOP_KILL_AFTER_EXIT_MS = 2000;
/** A TLS handshake gets as long as request headers do (slow-loris bound; Node's default is 120 s). */
const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/** stderr's reader gone (the launcher killed): a line written there must not crash the stop. */
export function ignoreStderrErrors(): void {
  process.stderr.on('error', () => {});
}

/**
 * Runs a start-up step that may refuse the configuration (ConfigError, TlsPairError): its
 * problems go to stderr after `prefix` and the process exits 1. Other errors pass.
 */
export function orExit<T>(prefix: string, step: () => T): T {
  try {
    return step();
  } catch (err) {
    const refused = err instanceof ConfigError ? err : err instanceof TlsPairError ? new ConfigError(err.problems) : null;
    if (refused === null) throw err;
    process.stderr.write(`${prefix}: ${refused.message}\n`);
    process.exit(1);
  }
}

/** The public server: plain HTTP, or HTTPS with `tls` (the handshake bounded like the headers). */
export function createServer(tls: TlsPair['options'] | null, handler: http.RequestListener, options: http.ServerOptions = {}): http.Server {
  if (tls === null) return http.createServer(options, handler);
  return https.createServer({ ...tls, ...options, handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS }, handler);
}

export interface TlsServing {
  readonly server: https.Server;
  readonly certFile: string;
  readonly keyFile: string;
  /** The pair the server was created with. */
  readonly pair: TlsPair;
  readonly log: Logger;
  readonly vars?: TlsVars;
  /** Poll period of the file watch; 0 = SIGHUP only. */
  readonly watchIntervalMs: number;
  /** Every load, the first included (metrics). */
  readonly onLoad: (outcome: 'ok' | 'failed', info: CertInfo) => void;
}

/**
 * Serves the pair and reloads it on SIGHUP or a change of either file; a failed handshake (a
 * scanner, a client without the CA) is the client's problem: a debug line, no more.
 */
export function serveTls(opts: TlsServing): TlsReloader {
  const { server, pair, log } = opts;
  opts.onLoad('ok', pair.info);
  log.info({ fingerprint256: pair.info.fingerprint256, validTo: new Date(pair.info.validToMs).toISOString() }, 'tls certificate loaded');
  const reloader = tlsReloader({
    certFile: opts.certFile,
    keyFile: opts.keyFile,
    initial: pair,
    apply: (options) => server.setSecureContext(options),
    log,
    onReload: opts.onLoad,
    watchIntervalMs: opts.watchIntervalMs,
    ...(opts.vars !== undefined ? { vars: opts.vars } : {}),
  });
  process.on('SIGHUP', () => reloader.reload('SIGHUP'));
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket) => {
    log.debug({ code: err.code ?? 'unknown' }, 'tls handshake failed');
    socket.destroy();
  });
  return reloader;
}

/** A port to listen on and the variables that set it, for the messages. */
export interface PortSpec {
  readonly port: number;
  readonly portVar: string;
}

export interface ListenOptions {
  readonly log: Logger;
  readonly host: string;
  readonly hostVar: string;
  readonly server: http.Server;
  readonly main: PortSpec;
  /** The plain-HTTP admin server (health, metrics) and its port, or null. */
  readonly admin: { readonly server: http.Server; readonly spec: PortSpec } | null;
  /** Log "admin listening". @default true */
  readonly logAdmin?: boolean;
  /** Called once both listen, with the ports they got (port 0 = any free one). */
  readonly onListening: (port: number, adminPort: number | null) => void;
}

/** The port a listening server got, or `fallback`. */
export function portOf(s: http.Server, fallback: number): number {
  const addr = s.address();
  return typeof addr === 'object' && addr !== null ? addr.port : fallback;
}

/** Exits 1 with a readable reason when `server` cannot listen on its port. */
function exitOnListenError(server: http.Server, log: Logger, host: string, hostVar: string, spec: PortSpec): void {
  server.on('error', (err: NodeJS.ErrnoException) => {
    log.fatal({ code: err.code, port: spec.port }, cannotListenMessage(err.code, host, spec.port, spec.portVar, hostVar));
    process.exit(1);
  });
}

/** The admin port first, then the public one; `onListening` once both are up. */
export function listen(opts: ListenOptions): void {
  const { log, host, hostVar, server, main, admin } = opts;
  exitOnListenError(server, log, host, hostVar, main);
  const listenMain = (adminPort: number | null): void => {
    server.listen(main.port, host, () => opts.onListening(portOf(server, main.port), adminPort));
  };
  if (admin === null) return listenMain(null);
  exitOnListenError(admin.server, log, host, hostVar, admin.spec);
  admin.server.on('clientError', (_err, socket) => socket.destroy());
  admin.server.listen(admin.spec.port, host, () => {
    const adminPort = portOf(admin.server, admin.spec.port);
    if (opts.logAdmin !== false) log.info({ adminPort, host }, 'admin listening');
    listenMain(adminPort);
  });
}

export interface DrainOptions {
  readonly log: Logger;
  readonly server: http.Server;
  readonly admin: http.Server | null;
  /** Stops watching the certificate files, if any are watched. */
  readonly tls?: TlsReloader | null;
  /** After the last request: closes the tier's stores and workers; its failures are its own to absorb. */
  readonly close: () => Promise<void>;
  /** The reason logged when the IPC channel to the parent closes. @default 'launcher gone' */
  readonly parentGone?: string;
}

/**
 * SIGTERM, SIGINT or the parent's IPC channel closing (`pnpm start` starts the services with one:
 * if the launcher dies, even by SIGKILL, the service drains instead of running on as an orphan):
 * stop accepting, let in-flight requests finish (idle keep-alive connections closed at once, the
 * rest cut at DRAIN_TIMEOUT_MS), `close()`, log "stopped" and exit 0.
 */
export function drainOnSignals(opts: DrainOptions): void {
  const { log, server, admin } = opts;
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    killAfter(DRAIN_TIMEOUT_MS + STOP_EXIT_AFTER_DRAIN_MS + STOP_KILL_AFTER_EXIT_MS);
    // Last resort if closing the stores hangs: the drain is over, exit all the same.
    setTimeout(() => process.exit(0), DRAIN_TIMEOUT_MS + STOP_EXIT_AFTER_DRAIN_MS).unref();
    log.info({ signal }, 'shutting down');
    opts.tls?.close();
    const force = setTimeout(() => {
      log.warn({}, 'drain timed out; closing connections');
      server.closeAllConnections();
    }, DRAIN_TIMEOUT_MS);
    force.unref();
    const idle = setInterval(() => server.closeIdleConnections(), 100);
    admin?.close();
    admin?.closeAllConnections();
    server.close(() => {
      clearInterval(idle);
      clearTimeout(force);
      void opts.close().finally(() => {
        log.info({}, 'stopped');
        process.exit(0);
      });
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  if (process.connected) process.on('disconnect', () => shutdown(opts.parentGone ?? 'launcher gone'));
}
