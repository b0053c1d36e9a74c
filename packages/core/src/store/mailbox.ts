/**
 * Mailboxes (PROTOCOL.md §5.1–5.5): live messages per hpk in receipt order, with quotas,
 * replacement by nonce, compaction of expired messages, and storage-token records. Each operation
 * is one Lua script on the `{hpk}` keys (mailbox_*.lua); messageStatus is a single-key read.
 *
 * A message's download item is rendered once, at upload, with `JSON.stringify`: the data string is
 * kept exactly (lone surrogates stay escaped) and download only splices stored items together.
 */
import { b64, h2 } from '@zax/protocol';
import type { CoreRedis } from '../redis.js';
import { COMPACT_LIMIT, KEY_TTL_MARGIN_MS, type Keys } from '../keys.js';
import { badReply, storeCall } from './errors.js';
import { NO_OBSERVER, type StoreObserver } from './observer.js';

export type MessageKind = 'message' | 'file';

export interface NewMessage {
  readonly to: string;
  readonly from: string;
  readonly nonce: string;
  readonly data: string;
  /** UTF-8 length of `data`. */
  readonly dataBytes: number;
  readonly kind: MessageKind;
  /** Receipt time (ms). */
  readonly nowMs: number;
  readonly expiresAtMs: number;
}

export interface Quotas {
  readonly mailboxQuota: number;
  readonly mailboxQuotaBytes: number;
}

export type UploadOutcome = 'stored' | 'replaced' | 'fullCount' | 'fullBytes';

export interface DownloadQuery {
  readonly start: number;
  readonly count: number;
  readonly from: readonly string[] | null;
}

export interface MailboxStore {
  /** Stores or replaces a message and writes its storage token `storageToken(to, nonce)`. */
  upload(msg: NewMessage, quotas: Quotas): Promise<UploadOutcome>;
  /** Rendered download items (JSON object texts) in receipt order. */
  download(hpk: string, q: DownloadQuery, nowMs: number): Promise<string[]>;
  count(hpk: string, nowMs: number): Promise<number>;
  /** Deletes the caller's own messages by nonce string; returns the live count afterwards. */
  delete(hpk: string, nonces: readonly string[], nowMs: number): Promise<number>;
  /** The expiry (ms) recorded for a storage token, or null if there is none. */
  tokenExpiry(tokenB64: string): Promise<number | null>;
}

/** b64(h2(ASCII(b64 hpk_to) ‖ ASCII(b64 nonce))) (PROTOCOL.md §3.1). */
export const storageToken = (toB64: string, nonceB64: string): string => b64(h2(toB64, nonceB64));

/** The download item of a message, in the key order of PROTOCOL.md §5.3. */
export function renderItem(m: Pick<NewMessage, 'data' | 'from' | 'nonce' | 'kind' | 'nowMs'>): string {
  return JSON.stringify({ data: m.data, time: m.nowMs / 1000, from: m.from, nonce: m.nonce, kind: m.kind });
}

/** Far beyond any mailbox (MAILBOX_QUOTA ≤ 1e9): keeps the index the script computes exact. */
const MAX_START = 2_000_000_000;

const UPLOAD_OUTCOMES: Readonly<Record<number, UploadOutcome>> = { 1: 'stored', 2: 'replaced', [-1]: 'fullCount', [-2]: 'fullBytes' };

function mailboxArgs(keys: Keys, hpk: string): string[] {
  const k = keys.mailbox(hpk);
  return [k.msgs, k.order, k.exp, k.meta];
}

function asCount(op: string, reply: unknown): number {
  if (typeof reply === 'number' && Number.isInteger(reply) && reply >= 0) return reply;
  throw badReply(op, reply);
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

export function createMailboxStore(redis: CoreRedis, keys: Keys, obs: StoreObserver = NO_OBSERVER): MailboxStore {
  /** The expiry tally `[…, n, bytes]` at `at` of a script reply (include/mailbox.lua). */
  const expired = (op: string, reply: readonly unknown[], at: number): void => {
    const n = reply[at];
    const bytes = reply[at + 1];
    if (!isCount(n) || !isCount(bytes)) throw badReply(op, reply);
    if (n > 0) obs.messages('expired', n, bytes);
  };

  return {
    async upload(m, q) {
      const record = `${m.dataBytes}|${m.from}|${renderItem(m)}`;
      const tokenKey = keys.storageToken(storageToken(m.to, m.nonce));
      const reply = await storeCall('upload', () =>
        redis.zaxUpload(
          ...mailboxArgs(keys, m.to),
          tokenKey,
          m.nonce,
          record,
          m.dataBytes,
          m.nowMs,
          m.expiresAtMs,
          q.mailboxQuota,
          q.mailboxQuotaBytes,
          KEY_TTL_MARGIN_MS,
          COMPACT_LIMIT,
        ),
        obs,
      );
      const outcome = Array.isArray(reply) && reply.length === 3 && typeof reply[0] === 'number' ? UPLOAD_OUTCOMES[reply[0]] : undefined;
      if (outcome === undefined) throw badReply('upload', reply);
      expired('upload', reply as unknown[], 1);
      if (outcome === 'stored' || outcome === 'replaced') obs.messages('stored', 1, m.dataBytes);
      return outcome;
    },

    async download(hpk, q, nowMs) {
      const reply = await storeCall('download', () =>
        redis.zaxDownload(...mailboxArgs(keys, hpk), nowMs, Math.min(q.start, MAX_START), q.count, COMPACT_LIMIT, ...(q.from ?? [])),
        obs,
      );
      if (Array.isArray(reply) && reply.length === 3 && Array.isArray(reply[0]) && reply[0].every((x): x is string => typeof x === 'string')) {
        expired('download', reply, 1);
        return reply[0];
      }
      throw badReply('download', reply);
    },

    async count(hpk, nowMs) {
      const reply = await storeCall('count', () => redis.zaxCount(...mailboxArgs(keys, hpk), nowMs, COMPACT_LIMIT), obs);
      if (!Array.isArray(reply) || reply.length !== 3) throw badReply('count', reply);
      expired('count', reply, 1);
      return asCount('count', reply[0]);
    },

    async delete(hpk, nonces, nowMs) {
      const unique = [...new Set(nonces)];
      const tokenKeys = unique.map((n) => keys.storageToken(storageToken(hpk, n)));
      const reply = await storeCall('delete', () =>
        redis.zaxDelete(4 + tokenKeys.length, ...mailboxArgs(keys, hpk), ...tokenKeys, nowMs, COMPACT_LIMIT, ...unique),
        obs,
      );
      if (!Array.isArray(reply) || reply.length !== 5 || !isCount(reply[1]) || !isCount(reply[2])) throw badReply('delete', reply);
      if (reply[1] > 0) obs.messages('deleted', reply[1], reply[2]);
      expired('delete', reply, 3);
      return asCount('delete', reply[0]);
    },

    async tokenExpiry(tokenB64) {
      const v = await storeCall('message status', () => redis.get(keys.storageToken(tokenB64)), obs);
      if (v === null) return null;
      const ms = Number(v);
      if (!Number.isFinite(ms)) throw badReply('message status', v);
      return ms;
    },
  };
}
