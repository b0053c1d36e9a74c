/**
 * What the stores report as they work, for the metrics (src/metrics.ts implements it): the time of
 * every Redis round trip by operation, and the messages and file bytes that came and went. The
 * stores call it with what the scripts already return; it never costs a Redis call of its own.
 */

/** `stored`: uploaded (new or replacing one with the same nonce); `deleted`: by a `delete` command; `expired`: compacted after expiry. */
export type MessageChange = 'stored' | 'deleted' | 'expired';

/** `stored`: one chunk written; `deleted`: a file removed by `deleteFile`; `expired`: removed by the sweep. */
export type FileChange = 'stored' | 'deleted' | 'expired';

export interface StoreObserver {
  /** One Redis operation (a round trip, or one pipeline) of `op` took `seconds`, failures included. */
  redisCall(op: string, seconds: number): void;
  /** `count` messages with `bytes` data bytes in total. */
  messages(change: MessageChange, count: number, bytes: number): void;
  /** `count` chunks (`stored`) or files (`deleted`, `expired`), with `bytes` chunk bytes in total. */
  files(change: FileChange, count: number, bytes: number): void;
}

export const NO_OBSERVER: StoreObserver = Object.freeze({
  redisCall() {},
  messages() {},
  files() {},
});
