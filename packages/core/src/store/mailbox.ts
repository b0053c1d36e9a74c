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

export function createMailboxStore(redis: CoreRedis, keys: Keys): MailboxStore {
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
      );
      const outcome = typeof reply === 'number' ? UPLOAD_OUTCOMES[reply] : undefined;
      if (outcome === undefined) throw badReply('upload', reply);
      return outcome;
    },

    async download(hpk, q, nowMs) {
      const reply = await storeCall('download', () =>
        redis.zaxDownload(...mailboxArgs(keys, hpk), nowMs, Math.min(q.start, MAX_START), q.count, COMPACT_LIMIT, ...(q.from ?? [])),
      );
      if (Array.isArray(reply) && reply.every((x): x is string => typeof x === 'string')) return reply;
      throw badReply('download', reply);
    },

    async count(hpk, nowMs) {
      return asCount('count', await storeCall('count', () => redis.zaxCount(...mailboxArgs(keys, hpk), nowMs, COMPACT_LIMIT)));
    },

    async delete(hpk, nonces, nowMs) {
      const unique = [...new Set(nonces)];
      const tokenKeys = unique.map((n) => keys.storageToken(storageToken(hpk, n)));
      const reply = await storeCall('delete', () =>
        redis.zaxDelete(4 + tokenKeys.length, ...mailboxArgs(keys, hpk), ...tokenKeys, nowMs, COMPACT_LIMIT, ...unique),
      );
      return asCount('delete', reply);
    },

    async tokenExpiry(tokenB64) {
      const v = await storeCall('message status', () => redis.get(keys.storageToken(tokenB64)));
      if (v === null) return null;
      const ms = Number(v);
      if (!Number.isFinite(ms)) throw badReply('message status', v);
      return ms;
    },
  };
}
