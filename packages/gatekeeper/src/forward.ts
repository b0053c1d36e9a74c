/**
 * POST /prove and /command: the client's raw body goes to the core unchanged, and the core's
 * status, body and protocol headers come back unchanged. The one internal header the core adds
 * (the handshake a successful /prove consumed) is acted on here and never reaches the client.
 */
import type { ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import { COMMON_HEADERS, CONSUMED_HANDSHAKE_HEADER, TOKEN_BYTES, decodeFixed } from '@zax/protocol';
import type { RouteHandler } from './routes.js';
import type { CoreClient, CoreResponse } from './core-client.js';
import type { HandshakeStore } from './handshake/store.js';
import type { ByteBudget } from './limits.js';
import { readStream, short, type Logger } from '@zax/service';

/** Headers of the core's answer that belong to the wire protocol (docs/PROTOCOL.md §2.4). */
const COPIED_HEADERS = ['content-type', 'content-length', 'x-error-details', 'retry-after', 'allow'] as const;

/**
 * Answers up to this size are read whole and sent in one write: every command's answer, a file
 * chunk's (~683 KB at the default chunk size) included. Larger ones (a `download` of many big
 * messages) stream. Reading whole frees the core connection at once; the bytes wait for a slow
 * phone here instead of in the core's socket buffer, so the memory held is the same. All answers
 * held at once are bounded by MAX_RESPONSE_BYTES_HELD; past it they stream like large ones, and a
 * client that stops reading is dropped after WRITE_TIMEOUT_MS (its core connection then goes too).
 */
const WHOLE_BODY_BYTES = 1024 * 1024;

export interface ForwardDeps {
  readonly core: CoreClient;
  readonly store: HandshakeStore;
  readonly log: Logger;
  /**
   * Bytes of core answers held whole (one client key, ''): an answer that does not fit streams
   * instead, with backpressure to the core (MAX_RESPONSE_BYTES_HELD).
   */
  readonly held: ByteBudget;
  /** Arms the write timeout on a response about to be written (WRITE_TIMEOUT_MS). */
  readonly armWriteTimeout: (res: ServerResponse) => void;
}

/**
 * POST /prove and /command: the body goes to the core; the status the client gets (the core's, or
 * the error path's when the core cannot answer) is counted as proxied.
 */
export const forwardRoute: RouteHandler = async (edge, req, res, body, route) => {
  const label = route.label as 'prove' | 'command';
  let status: number;
  try {
    status = await forward(edge.forward, route.path, body, res);
  } catch (err) {
    status = edge.fail(req, res, err);
  }
  edge.metrics.proxied(label, status);
};

/**
 * Forwards one request. Throws RelayError('busy') when the core cannot answer; once the core's
 * headers are here it writes the response itself (a body that breaks off mid-way resets the client)
 * and returns the status it gave.
 */
export async function forward(deps: ForwardDeps, path: string, body: Buffer, res: ServerResponse): Promise<number> {
  const upstream: CoreResponse = await deps.core.send(path, body, 'text/plain; charset=utf-8');
  const status = upstream.statusCode;

  const headers: Record<string, string> = {};
  for (const name of COPIED_HEADERS) {
    const v = upstream.headers[name];
    if (typeof v === 'string') headers[name] = v;
  }
  Object.assign(headers, COMMON_HEADERS);

  const consumed = upstream.headers[CONSUMED_HANDSHAKE_HEADER];
  if (status === 200 && typeof consumed === 'string' && decodeFixed(consumed, TOKEN_BYTES) !== null) {
    // Best effort: the core's "proven" marker already refuses a second mint if this is lost.
    // Awaited so that a /start_session right after this answer starts a new handshake.
    try {
      await deps.store.delete(consumed);
    } catch {
      deps.log.warn({ hs: short(consumed) }, 'could not delete consumed handshake');
    }
  }

  const declared = Number(upstream.headers['content-length']);
  if (declared >= 0 && declared <= WHOLE_BODY_BYTES && deps.held.take('', declared) === null) {
    // Held until the client has taken the answer or is gone ('close' comes once either way).
    let given = false;
    res.once('close', () => {
      if (given) return;
      given = true;
      deps.held.give('', declared);
    });
    // Read whole and send headers and body in one write, without a pipeline's stream plumbing and
    // AbortController per request. Longer or shorter than declared is an answer that broke off.
    readStream(upstream.body, declared).then(
      (buf) => {
        if (buf.length !== declared) return brokeOff(deps, path, res);
        deps.armWriteTimeout(res);
        res.writeHead(status, headers);
        res.end(buf);
      },
      () => brokeOff(deps, path, res),
    );
    return status;
  }
  deps.armWriteTimeout(res);
  res.writeHead(status, headers);
  pipeline(upstream.body, res, (err) => {
    if (err) deps.log.debug({ path, reason: err.message.slice(0, 80) }, 'forwarded response broke off');
  });
  return status;
}

function brokeOff(deps: ForwardDeps, path: string, res: ServerResponse): void {
  deps.log.debug({ path }, 'forwarded response broke off');
  res.destroy();
}
