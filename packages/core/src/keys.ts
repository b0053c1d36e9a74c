/**
 * Every Redis key the core writes, built in one place under the configured prefix. Keys of one
 * mailbox (its messages and its session) carry the hash tag `{hpk}`, the two keys of one
 * handshake carry `{handshake id}`, and the three keys of one file carry `{uploadID}`, so each of
 * those scripts touches a single Redis Cluster slot. A command nonce is recorded in its hpk's slot
 * (a nonce replayed under another hpk cannot open under that hpk's session key); storage tokens
 * and `/prove` nonces are relay-wide, one key each; the file registry (expiry and bytes per uploadID, the relay-wide byte total) shares the
 * tag `{files}`; BullMQ's keys start with `jobsPrefix` and share the tag `{jobs}`; the load
 * measurement's keys (per-period counters, replica figures, the summary) share the tag `{load}`.
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

export interface FileRegistryKeys {
  /** ZSET uploadID → the file's absolute expiry (ms): what the sweep job walks. */
  readonly exp: string;
  /** HASH uploadID → bytes of the file's stored chunks (survives the file's own keys). */
  readonly bytes: string;
  /** STRING: bytes of every stored chunk on the relay (the sum of `bytes`). */
  readonly total: string;
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
  file(uploadID: string): FileKeys;
  readonly fileRegistry: FileRegistryKeys;
  /** STRING: the generated uploadID seed (created once, `SET NX`), when none is configured. */
  readonly fileSeed: string;
  mailbox(hpk: string): MailboxKeys;
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

export function createKeys(prefix: string): Keys {
  if (/[{}]/.test(prefix)) throw new Error('key prefix must not contain braces');
  return {
    prefix,
    jobsPrefix: `${prefix}{jobs}`,
    file(uploadID) {
      const base = `${prefix}f:{${uploadID}}:`;
      return { rec: `${base}rec`, parts: `${base}parts`, chunks: `${base}chunks` };
    },
    fileRegistry: { exp: `${prefix}{files}:exp`, bytes: `${prefix}{files}:bytes`, total: `${prefix}{files}:total` },
    fileSeed: `${prefix}files:seed`,
    mailbox(hpk) {
      const base = `${prefix}mb:{${hpk}}:`;
      // Layout 2 (binary records keyed by receipt number): new key names, so a mailbox written in
      // the first layout (nonce-keyed JSON records, a meta hash) is never read as this one; its
      // keys expire on their own TTL.
      return { msgs: `${base}m2`, order: `${base}o2`, exp: `${base}e2` };
    },
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
