/**
 * Memory bounds of the gatekeeper, whatever clients do (docs/CONTRACT.md, packages/gatekeeper/README.md
 * "Memory bounds"):
 *
 * - request-body bytes in flight: one budget per process (MAX_BODY_BYTES_IN_FLIGHT, refused with the
 *   protocol's "busy", 503) and one per client address, the throttle's bucket name
 *   (MAX_BODY_BYTES_IN_FLIGHT_PER_IP, refused with 429). A body with a Content-Length reserves its
 *   declared size before a byte of it is read; a chunked body reserves what arrives, chunk by chunk.
 *   A reservation is given back exactly once, when the response closes, however the request ended.
 * - a minimum body rate: a body that stops (no byte for BODY_IDLE_TIMEOUT_MS) or trickles (fewer than
 *   BODY_MIN_BYTES_PER_SEC on average once BODY_GRACE_MS are over) is cut off with 408.
 * - response bytes the gatekeeper holds whole for slow clients (MAX_RESPONSE_BYTES_HELD): past it, a
 *   core answer streams with backpressure instead of being buffered (forward.ts).
 *
 * The body watch uses one timer for all requests (a sweep every 250 ms), not one per request.
 */
import { readStream } from '@zax/service';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Edge } from './edge.js';
import { RelayError } from '@zax/protocol';

export type Refusal = 'process' | 'address';

/**
 * A body declared at most this long (every handshake body and every command but an upload) may use
 * a headroom of an eighth of the process budget above it: large bodies filling the budget then
 * cannot refuse every other client's small requests. Small bodies are few bytes each, so the
 * headroom is a bound, not a reservation.
 */
export const SMALL_BODY_BYTES = 4096;

/** Bytes reserved against a process-wide total and a per-client total. */
export class ByteBudget {
  private total = 0;
  private readonly perClient = new Map<string, number>();

  constructor(
    /** Most bytes in the process. */
    readonly maxTotal: number,
    /** Most bytes of one client. */
    readonly maxPerClient: number,
  ) {}

  get inFlight(): number {
    return this.total;
  }

  /** Clients holding bytes now (for tests and metrics). */
  get clients(): number {
    return this.perClient.size;
  }

  /**
   * Reserves `n` bytes for `client`, or reserves nothing and says which budget refused. `headroom`
   * lets the process total pass `maxTotal` by that much (small bodies: see SMALL_BODY_BYTES).
   */
  take(client: string, n: number, headroom = 0): Refusal | null {
    const mine = this.perClient.get(client) ?? 0;
    if (n > 0 && this.total + n > this.maxTotal + headroom) return 'process';
    if (n > 0 && mine + n > this.maxPerClient) return 'address';
    this.total += n;
    if (n > 0) this.perClient.set(client, mine + n);
    return null;
  }

  give(client: string, n: number): void {
    if (n <= 0) return;
    this.total -= n;
    const left = (this.perClient.get(client) ?? 0) - n;
    if (left > 0) this.perClient.set(client, left);
    else this.perClient.delete(client);
  }

  /** A reservation for one request, released once. */
  open(client: string): Reservation {
    return new Reservation(this, client);
  }
}

export class Reservation {
  private held = 0;
  private released = false;

  constructor(
    private readonly budget: ByteBudget,
    private readonly client: string,
  ) {}

  /** Reserves `n` more bytes; after release nothing more is reserved (and nothing refused). */
  grow(n: number, headroom = 0): Refusal | null {
    if (this.released) return null;
    const refused = this.budget.take(this.client, n, headroom);
    if (refused === null) this.held += n;
    return refused;
  }

  /** Gives every byte back; later calls do nothing. */
  readonly release = (): void => {
    if (this.released) return;
    this.released = true;
    this.budget.give(this.client, this.held);
    this.held = 0;
  };
}

/** The request body could not be read whole: why. */
export class BodyRefused extends Error {
  override readonly name = 'BodyRefused';
  constructor(readonly reason: Refusal | 'slow' | 'aborted') {
    super(reason);
  }
}

export interface BodyRateOptions {
  /** Average bytes per second a body must keep up once the grace is over. */
  readonly minBytesPerSec: number;
  readonly graceMs: number;
  /** A body with no byte for this long is cut off, grace or not. */
  readonly idleTimeoutMs: number;
}

interface Watched {
  readonly startMs: number;
  lastByteMs: number;
  received: number;
  readonly expired: () => void;
}

const SWEEP_MS = 250;

/**
 * Watches the bodies being read; calls `expired` once for a body that stalls or trickles. The sweep
 * timer starts with the first body and runs (unref'd) until close: a sweep of an empty set costs
 * nothing, while starting and stopping a timer for every request would.
 */
export class BodyWatch {
  private readonly active = new Set<Watched>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: BodyRateOptions) {}

  get size(): number {
    return this.active.size;
  }

  watch(expired: () => void): { bytes(n: number): void; done(): void } {
    const now = performance.now();
    const w: Watched = { startMs: now, lastByteMs: now, received: 0, expired };
    this.active.add(w);
    this.timer ??= setInterval(() => this.sweep(), SWEEP_MS).unref();
    return {
      bytes: (n) => {
        w.received += n;
        w.lastByteMs = performance.now();
      },
      done: () => this.remove(w),
    };
  }

  private remove(w: Watched): void {
    this.active.delete(w);
  }

  private sweep(): void {
    const now = performance.now();
    const { minBytesPerSec, graceMs, idleTimeoutMs } = this.opts;
    for (const w of this.active) {
      const overGrace = now - w.startMs - graceMs;
      const stalled = now - w.lastByteMs > idleTimeoutMs;
      const trickling = overGrace > 0 && w.received < (minBytesPerSec * overGrace) / 1000;
      if (stalled || trickling) {
        this.remove(w);
        w.expired();
      }
    }
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.active.clear();
  }
}

/** The declared Content-Length, or null (chunked, or none). node:http has already checked its syntax. */
export function declaredLength(req: IncomingMessage): number | null {
  const raw = req.headers['content-length'];
  if (raw === undefined) return null;
  const n = Number(raw);
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

/**
 * Reads a body whole under its size limit, its reservation and the rate watch. A chunked body grows
 * the reservation as it arrives (a body with a Content-Length reserved it before). Rejects with
 * RelayError('tooLarge'), or BodyRefused (a budget, too slow, or the client went away); then nothing is
 * kept, and the caller answers and closes.
 */
export function readBodyBounded(
  req: IncomingMessage,
  maxBytes: number,
  reservation: Reservation,
  chunked: boolean,
  watch: BodyWatch,
): Promise<Buffer> {
  let watched: ReturnType<BodyWatch['watch']> | null = null;
  return readStream(req, maxBytes, {
    stopper: (stop) => {
      watched = watch.watch(() => stop(new BodyRefused('slow')));
    },
    chunk: (bytes) => {
      watched!.bytes(bytes);
      const refused = chunked ? reservation.grow(bytes) : null;
      return refused === null ? null : new BodyRefused(refused);
    },
    broken: () => new BodyRefused('aborted'),
    settled: () => watched!.done(),
  });
}

/**
 * After refusing a body, the connection is half-closed at once (the rest of the body is read and
 * dropped, never kept) and destroyed after this long at most. Closing outright with unread bytes
 * would reset the connection and could lose the answer on its way to the client.
 */
const LINGER_MS = 1000;

/**
 * A route's body: its size (413), then the body budgets: a declared length is reserved before any of it is read;
 * a chunked body reserves what arrives. Given back once, when the response closes.
 */
export async function readBody(edge: Edge, req: IncomingMessage, res: ServerResponse, limit: number, client: string): Promise<Buffer | null> {
  const declared = declaredLength(req);
  if (declared !== null && declared > limit) {
    discardRest(req, limit);
    throw new RelayError('tooLarge', `content-length ${declared} > ${limit}`);
  }
  const reservation = edge.bodies.open(client);
  res.once('close', reservation.release);
  if (declared !== null) {
    const headroom = declared <= SMALL_BODY_BYTES ? Math.floor(edge.config.maxBodyBytesInFlight / 8) : 0;
    const refused = reservation.grow(declared, headroom);
    if (refused !== null) return refuseBody(edge, req, res, refused);
  }
  try {
    return await readBodyBounded(req, limit, reservation, declared === null, edge.watch);
  } catch (err) {
    if (err instanceof BodyRefused) {
      if (err.reason !== 'aborted') return refuseBody(edge, req, res, err.reason);
      // The client went away mid-body: there is no one to answer.
      res.destroy();
      return null;
    }
    discardRest(req, limit);
    throw err;
  }
}

/**
 * A body refused by a budget (503 for the process, 429 for the address) or cut off as too slow
 * (408): answered at once, the connection half-closed and then destroyed (LINGER_MS); nothing of
 * the body is kept.
 */
function refuseBody(edge: Edge, req: IncomingMessage, res: ServerResponse, reason: Refusal | 'slow'): null {
  edge.metrics.bodyRefused(reason);
  const socket = req.socket;
  if (res.headersSent || res.destroyed) {
    socket.destroy();
    return null;
  }
  res.once('finish', () => {
    socket.end();
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  });
  const refusal =
    reason === 'slow'
      ? new RelayError('bodyTimeout', 'body too slow')
      : reason === 'process'
        ? new RelayError('busy', 'body budget (process)')
        : new RelayError('throttled', 'body budget (address)', 1);
  edge.fail(req, res, refusal);
  return null;
}

/**
 * Reads and drops the rest of a body that will not be used (after a 413, 429 or 503), up to a
 * bound; past it the socket goes. Keeps the connection usable for the client's next request.
 */
export function discardRest(req: IncomingMessage, limit: number): void {
  const bound = 2 * limit + 65_536;
  let dropped = 0;
  req.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > bound) req.socket.destroy();
  });
  req.resume();
}
