/**
 * Every Redis key the core writes, built in one place under the configured prefix. Keys of one
 * mailbox (its messages and its session) carry the hash tag `{hpk}` and the two keys of one
 * handshake carry `{handshake id}`, so each of those scripts touches a single Redis Cluster slot.
 * Files are spread over FILE_BUCKETS buckets by uploadID: a file's three keys and its bucket's
 * registry (expiry and bytes per uploadID, the bucket's byte total) carry the bucket's tag
 * `{fb:<n>}`, so every file script is single-slot too, and the relay-wide total is the sum of the
 * buckets'. A command nonce is recorded in its hpk's slot (a nonce replayed under another hpk
 * cannot open under that hpk's session key); storage tokens and `/prove` nonces are relay-wide, one
 * key each, written by single-key commands; BullMQ's keys start with `jobsPrefix` and share the tag
 * `{jobs}`, as does the census record (census.ts, one key written by one command); the load
 * measurement's keys (per-period counters, replica figures, the summary) share the tag `{load}`.
 * No script or transaction touches keys of two slots.
 */

/** A mailbox's keys; the record format and the byte total are in `lua/include/mailbox.lua`. */
export interface MailboxKeys {
  /** HASH seq → binary record (kind, sender, time, data); field `b`: data bytes stored. */
  readonly msgs: string;
  /** ZSET raw msg nonce (24 bytes) → receipt sequence number `seq` (download order). */
  readonly order: string;
  /** ZSET seq → absolute expiry (ms). */
  readonly exp: string;
}

export interface HandshakeKeys {
  /** HASH ct, rt, pk, sk, exp: the handshake secrets minted for the gatekeeper. */
  readonly secrets: string;
  /** HASH rt, exp: marker of a handshake consumed by a successful `/prove`. */
  readonly proven: string;
}

export interface FileKeys {
  /** HASH from, to, size, status, bytes, total (total_chunks), exp (ms). */
  readonly rec: string;
  /** HASH part → "<decoded size>|<chunk nonce b64>". */
  readonly parts: string;
  /** HASH part → chunk bytes, exactly as uploaded (binary). */
  readonly chunks: string;
}

/** One file bucket's registry (same slot as the bucket's files). */
export interface FileRegistryKeys {
  /** ZSET uploadID → the file's absolute expiry (ms): what the sweep job walks. */
  readonly exp: string;
  /** HASH uploadID → bytes of the file's stored chunks (survives the file's own keys). */
  readonly bytes: string;
  /** STRING: bytes of every stored chunk of the bucket's files (the sum of `bytes`). */
  readonly total: string;
}

/**
 * Buckets the files are spread over. Each is one Redis Cluster slot (so one shard holds a bucket's
 * files); 256 spread a cluster's file bytes evenly over dozens of shards, and the sweep walks 256
 * small registries.
 */
export const FILE_BUCKETS = 256;

/** The bucket (0..FILE_BUCKETS-1) of an uploadID: FNV-1a of its text. */
export function fileBucket(uploadID: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < uploadID.length; i++) {
    h ^= uploadID.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % FILE_BUCKETS;
}

/** The load measurement (src/load.ts), all under the hash tag `{load}`. */
export interface LoadKeys {
  /** HASH mints, commands: one period's counts, summed over every replica (HINCRBY). */
  counts(period: number): string;
  /** STRING (JSON): one replica's figures, with a short TTL. */
  replica(replicaId: string): string;
  /** ZSET replica id → absolute expiry (ms) of its record: the live replicas, without SCAN. */
  readonly replicas: string;
  /** HASH period, report (JSON): the last period aggregated by the load job. */
  readonly summary: string;
}

export interface Keys {
  readonly prefix: string;
  /** BullMQ's `prefix` option: starts with the relay prefix, braced for Redis Cluster. */
  readonly jobsPrefix: string;
  /** A file's keys, in its bucket's slot. */
  file(uploadID: string): FileKeys;
  /** The registry of one bucket (`fileBucket(uploadID)`). */
  fileRegistry(bucket: number): FileRegistryKeys;
  /** STRING: the generated uploadID seed (created once, `SET NX`), when none is configured. */
  readonly fileSeed: string;
  mailbox(hpk: string): MailboxKeys;
  /** SCAN `MATCH` pattern of every mailbox's `exp` key under this prefix (and no other), for the census. */
  readonly mailboxExpMatch: string;
  /** STRING (JSON), with a TTL: the last census (census.ts). */
  readonly census: string;
  /** HASH key (shared key, b64), apk (a_sess_pk, b64), exp (ms). Same slot as the mailbox. */
  session(hpk: string): string;
  handshake(handshakeId: string): HandshakeKeys;
  /** STRING, present while the `/prove` nonce is in the relay-wide replay cache. */
  nonce(nonceB64: string): string;
  /** STRING, present while the `/command` nonce is in its hpk's replay cache. Same slot as the mailbox. */
  commandNonce(hpk: string, nonceB64: string): string;
  /** STRING: the expiry (ms) of the message the storage token names. */
  storageToken(tokenB64: string): string;
  readonly load: LoadKeys;
}

/** `s` as a literal in a Redis glob pattern (`*`, `?`, `[`, `]` and `\\` escaped). */
export const globLiteral = (s: string): string => s.replace(/[*?[\]\\]/g, '\\$&');

export function createKeys(prefix: string): Keys {
  if (/[{}]/.test(prefix)) throw new Error('key prefix must not contain braces');
  return {
    prefix,
    jobsPrefix: `${prefix}{jobs}`,
    file(uploadID) {
      // Layout 2 (bucket-tagged for Redis Cluster): new key names, so files and registry entries of
      // the first layout (`f:{uploadID}:…`, `{files}:…`) are never mixed with these; they expire.
      const base = `${prefix}f2:{fb:${fileBucket(uploadID)}}:${uploadID}:`;
      return { rec: `${base}rec`, parts: `${base}parts`, chunks: `${base}chunks` };
    },
    fileRegistry(bucket) {
      const base = `${prefix}{fb:${bucket}}:`;
      return { exp: `${base}exp`, bytes: `${base}bytes`, total: `${base}total` };
    },
    fileSeed: `${prefix}files:seed`,
    mailbox(hpk) {
      const base = `${prefix}mb:{${hpk}}:`;
      // Layout 2 (binary records keyed by receipt number): new key names, so a mailbox written in
      // the first layout (nonce-keyed JSON records, a meta hash) is never read as this one; its
      // keys expire on their own TTL.
      return { msgs: `${base}m2`, order: `${base}o2`, exp: `${base}e2` };
    },
    // An hpk is base64 (no glob character, no brace), so `*` between the braces matches exactly
    // the hpks; a longer prefix that starts with this one never matches (`mb:{` must follow it).
    mailboxExpMatch: `${globLiteral(prefix)}mb:{*}:e2`,
    census: `${prefix}{jobs}:census`,
    session: (hpk) => `${prefix}mb:{${hpk}}:sess`,
    handshake(handshakeId) {
      const base = `${prefix}hs:{${handshakeId}}`;
      return { secrets: base, proven: `${base}:proven` };
    },
    nonce: (nonceB64) => `${prefix}nonce:${nonceB64}`,
    commandNonce: (hpk, nonceB64) => `${prefix}mb:{${hpk}}:n:${nonceB64}`,
    storageToken: (tokenB64) => `${prefix}tok:${tokenB64}`,
    load: {
      counts: (period) => `${prefix}{load}:n:${period}`,
      replica: (replicaId) => `${prefix}{load}:r:${replicaId}`,
      replicas: `${prefix}{load}:replicas`,
      summary: `${prefix}{load}:summary`,
    },
  };
}

/**
 * How long a key outlives the absolute expiry of what it holds. Expiry is always checked against
 * the service clock inside the scripts; Redis TTLs (relative: remaining lifetime + margin) only
 * clean up, so a little skew between the clock and Redis never revives or loses a record.
 */
export const KEY_TTL_MARGIN_MS = 60_000;

/** Most expired messages one script call removes before doing its work. */
export const COMPACT_LIMIT = 100;
