/**
 * Store failures. Every Redis call of the store wrappers goes through `storeCall`, so a refused
 * connection, a timeout, a disconnect or any error reply becomes one `StoreUnavailableError`, which
 * the app answers with 503 and Retry-After (docs/PROTOCOL.md §6.3), never 500 or a misleading 401.
 */
import type { StoreObserver } from './observer.js';

export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  constructor(
    readonly op: string,
    cause: unknown,
  ) {
    super(`${op}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

export const isStoreUnavailable = (e: unknown): e is StoreUnavailableError => e instanceof StoreUnavailableError;

/**
 * Runs one Redis operation; any failure of it is a StoreUnavailableError naming `op`. With an
 * observer, its duration (failures included) is reported under `op`.
 */
export async function storeCall<T>(op: string, fn: () => Promise<T>, observer?: StoreObserver): Promise<T> {
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
