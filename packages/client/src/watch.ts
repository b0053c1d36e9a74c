/**
 * Watching a mailbox: poll, hand over each message once (de-duplicated by (from, nonce) across
 * polls), optionally remove what was handed over, and wait between polls with a backoff: the
 * base interval after a poll that brought something new; while polls bring nothing or fail,
 * the interval doubles up to a cap, with jitter, and never below a relay's Retry-After. The loop
 * stops when its signal aborts or after a number of polls or messages. No Node module: the
 * random source and the sleep are parameters.
 */

export interface BackoffOptions {
  /** Interval after a poll that brought something new, and after the first empty one (ms). */
  baseMs: number;
  /** Cap of the interval (ms); the base when the base is higher. @default 60000 */
  maxMs?: number;
  /** @default 2 */
  factor?: number;
  /** Each delay is multiplied by a random factor in [1 − jitter, 1 + jitter], capped. @default 0.2 */
  jitter?: number;
  /** In [0, 1). @default Math.random */
  random?: () => number;
}

/** The delays between polls. */
export class Backoff {
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly factor: number;
  private readonly jitter: number;
  private readonly random: () => number;
  /** Polls in a row that brought nothing new or failed. */
  private idle = 0;

  constructor(options: BackoffOptions) {
    this.baseMs = options.baseMs;
    this.maxMs = Math.max(options.maxMs ?? 60_000, options.baseMs);
    this.factor = options.factor ?? 2;
    this.jitter = options.jitter ?? 0.2;
    this.random = options.random ?? Math.random;
  }

  /**
   * The delay before the next poll. `fresh`: the poll brought something new (back to the base);
   * otherwise the interval grows. `retryAfterMs`: a relay's Retry-After, a floor for this delay.
   */
  next(fresh: boolean, retryAfterMs: number | null = null): number {
    this.idle = fresh ? 0 : this.idle + 1;
    const level = Math.min(this.maxMs, this.baseMs * this.factor ** Math.max(0, this.idle - 1));
    const jittered = Math.min(this.maxMs, level * (1 + this.jitter * (2 * this.random() - 1)));
    return Math.round(Math.max(jittered, retryAfterMs ?? 0));
  }
}

/** What `watch` needs of a message. */
export interface Watched {
  from: string;
  nonce: string;
}

export interface WatchOptions<M extends Watched> {
  /** One listing of the mailbox. */
  poll(): Promise<M[]>;
  /** A message not handed over before. */
  emit(message: M): void;
  /** Removes handed-over messages that are still listed (retried after each poll while they are). */
  remove?(messages: M[]): Promise<void>;
  /** A poll or a removal failed; `delayMs` is the wait before the next poll. */
  onError(error: unknown, delayMs: number | null, context: { polls: number; succeeded: number }): void;
  /** A failure that should end the watch instead of being retried (e.g. a misconfiguration). */
  isFatal?(error: unknown, context: { polls: number; succeeded: number }): boolean;
  /** Retry-After of a failure, in ms, or null. */
  retryAfterMs?(error: unknown): number | null;
  backoff: Backoff;
  signal: AbortSignal;
  /** Stop after this many polls. */
  maxPolls?: number;
  /** Stop after handing over this many messages. */
  exitAfter?: number;
  /** @default setTimeout, cut short by `signal` */
  sleep?(ms: number, signal: AbortSignal): Promise<void>;
}

export interface WatchResult {
  polls: number;
  emitted: number;
  stoppedBy: 'signal' | 'max-polls' | 'exit-after';
  /** The last poll's failure, or null when it succeeded. */
  lastError: unknown;
}

/** A handed-over key is forgotten once it has not been listed for this many successful polls. */
const FORGET_AFTER_POLLS = 5;

/** Runs until `signal` aborts or a limit is reached; throws only a fatal error (`isFatal`). */
export async function watch<M extends Watched>(o: WatchOptions<M>): Promise<WatchResult> {
  const sleep = o.sleep ?? abortableSleep;
  // key → the successful poll that last listed it. A message missing from one listing (paging
  // while the mailbox changes) and back in the next is still not handed over twice.
  const handed = new Map<string, number>();
  let polls = 0;
  let succeeded = 0;
  let emitted = 0;
  let lastError: unknown = null;
  const result = (stoppedBy: WatchResult['stoppedBy']): WatchResult => ({ polls, emitted, stoppedBy, lastError });

  for (;;) {
    if (o.signal.aborted) return result('signal');
    polls++;
    let fresh = false;
    let retryAfter: number | null = null;
    let failure: unknown = null;
    try {
      const listed = await untilAborted(o.poll(), o.signal);
      if (listed === ABORTED) return result('signal');
      succeeded++;
      lastError = null;
      const toRemove: M[] = [];
      for (const m of listed) {
        const key = `${m.from}\n${m.nonce}`;
        if (!handed.has(key)) {
          if (o.exitAfter !== undefined && emitted >= o.exitAfter) continue;
          o.emit(m);
          emitted++;
          fresh = true;
        }
        handed.set(key, succeeded);
        toRemove.push(m);
      }
      for (const [key, seen] of handed) if (seen <= succeeded - FORGET_AFTER_POLLS) handed.delete(key);
      if (o.remove !== undefined && toRemove.length > 0 && !o.signal.aborted) {
        try {
          if ((await untilAborted(o.remove(toRemove), o.signal)) === ABORTED) return result('signal');
        } catch (e) {
          failure = e;
        }
      }
    } catch (e) {
      if (o.signal.aborted) return result('signal');
      if (o.isFatal?.(e, { polls, succeeded })) throw e;
      failure = e;
      lastError = e;
    }
    if (o.exitAfter !== undefined && emitted >= o.exitAfter) {
      if (failure !== null) o.onError(failure, null, { polls, succeeded });
      return result('exit-after');
    }
    const last = o.maxPolls !== undefined && polls >= o.maxPolls;
    if (failure !== null) retryAfter = o.retryAfterMs?.(failure) ?? null;
    const delay = last ? null : o.backoff.next(fresh, retryAfter);
    if (failure !== null) o.onError(failure, delay, { polls, succeeded });
    if (delay === null) return result('max-polls');
    await sleep(delay, o.signal);
  }
}

const ABORTED = Symbol('aborted');

/** The promise's value, or ABORTED as soon as `signal` aborts (the promise is left to settle). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T | typeof ABORTED> {
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.resolve(ABORTED);
  }
  return new Promise((resolve, reject) => {
    const onAbort = (): void => resolve(ABORTED);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) resolve(ABORTED);
        else reject(e);
      },
    );
  });
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
