/**
 * Files (docs/PROTOCOL.md §4.0 "File", §5.7–5.11): per uploadID a record, the parts' sizes and nonces,
 * and the chunk bytes as binary hash values; plus, per bucket of files, the registry (expiry and
 * bytes per file) and byte total that bound and sweep them, all of a bucket in one Redis Cluster
 * slot (src/keys.ts). Each operation is one Lua script (file-*.lua), a chunk upload one transaction
 * around its script (the bytes go in by a plain HSET, see file-chunk.lua); fileStatus is a
 * single-key read. The relay-wide bound (maxFileBytesTotal) is checked against the buckets' totals
 * as read at most a second ago, so a cluster never needs a cross-slot script.
 */
import { badReply, type Durability, storeCall, StoreUnavailableError } from '@zax/service';
import { loadLua, type CoreRedis, type RedisArg } from '../redis.js';
import { FILE_BUCKETS, KEY_TTL_MARGIN_MS, fileBucket, type FileKeys, type Keys } from '../keys.js';
import { NO_OBSERVER, type StoreObserver } from './observer.js';

export type FileStatusName = 'START' | 'UPLOADING' | 'COMPLETE';

/** What `fileStatus` reports (DEVIATION D13: never the hpks). */
export interface FileState {
  readonly status: FileStatusName;
  readonly fileSize: number;
  readonly bytesStored: number;
  readonly totalChunks: number;
}

export interface NewFile {
  readonly uploadID: string;
  readonly from: string;
  readonly to: string;
  readonly fileSize: number;
  readonly nowMs: number;
  readonly expiresAtMs: number;
}

export interface NewChunk {
  readonly uploadID: string;
  /** The caller's hpk: either party may upload. */
  readonly caller: string;
  readonly part: number;
  /** The chunk nonce (b64), kept as sent. */
  readonly nonce: string;
  readonly lastChunk: boolean;
  /** The decoded chunk. */
  readonly chunk: Buffer;
  readonly nowMs: number;
  /** New expiry of the whole file (DEVIATION D18). */
  readonly expiresAtMs: number;
  readonly maxFileBytesTotal: number;
}

/** `partOutOfRange`: part ≥ file_size; `overSize`: the D16 byte bound; `relayFull`: maxFileBytesTotal. */
export type ChunkOutcome = 'stored' | 'notFound' | 'partOutOfRange' | 'overSize' | 'relayFull';

export type ChunkRead = { readonly kind: 'chunk'; readonly nonce: string; readonly bytes: Buffer } | { readonly kind: 'notFound' } | { readonly kind: 'noPart' };

export interface ReapResult {
  readonly removed: boolean;
  /** Bytes taken off the relay-wide total. */
  readonly freedBytes: number;
}

export interface FileStore {
  /** Creates the record (START), or resets an existing one and discards its chunks. */
  start(f: NewFile): Promise<void>;
  uploadChunk(c: NewChunk): Promise<ChunkOutcome>;
  /** The state of a live file for one of its parties, or null (unknown to this caller). */
  status(uploadID: string, caller: string, nowMs: number): Promise<FileState | null>;
  downloadChunk(uploadID: string, caller: string, part: number, nowMs: number): Promise<ChunkRead>;
  /** Deletes the file for both parties; false when it is unknown to this caller. */
  delete(uploadID: string, caller: string, nowMs: number): Promise<boolean>;
  /** Registry entries whose expiry has passed (at most `limit`), oldest first. */
  expired(nowMs: number, limit: number): Promise<string[]>;
  /** Drops one expired file (or stale registry entry) and its bytes; see file-reap.lua. */
  reap(uploadID: string, nowMs: number): Promise<ReapResult>;
  /** Sets the total to the registry's sum; null when the registry holds more than `limit` files. */
  reconcile(limit: number): Promise<{ before: number; after: number } | null>;
  /** Bytes of every stored chunk on the relay. */
  totalBytes(): Promise<number>;
  /** Files whose lifetime has not ended at `nowMs` (registry expiry later than it), relay-wide. */
  liveCount(nowMs: number): Promise<number>;
}

const CHUNK_OUTCOMES: Readonly<Record<number, ChunkOutcome>> = { 1: 'stored', 0: 'notFound', [-1]: 'partOutOfRange', [-2]: 'overSize', [-3]: 'relayFull' };
const STATUSES: ReadonlySet<string> = new Set<FileStatusName>(['START', 'UPLOADING', 'COMPLETE']);

const isIntReply = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

/**
 * file-chunk.lua, sent whole (EVAL) inside the chunk transaction: an EVALSHA there that met
 * NOSCRIPT (after a SCRIPT FLUSH) would be re-sent by ioredis on its own, outside the transaction.
 * Redis caches the script by its digest, so this costs the ~4 KB text on the wire and one SHA-1.
 */
const FILE_CHUNK_LUA = loadLua('file-chunk.lua');

/**
 * The replies of a MULTI/EXEC of `n` commands. An error reply of any of them (the transaction ran,
 * but a command in it failed) is a store failure, like an error reply outside a transaction.
 */
function execReplies(op: string, replies: [Error | null, unknown][] | null, n: number): unknown[] {
  if (replies === null || replies.length !== n) throw badReply(op, replies);
  return replies.map(([err, reply]) => {
    if (err !== null) throw new StoreUnavailableError(op, err);
    return reply;
  });
}

/** How old the buckets' totals may be when a chunk is checked against the relay-wide bound. */
const TOTALS_MAX_AGE_MS = 1000;

const BUCKETS: readonly number[] = Array.from({ length: FILE_BUCKETS }, (_, b) => b);

/**
 * `durable`: writes go through its writer and wait for its replicas (REDIS_WAIT_REPLICAS); without
 * it they go through `redis` and are done once Redis answers.
 */
export function createFileStore(redis: CoreRedis, keys: Keys, obs: StoreObserver = NO_OBSERVER, durable?: Durability<CoreRedis>): FileStore {
  /** The six keys of the scripts that touch a file and its bucket's registry (include/file.lua). */
  const allKeys = (uploadID: string): string[] => {
    const k: FileKeys = keys.file(uploadID);
    const reg = keys.fileRegistry(fileBucket(uploadID));
    return [k.rec, k.parts, k.chunks, reg.exp, reg.bytes, reg.total];
  };
  /** A write, made durable when asked to (a rejected wait is a store failure: 503). */
  const writeOp = <T>(op: string, key: string, fn: (w: CoreRedis) => Promise<T>): Promise<T> =>
    storeCall(op, () => (durable === undefined ? fn(redis) : durable.run([key], fn)), obs);

  /** Each bucket's total as last read, and when (performance.now()). */
  const totals = { bytes: new Array<number>(FILE_BUCKETS).fill(0), atMs: -Infinity, reading: null as Promise<void> | null };
  const readTotals = async (): Promise<number[]> => {
    const values = await storeCall('file total', () => Promise.all(BUCKETS.map((b) => redis.get(keys.fileRegistry(b).total))), obs);
    return values.map((v) => (v === null ? 0 : Number(v) || 0));
  };
  /** The buckets' totals, read again when older than TOTALS_MAX_AGE_MS (one read at a time). */
  const freshTotals = async (): Promise<number[]> => {
    if (performance.now() - totals.atMs > TOTALS_MAX_AGE_MS) {
      totals.reading ??= readTotals()
        .then((bytes) => {
          totals.bytes = bytes;
          totals.atMs = performance.now();
        })
        .finally(() => (totals.reading = null));
      await totals.reading;
    }
    return totals.bytes;
  };

  /** One chunk upload; `fresh`: whether the totals it was checked against were read for it. */
  const storeChunk = async (c: NewChunk, forceRead: boolean): Promise<{ outcome: ChunkOutcome; fresh: boolean }> => {
    const k = keys.file(c.uploadID);
    const bucket = fileBucket(c.uploadID);
    const readAt = totals.atMs;
    if (forceRead) totals.atMs = -Infinity;
    const bucketTotals = await freshTotals();
    const fresh = totals.atMs !== readAt;
    let others = 0;
    for (let b = 0; b < FILE_BUCKETS; b++) if (b !== bucket) others += bucketTotals[b]!;
    const room = Math.max(0, c.maxFileBytesTotal - others);
    const args = (mode: 'check' | 'settle'): RedisArg[] => [
      ...allKeys(c.uploadID),
      c.uploadID,
      c.caller,
      String(c.part),
      c.nonce,
      c.lastChunk ? '1' : '0',
      String(c.chunk.length),
      c.nowMs,
      c.expiresAtMs,
      KEY_TTL_MARGIN_MS,
      room,
      mode,
    ];
    // One transaction (see file-chunk.lua): the checks and the record, the bytes as a plain
    // HSET (never copied into Lua), then the script again to keep or take back the bytes.
    const replies = await writeOp('file chunk', k.rec, (w) =>
      w
        .multi()
        .eval(FILE_CHUNK_LUA, 6, ...args('check'))
        .hset(k.chunks, String(c.part), c.chunk)
        .eval(FILE_CHUNK_LUA, 6, ...args('settle'))
        .exec(),
    );
    const [check, write, settle] = execReplies('file chunk', replies, 3);
    const outcome = isIntReply(check) ? CHUNK_OUTCOMES[check] : undefined;
    if (outcome === undefined || !isIntReply(write) || settle !== (outcome === 'stored' ? 1 : 0)) throw badReply('file chunk', replies);
    if (outcome === 'stored') {
      obs.files('stored', 1, c.chunk.length);
      totals.bytes[bucket] = totals.bytes[bucket]! + c.chunk.length;
    }
    return { outcome, fresh };
  };
  /** Bytes freed in a bucket (delete, reap): the cached view follows at once. */
  const freed = (uploadID: string, bytes: number): void => {
    const b = fileBucket(uploadID);
    totals.bytes[b] = Math.max(0, totals.bytes[b]! - bytes);
  };

  return {
    async start(f) {
      const reply = await writeOp('file start', keys.file(f.uploadID).rec, (w) =>
        w.zaxFileStart(...allKeys(f.uploadID), f.uploadID, f.from, f.to, f.fileSize, f.nowMs, f.expiresAtMs, KEY_TTL_MARGIN_MS),
      );
      if (reply !== 1 && reply !== 2) throw badReply('file start', reply);
    },

    async uploadChunk(c) {
      const first = await storeChunk(c, false);
      // A refusal for room is decided on totals read just now, never on a cached view that may
      // still count files deleted or expired since.
      return first.outcome === 'relayFull' && !first.fresh ? (await storeChunk(c, true)).outcome : first.outcome;
    },

    async status(uploadID, caller, nowMs) {
      const k = keys.file(uploadID);
      const [from, to, size, status, bytes, total, exp] = await storeCall('file status', () =>
        redis.hmget(k.rec, 'from', 'to', 'size', 'status', 'bytes', 'total', 'exp'),
        obs,
      );
      if (from == null || exp == null || !(Number(exp) > nowMs)) return null;
      if (caller !== from && caller !== to) return null;
      if (status == null || !STATUSES.has(status)) throw badReply('file status', status);
      return { status: status as FileStatusName, fileSize: Number(size), bytesStored: Number(bytes), totalChunks: Number(total) };
    },

    async downloadChunk(uploadID, caller, part, nowMs) {
      const k = keys.file(uploadID);
      // The Buffer variant: the chunk comes back as bytes, never as a (lossy) JS string.
      const reply = await storeCall(
        'file download',
        () => redis.zaxFileDownloadBuffer(k.rec, k.parts, k.chunks, caller, String(part), nowMs),
        obs,
      );
      if (Array.isArray(reply) && reply.length === 1 && (reply[0] === 0 || reply[0] === -1)) {
        return reply[0] === 0 ? { kind: 'notFound' } : { kind: 'noPart' };
      }
      if (Array.isArray(reply) && reply.length === 3 && reply[0] === 1 && Buffer.isBuffer(reply[1]) && Buffer.isBuffer(reply[2])) {
        return { kind: 'chunk', nonce: reply[1].toString('latin1'), bytes: reply[2] };
      }
      throw badReply('file download', reply);
    },

    async delete(uploadID, caller, nowMs) {
      const reply = await writeOp('file delete', keys.file(uploadID).rec, (w) => w.zaxFileDelete(...allKeys(uploadID), uploadID, caller, nowMs));
      if (!Array.isArray(reply) || reply.length !== 2 || (reply[0] !== 0 && reply[0] !== 1) || !isIntReply(reply[1])) throw badReply('file delete', reply);
      if (reply[0] === 1) {
        obs.files('deleted', 1, reply[1]);
        freed(uploadID, reply[1]);
      }
      return reply[0] === 1;
    },

    async expired(nowMs, limit) {
      const ids: string[] = [];
      // Bucket by bucket, in parallel groups (a cluster spreads each group over its shards).
      for (let b = 0; b < FILE_BUCKETS && ids.length < limit; b += 32) {
        const group = BUCKETS.slice(b, b + 32);
        const found = await storeCall('file registry', () =>
          Promise.all(group.map((g) => redis.zrangebyscore(keys.fileRegistry(g).exp, '-inf', nowMs, 'LIMIT', 0, limit))),
          obs,
        );
        for (const list of found) ids.push(...list);
      }
      return ids.slice(0, limit);
    },

    async reap(uploadID, nowMs) {
      const reply = await storeCall('file reap', () => redis.zaxFileReap(...allKeys(uploadID), uploadID, nowMs), obs);
      if (Array.isArray(reply) && reply.length === 2 && (reply[0] === 0 || reply[0] === 1) && isIntReply(reply[1])) {
        if (reply[0] === 1) {
          obs.files('expired', 1, reply[1]);
          freed(uploadID, reply[1]);
        }
        return { removed: reply[0] === 1, freedBytes: reply[1] };
      }
      throw badReply('file reap', reply);
    },

    async reconcile(limit) {
      const replies = await storeCall('file reconcile', () =>
        Promise.all(BUCKETS.map((b) => redis.zaxFileReconcile(keys.fileRegistry(b).bytes, keys.fileRegistry(b).total, limit))),
        obs,
      );
      let before = 0;
      let after = 0;
      let skipped = false;
      for (const reply of replies) {
        if (!Array.isArray(reply) || reply.length !== 2 || !isIntReply(reply[0]) || !isIntReply(reply[1])) throw badReply('file reconcile', reply);
        if (reply[0] === -1 && reply[1] === -1) skipped = true;
        else {
          before += reply[0];
          after += reply[1];
        }
      }
      return skipped ? null : { before, after };
    },

    async totalBytes() {
      return (await readTotals()).reduce((a, b) => a + b, 0);
    },

    async liveCount(nowMs) {
      const counts = await storeCall('file count', () => Promise.all(BUCKETS.map((b) => redis.zcount(keys.fileRegistry(b).exp, `(${Math.floor(nowMs)}`, '+inf'))), obs);
      return counts.reduce((a, b) => a + b, 0);
    },
  };
}
