/**
 * Mailboxes (docs/PROTOCOL.md §5.1–5.5): live messages per hpk in receipt order, with quotas,
 * replacement by nonce, compaction of expired messages, and storage-token records. Each operation
 * is one Lua script on the three `{hpk}` keys (mailbox-*.lua); messageStatus is a single-key read.
 *
 * The layout is built for little Redis memory per message (include/mailbox.lua has it in full):
 * the nonce is stored once, as raw bytes, in the order ZSET, which maps it to a short receipt
 * sequence number; that number keys the record and the expiry. A message is one compact binary
 * record (`encodeRecord`): flags (data format, kind), the sender's raw 32 bytes, the receipt time,
 * then the data: raw bytes when it is canonical strict base64 (the usual ciphertext: 3/4 of its
 * length), else its UTF-8 text, or, for a string with lone surrogates (or a byte count that is not
 * its UTF-8 length), its JSON.stringify text after the byte count. Quotas count `dataBytes`, the
 * UTF-8 length of the data string, which the scripts read back from the record. Download renders
 * each item from its record with `renderItem` (`decodeItem`), byte for byte the item the message
 * had when it was uploaded. Nonces and senders reach the store as strict base64 (validated by the
 * commands); anything else is a bug and throws.
 */
import { NONCE_BYTES, b64, decodeFixed, decodeStrict, h2 } from '@zax/protocol';
import { badReply, type Durability, storeCall } from '@zax/service';
import type { CoreRedis } from '../redis.js';
import { COMPACT_LIMIT, KEY_TTL_MARGIN_MS, type Keys } from '../keys.js';
import { NO_OBSERVER, type StoreObserver } from './observer.js';

export type MessageKind = 'message' | 'file';

export interface NewMessage {
  readonly to: string;
  readonly from: string;
  readonly nonce: string;
  /** `storageToken(to, nonce)`: computed once by the caller, which also answers it. */
  readonly storageToken: string;
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
  /**
   * Most data bytes (UTF-8 length of `data`, as the quotas count them) in the page; the page still
   * holds its first message when that one alone has more (DEVIATION D19). @default no cap
   */
  readonly maxBytes?: number;
}

export interface MailboxStore {
  /** Stores or replaces a message and writes its storage token. */
  upload(msg: NewMessage, quotas: Quotas): Promise<UploadOutcome>;
  /**
   * Download items (JSON object texts, rendered by `renderItem`) in receipt order: at most
   * `q.count`, whose data bytes add up to at most `q.maxBytes` (but at least one item).
   */
  download(hpk: string, q: DownloadQuery, nowMs: number): Promise<string[]>;
  count(hpk: string, nowMs: number): Promise<number>;
  /** Deletes the caller's own messages by nonce string; returns the live count afterwards. */
  delete(hpk: string, nonces: readonly string[], nowMs: number): Promise<number>;
  /** The expiry (ms) recorded for a storage token, or null if there is none. */
  tokenExpiry(tokenB64: string): Promise<number | null>;
}

/** b64(h2(ASCII(b64 hpk_to) ‖ ASCII(b64 nonce))) (docs/PROTOCOL.md §3.1). */
export const storageToken = (toB64: string, nonceB64: string): string => b64(h2(toB64, nonceB64));

/** The download item of a message, in the key order of docs/PROTOCOL.md §5.3. */
export function renderItem(m: Pick<NewMessage, 'data' | 'from' | 'nonce' | 'kind' | 'nowMs'>): string {
  return JSON.stringify({ data: m.data, time: m.nowMs / 1000, from: m.from, nonce: m.nonce, kind: m.kind });
}

const HPK_BYTES = 32;
/** Record layout (include/mailbox.lua): flags, sender hpk, receipt time (double), data. */
const FROM_AT = 1;
const TIME_AT = FROM_AT + HPK_BYTES;
const DATA_AT = TIME_AT + 8;
/** Data formats (flags bits 0–1) and the kind bit. */
const FORMAT_UTF8 = 0;
const FORMAT_BASE64 = 1;
const FORMAT_JSON = 2;
const KIND_FILE = 4;
/** The msgs hash field with the stored data bytes (the other fields are decimal seqs). */
export const BYTES_FIELD = 'b';

/** A lone (unpaired) UTF-16 surrogate: such a string has no exact UTF-8 form. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** A Buffer view of decoded bytes (no copy): the record and the nonces go to Redis as bytes. */
const asBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

function rawFixed(s: string, bytes: number, what: string): Buffer {
  const b = decodeFixed(s, bytes);
  if (b === null) throw new Error(`mailbox store: ${what} is not strict base64 of ${bytes} bytes`);
  return asBuffer(b);
}

/** The binary record of a message (layout in include/mailbox.lua); `dataBytes` must be its data's UTF-8 length. */
export function encodeRecord(m: Pick<NewMessage, 'data' | 'dataBytes' | 'from' | 'kind' | 'nowMs'>): Buffer {
  const from = rawFixed(m.from, HPK_BYTES, 'sender');
  let format: number;
  const decoded = m.data.length === m.dataBytes ? decodeStrict(m.data) : null;
  let body: Buffer | null = decoded === null ? null : asBuffer(decoded);
  if (body !== null) {
    format = FORMAT_BASE64;
  } else if (!LONE_SURROGATE.test(m.data) && Buffer.byteLength(m.data, 'utf8') === m.dataBytes) {
    format = FORMAT_UTF8;
    body = Buffer.from(m.data, 'utf8');
  } else {
    // Lone surrogates (or a byte count given otherwise): the JSON text keeps the string exactly.
    format = FORMAT_JSON;
    const json = Buffer.from(JSON.stringify(m.data), 'utf8');
    body = Buffer.allocUnsafe(4 + json.length);
    body.writeUInt32BE(m.dataBytes, 0);
    json.copy(body, 4);
  }
  const rec = Buffer.allocUnsafe(DATA_AT + body.length);
  rec[0] = format | (m.kind === 'file' ? KIND_FILE : 0);
  from.copy(rec, FROM_AT);
  rec.writeDoubleBE(m.nowMs, TIME_AT);
  body.copy(rec, DATA_AT);
  return rec;
}

/** The download item of a stored record, as `renderItem` renders the message. */
export function decodeItem(nonce: Buffer, rec: Buffer): string {
  if (nonce.length !== NONCE_BYTES || rec.length < DATA_AT) throw new Error('mailbox store: bad record');
  const flags = rec[0]!;
  const format = flags & 3;
  let data: string;
  if (format === FORMAT_BASE64) data = rec.toString('base64', DATA_AT);
  else if (format === FORMAT_UTF8) data = rec.toString('utf8', DATA_AT);
  else if (format === FORMAT_JSON && rec.length >= DATA_AT + 4) data = JSON.parse(rec.toString('utf8', DATA_AT + 4)) as string;
  else throw new Error('mailbox store: bad record');
  return renderItem({
    data,
    nowMs: rec.readDoubleBE(TIME_AT),
    from: rec.toString('base64', FROM_AT, TIME_AT),
    nonce: nonce.toString('base64'),
    kind: flags & KIND_FILE ? 'file' : 'message',
  });
}

/** Far beyond any mailbox (MAILBOX_QUOTA ≤ 1e9): keeps the index the script computes exact. */
const MAX_START = 2_000_000_000;
/** The byte cap of a download without one: more than any mailbox holds, exact as a Lua number. */
const NO_BYTE_CAP = Number.MAX_SAFE_INTEGER;

const UPLOAD_OUTCOMES: Readonly<Record<number, UploadOutcome>> = { 1: 'stored', 2: 'replaced', [-1]: 'fullCount', [-2]: 'fullBytes' };

function mailboxArgs(keys: Keys, hpk: string): string[] {
  const k = keys.mailbox(hpk);
  return [k.msgs, k.order, k.exp];
}

function asCount(op: string, reply: unknown): number {
  if (typeof reply === 'number' && Number.isInteger(reply) && reply >= 0) return reply;
  throw badReply(op, reply);
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/**
 * `durable`: writes go through its writer and wait for its replicas (REDIS_WAIT_REPLICAS); without
 * it they go through `redis` and are done once Redis answers.
 */
export function createMailboxStore(redis: CoreRedis, keys: Keys, obs: StoreObserver = NO_OBSERVER, durable?: Durability<CoreRedis>): MailboxStore {
  /** A write, made durable when asked to (a rejected wait is a store failure: 503). */
  const write = <T>(op: string, writeKeys: readonly string[], fn: (w: CoreRedis) => Promise<T>): Promise<T> =>
    storeCall(op, () => (durable === undefined ? fn(redis) : durable.run(writeKeys, fn)), obs);

  /** The expiry tally `[…, n, bytes]` at `at` of a script reply (include/mailbox.lua). */
  const expired = (op: string, reply: readonly unknown[], at: number): void => {
    const n = reply[at];
    const bytes = reply[at + 1];
    if (!isCount(n) || !isCount(bytes)) throw badReply(op, reply);
    if (n > 0) obs.messages('expired', n, bytes);
  };

  return {
    async upload(m, q) {
      const record = encodeRecord(m);
      const nonce = rawFixed(m.nonce, NONCE_BYTES, 'nonce');
      const mk = mailboxArgs(keys, m.to);
      const reply = await write('upload', [mk[0]!], (w) =>
        w.zaxUpload(...mk, nonce, record, m.nowMs, m.expiresAtMs, q.mailboxQuota, q.mailboxQuotaBytes, KEY_TTL_MARGIN_MS, COMPACT_LIMIT),
      );
      const outcome = Array.isArray(reply) && reply.length === 3 && typeof reply[0] === 'number' ? UPLOAD_OUTCOMES[reply[0]] : undefined;
      if (outcome === undefined) throw badReply('upload', reply);
      expired('upload', reply as unknown[], 1);
      if (outcome === 'stored' || outcome === 'replaced') {
        // The storage token is a relay-wide key (another cluster slot): written once the message is.
        const tokenKey = keys.storageToken(m.storageToken);
        const ttlMs = Math.ceil(Math.max(m.expiresAtMs - m.nowMs, 0) + KEY_TTL_MARGIN_MS);
        await write('upload token', [tokenKey], (w) => w.set(tokenKey, String(m.expiresAtMs), 'PX', ttlMs));
        obs.messages('stored', 1, m.dataBytes);
      }
      return outcome;
    },

    async download(hpk, q, nowMs) {
      const senders = (q.from ?? []).map((h) => rawFixed(h, HPK_BYTES, 'sender filter'));
      const reply = await storeCall('download', () =>
        redis.zaxDownloadBuffer(
          ...mailboxArgs(keys, hpk),
          nowMs,
          Math.min(q.start, MAX_START),
          q.count,
          COMPACT_LIMIT,
          Math.max(1, Math.min(q.maxBytes ?? NO_BYTE_CAP, NO_BYTE_CAP)),
          ...senders,
        ),
        obs,
      );
      if (
        !Array.isArray(reply) ||
        reply.length !== 3 ||
        !Array.isArray(reply[0]) ||
        reply[0].length % 2 !== 0 ||
        !reply[0].every((x): x is Buffer => Buffer.isBuffer(x))
      ) {
        throw badReply('download', reply);
      }
      expired('download', reply, 1);
      const flat = reply[0];
      const items: string[] = [];
      try {
        for (let i = 0; i < flat.length; i += 2) items.push(decodeItem(flat[i]!, flat[i + 1]!));
      } catch {
        throw badReply('download', reply);
      }
      return items;
    },

    async count(hpk, nowMs) {
      const reply = await storeCall('count', () => redis.zaxCount(...mailboxArgs(keys, hpk), nowMs, COMPACT_LIMIT), obs);
      if (!Array.isArray(reply) || reply.length !== 3) throw badReply('count', reply);
      expired('count', reply, 1);
      return asCount('count', reply[0]);
    },

    async delete(hpk, nonces, nowMs) {
      // A stored nonce is always 24 bytes: any other string cannot name one.
      const unique: string[] = [];
      const raw: Buffer[] = [];
      for (const n of new Set(nonces)) {
        const bytes = decodeFixed(n, NONCE_BYTES);
        if (bytes === null) continue;
        unique.push(n);
        raw.push(asBuffer(bytes));
      }
      const mk = mailboxArgs(keys, hpk);
      const reply = await write('delete', [mk[0]!], (w) => w.zaxDelete(...mk, nowMs, COMPACT_LIMIT, ...raw));
      if (!Array.isArray(reply) || reply.length !== 6 || !isCount(reply[1]) || !isCount(reply[2]) || !Array.isArray(reply[5])) throw badReply('delete', reply);
      // The removed messages' storage tokens (relay-wide keys, other cluster slots), one command each.
      const tokenKeys = (reply[5] as unknown[]).map((i) => {
        const n = typeof i === 'number' ? unique[i - 1] : undefined;
        if (n === undefined) throw badReply('delete', reply);
        return keys.storageToken(storageToken(hpk, n));
      });
      if (tokenKeys.length > 0) await write('delete tokens', tokenKeys, (w) => Promise.all(tokenKeys.map((t) => w.del(t))));
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
