/**
 * Bounds on the answers a core process holds while they are built and written (docs/PROTOCOL.md
 * §5.3, DEVIATION D19), so that a mailbox owner who downloads in loops, or opens many downloads
 * and never reads them, cannot take the core's memory or starve other clients:
 *
 * - per hpk: at most `perHpk` `download` commands in flight at once, each from the moment it starts
 *   until its answer has been written out (or its connection has closed). One more is refused 429
 *   ("Too many requests. Try again later.", `Retry-After: 1`) before anything is read.
 * - per hpk, over time: the `download` answer bytes of one hpk are paid from a token bucket that
 *   refills at `perHpkBytesPerSec` (one second's worth at most). An answer is paid once its size is
 *   known and may take the bucket below zero; the hpk's next `download` is refused 429
 *   (`Retry-After`: the seconds until the debt is repaid) until it is back at zero. So however many
 *   loops one mailbox owner runs, the core spends on its answers what that rate costs, and other
 *   clients keep their latency. 0 turns it off.
 * - per process: the answer bytes in flight of every `/command` stay within `budgetBytes`. A
 *   `download` or `downloadFileChunk` reserves a bound on its answer before it reads from Redis
 *   (replaced by the real size once the answer is built). A `download` gets its full bound while
 *   at least half the budget would stay free; otherwise what is left above that half, as a smaller
 *   page, down to the bound of one largest message, and then that bound while it fits; below that, and for a `downloadFileChunk` that would pass the budget, it is refused 503 (busy,
 *   `Retry-After: busyRetryAfterSec`). Smaller answers are counted, never refused.
 *
 * app.ts makes one `AnswerGate` per `/command` request (`gate.request(res)`) and hands it to the
 * handlers as `ctx.answers`; everything the request holds is released when `res` closes,
 * which a stalled reader reaches at the latest after the server's write timeout (CORE_WRITE_TIMEOUT_MS).
 */
import { RelayError } from '@zax/protocol';

/** What the gate needs of a response: the one 'close' event, emitted after it finished or broke off. */
export interface Closable {
  once(event: 'close', listener: () => void): unknown;
}

/** One `/command` request's share of the gate. */
export interface AnswerGate {
  /**
   * Admits a download of an answer of at most about `boundBytes` (refusing it with 429 or 503), and
   * holds its share until the response closes. `hpk` counts it against the per-hpk limit; null does not.
   * With `minBytes` (< boundBytes), a budget short of `boundBytes` but with at least `minBytes` left
   * admits it with what is left: the returned grant, which the caller must keep its answer within
   * (a smaller page). 503 only below `minBytes`. Returns the bytes granted.
   */
  enter(hpk: string | null, boundBytes: number, minBytes?: number): number;
  /** The size of the answer being written: counted (in place of any reservation) until the response closes. */
  answer(bytes: number): void;
}

export interface ResponseGate {
  /** The gate of one `/command` request answered on `res`. */
  request(res: Closable): AnswerGate;
  /** Answer bytes in flight (reserved or being written) in this process. */
  bytesInFlight(): number;
  /** Downloads in flight for this hpk. */
  downloadsOf(hpk: string): number;
}

export interface ResponseGateOptions {
  /** Most `download` commands in flight per hpk (MAX_DOWNLOADS_PER_HPK). */
  readonly perHpk: number;
  /** Most answer bytes in flight in this process (CORE_MAX_RESPONSE_BYTES_IN_FLIGHT). */
  readonly budgetBytes: number;
  /** Retry-After of the 503 (BUSY_RETRY_AFTER_SEC). */
  readonly busyRetryAfterSec: number;
  /** Refill rate of each hpk's download byte bucket (MAX_DOWNLOAD_BYTES_PER_HPK_PER_SEC); 0 = no bucket. */
  readonly perHpkBytesPerSec: number;
  /** Monotonic milliseconds. @default performance.now */
  readonly nowMs?: () => number;
}

/** Above this many buckets, full ones (nothing owed, nothing to remember) are dropped. */
const MAX_IDLE_BUCKETS = 10_000;

/** Retry-After of the per-hpk 429: a download in flight usually ends within a second. */
export const DOWNLOADS_PER_HPK_RETRY_AFTER_SEC = 1;

export function createResponseGate(opts: ResponseGateOptions): ResponseGate {
  let bytes = 0;
  const perHpk = new Map<string, number>();
  const rate = opts.perHpkBytesPerSec;
  const now = opts.nowMs ?? (() => performance.now());
  /** Per hpk: its download byte bucket (≤ `rate`, may be negative) as of `atMs`. */
  const buckets = new Map<string, { tokens: number; atMs: number }>();
  const bucketOf = (hpk: string): { tokens: number; atMs: number } => {
    const t = now();
    let b = buckets.get(hpk);
    if (b === undefined) {
      if (buckets.size >= MAX_IDLE_BUCKETS) {
        for (const [k, v] of buckets) if (v.tokens + ((t - v.atMs) / 1000) * rate >= rate) buckets.delete(k);
      }
      b = { tokens: rate, atMs: t };
      buckets.set(hpk, b);
    }
    b.tokens = Math.min(rate, b.tokens + ((t - b.atMs) / 1000) * rate);
    b.atMs = t;
    return b;
  };

  const release = (hpk: string | null, held: number): void => {
    bytes -= held;
    if (hpk === null) return;
    const n = (perHpk.get(hpk) ?? 1) - 1;
    if (n <= 0) perHpk.delete(hpk);
    else perHpk.set(hpk, n);
  };

  return {
    bytesInFlight: () => bytes,
    downloadsOf: (hpk) => perHpk.get(hpk) ?? 0,
    request(res) {
      let held = 0;
      let hpkHeld: string | null = null;
      let listening = false;
      let closed = false;
      const listen = (): void => {
        if (listening) return;
        listening = true;
        res.once('close', () => {
          closed = true;
          release(hpkHeld, held);
          held = 0;
          hpkHeld = null;
        });
      };
      return {
        enter(hpk, boundBytes, minBytes = boundBytes) {
          if (closed) throw new RelayError('busy', 'answer gate: connection closed');
          if (hpk !== null && hpkHeld === null && (perHpk.get(hpk) ?? 0) >= opts.perHpk) {
            throw new RelayError('throttled', 'downloads in flight for this hpk', DOWNLOADS_PER_HPK_RETRY_AFTER_SEC);
          }
          if (hpk !== null && rate > 0) {
            const owed = -bucketOf(hpk).tokens;
            if (owed > 0) throw new RelayError('throttled', 'download bytes of this hpk above its rate', Math.max(1, Math.ceil(owed / rate)));
          }
          // What this request may hold: its bound while at least half the budget stays free, else
          // what is left above that half, down to its minimum (then a small page each: many
          // downloads in flight share the rest instead of a few holding it).
          const room = opts.budgetBytes - (bytes - held);
          const spare = minBytes < boundBytes ? room - opts.budgetBytes / 2 : room;
          const grant = Math.max(held, Math.min(boundBytes, room, Math.max(minBytes, spare)));
          if (grant < Math.min(minBytes, boundBytes) || grant > room) {
            throw new RelayError('busy', 'answer bytes in flight at the budget', opts.busyRetryAfterSec);
          }
          listen();
          if (hpk !== null && hpkHeld === null) {
            hpkHeld = hpk;
            perHpk.set(hpk, (perHpk.get(hpk) ?? 0) + 1);
          }
          if (grant > held) {
            bytes += grant - held;
            held = grant;
          }
          return grant;
        },
        answer(size) {
          if (hpkHeld !== null && rate > 0) bucketOf(hpkHeld).tokens -= size;
          if (closed) return;
          listen();
          bytes += size - held;
          held = size;
        },
      };
    },
  };
}
