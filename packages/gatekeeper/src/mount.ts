/**
 * The gatekeeper as a request handler for an application that owns the HTTP server: built from the
 * same environment variables as the process (main.ts), it returns a node:http listener that an
 * express 5 app mounts at a path prefix (`app.use('/zax', gatekeeper.handler)`) and `close()`.
 * packages/gatekeeper/README.md "Mounting in an express app" says what the host must and must not do.
 *
 * Mounted, the gatekeeper routes on `req.url`, which express has stripped of the prefix (absolute-form
 * targets included), and never calls `next`, so `req.url` stays stripped for its metrics and logs.
 * The host's server owns the socket: PORT, HOST, ADMIN_PORT and the TLS_* files are not used.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createLogger, everyInterval, readCaFile, sendError } from '@zax/service';
import { assembleGatekeeper } from './assemble.js';
import { loadConfig } from './config.js';
import { loadDashboard } from './dashboard.js';

export interface Gatekeeper {
  /** The public API, /livez and /readyz (and /metrics with METRICS_ON_PUBLIC_PORT) as one listener. */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** Stops the gatekeeper's timers, its core connections and its edge Redis connection. */
  close(): Promise<void>;
}

/**
 * Builds a gatekeeper from environment variables (the same names and defaults as the process; throws
 * ConfigError listing every problem, or naming the page that DASHBOARD=1 asks for and is not built). Resolves once a cluster or sentinel edge store answers; a single
 * Redis may come up later (requests get 503 until then).
 */
export async function createGatekeeper(env: Readonly<Record<string, string | undefined>> = process.env): Promise<Gatekeeper> {
  const config = loadConfig(env);
  const dashboard = config.dashboard ? loadDashboard() : undefined;
  const log = createLogger(config.logLevel, { service: 'gatekeeper', logClientIps: config.logClientIps });
  const coreCa = config.coreCaFile !== null ? readCaFile(config.coreCaFile) : undefined;
  const { app, close } = await assembleGatekeeper(config, log, { coreCa, dashboard });
  const warnParsed = everyInterval(60_000, (skipped) =>
    log.error({ skipped }, 'a body parser of the host application read a request body before the gatekeeper: mount the gatekeeper before it'),
  );

  return {
    handler: (req, res) => {
      // A host body parser (express.text() takes glow's text/plain) has read the body already: the
      // gatekeeper would wait for bytes that never come. Refused at once, and said in the log.
      if (req.readableEnded) {
        warnParsed();
        sendError(res, 'busy', config.busyRetryAfterSec);
        return;
      }
      app.handler(req, res);
    },
    close,
  };
}
