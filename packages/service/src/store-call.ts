/**
 * Store failures, the same for both tiers: every Redis call of the store wrappers goes through
 * `storeCall`, so a refused connection, a timeout, a disconnect or any error reply becomes one
 * `StoreUnavailableError` naming the operation, which the tiers answer with 503 and Retry-After
 * (docs/PROTOCOL.md §6.3), never 500 or a misleading 401. Its duration, failures included, goes to
 * the operation's latency metric.
 */
import { RelayError } from '@zax/protocol';
import type { OpObserver } from './metrics.js';

/** The longest part of the store's own message kept. */
const MAX_REASON_CHARS = 120;

/** The error table's `busy` (503 + Retry-After), naming the store operation that failed. */
export class StoreUnavailableError extends RelayError {
  override readonly name: string = 'StoreUnavailableError';
  /**
   * Only the failure's message is kept, never the failure itself: ioredis errors carry the
   * command and its arguments, which may be tokens.
   */
  constructor(
    readonly op: string,
    failure: unknown,
  ) {
    super('busy', `${op}: ${failure instanceof Error ? failure.message.slice(0, MAX_REASON_CHARS) : 'error'}`);
  }
}

export const isStoreUnavailable = (e: unknown): e is StoreUnavailableError => e instanceof StoreUnavailableError;

/**
 * Runs one Redis operation; any failure of it is a StoreUnavailableError naming `op`. With an
 * observer, its duration (failures included) is reported under `op`.
 */
export async function storeCall<T, Op extends string>(op: Op, fn: () => Promise<T>, observer?: OpObserver<Op>): Promise<T> {
  const t0 = observer === undefined ? 0 : performance.now();
  try {
    return await fn();
  } catch (e) {
    throw new StoreUnavailableError(op, e);
  } finally {
    if (observer !== undefined) observer.redisCall(op, (performance.now() - t0) / 1000);
  }
}

/** A reply of the wrong shape is a relay fault (a bug), not an outage. */
export function badReply(op: string, reply: unknown): Error {
  return new Error(`${op}: unexpected reply of type ${Array.isArray(reply) ? 'array' : typeof reply}`);
}
