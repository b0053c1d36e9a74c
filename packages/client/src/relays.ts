/**
 * Delivery through several relays, the Zax paper's answer to an unreliable relay. Sender and
 * recipient know the same list of n relay URLs; each message to a recipient goes through k of them,
 * chosen from the recipient's hpk by rendezvous (highest-random-weight) hashing, so both sides pick
 * the same k without talking. A message is sealed once (one nonce) and uploaded to each of its k
 * relays; the recipient reads its own k and keeps one copy per (sender hpk, nonce). With one relay
 * down, nothing is lost (another of the k holds it) and nothing is listed twice.
 * Files go the same way: one upload per relay, all under the same file key and metadata nonce,
 * fed from one reading of the source; a relay that fails is dropped and the others go on. The
 * recipient sees one file message, downloads from one relay and falls back to another.
 * No Node modules: the browser bundle uses it too.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { b64, KEY_BYTES, makeNonce, nowSec, systemClock, type Clock, type Crypto } from '@zax/protocol';
import { bestCrypto } from './crypto-backend.js';
import { AllRelaysFailedError, FileTransferError, UsageError, ZaxClientError, type RelayFailure } from './errors.js';
import {
  chunkCount,
  downloadFile,
  fileOf,
  fileStatus,
  sinkWriter,
  sourceSize,
  startFileUpload,
  uploadChunks,
  type ChunkTarget,
  type FileMetadata,
  type FileSource,
  type FileStatus,
  type FileUpload,
  type ReceivedFile,
  type ReceiveFileOptions,
  type SendFileOptions,
} from './files.js';
import { hpkOf, parseKey, type Identity } from './identity.js';
import { Mailbox, resolveRecipient, type Guest, type MailboxOptions, type ReceivedMessage, type Recipient } from './mailbox.js';
import { sealText } from './message.js';
import { normalizeBaseUrl, type RelaySessionOptions } from './relay.js';

// ---------- choosing the relays ----------

const utf8 = new TextEncoder();

/**
 * The relay URLs of a list, normalised (`normalizeBaseUrl`: lower-case host, no default port, no
 * trailing slash) and without repeats, in their first order. Throws UsageError for an empty list
 * or a URL that is not an http(s) base URL.
 */
export function distinctRelayUrls(urls: readonly (string | URL)[]): string[] {
  if (!Array.isArray(urls)) throw new UsageError('relay URLs: expected an array of URLs');
  const out: string[] = [];
  for (const url of urls) {
    const u = normalizeBaseUrl(url);
    if (!out.includes(u)) out.push(u);
  }
  if (out.length === 0) throw new UsageError('relay URLs: the list is empty');
  return out;
}

/** Big-endian comparison of two byte strings of the same length. */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** The rendezvous score of one relay for one hpk: sha256(hpk ‖ UTF-8(normalised URL)). */
export function relayScore(hpk: Uint8Array, normalizedUrl: string): Uint8Array {
  return sha256.create().update(hpk).update(utf8.encode(normalizedUrl)).digest();
}

/**
 * The k relays of `urls` that carry mail to `recipientHpk` (b64 of 32 bytes, or the bytes: the
 * address, not the public key). Every URL is normalised and repeats are dropped; each relay scores
 * sha256(hpk ‖ UTF-8(normalised URL)), read as a big-endian number, and the k highest win. The
 * result is ranked, highest score first (an exact tie, which needs a SHA-256 collision, goes to the
 * smaller URL), so it does not depend on the order or the spelling of the list. Removing a relay
 * from the list changes the choice only for the hpks that had it; adding one, only for those it
 * wins.
 * Throws UsageError for an empty list, a bad URL, or k not an integer from 1 to the number of
 * distinct relays; IdentityError for an hpk that is not 32 bytes.
 */
export function pickRelays(urls: readonly (string | URL)[], recipientHpk: string | Uint8Array, k: number): string[] {
  const hpk = parseKey(recipientHpk, 'recipient hpk');
  const list = distinctRelayUrls(urls);
  checkK(k, list.length);
  return list
    .map((url) => ({ url, score: relayScore(hpk, url) }))
    .sort((a, b) => compareBytes(b.score, a.score) || (a.url < b.url ? -1 : a.url > b.url ? 1 : 0))
    .slice(0, k)
    .map((s) => s.url);
}

function checkK(k: number, n: number): void {
  if (!Number.isInteger(k) || k < 1 || k > n) {
    throw new UsageError(`k must be an integer from 1 to the number of distinct relays (${n}), not ${String(k)}`);
  }
}

// ---------- outcomes ----------

/** One relay's result in an operation over several relays: its value, or the error it failed with. */
export type RelayResult<T> = { readonly url: string; readonly value: T } | RelayFailure;

/** True for a relay's failure, in any per-relay outcome (`RelayResult`, `SendOutcome`, …). */
export const isRelayFailure = <S extends { readonly url: string }>(r: S | RelayFailure): r is RelayFailure => 'error' in r;

/** The failed outcomes, in order. */
export const relayFailures = <S extends { readonly url: string }>(results: readonly (S | RelayFailure)[]): RelayFailure[] =>
  results.filter((r): r is RelayFailure => isRelayFailure(r));

/** Throws AllRelaysFailedError unless at least one outcome is a success. */
export function throwIfAllFailed<S extends { readonly url: string }>(results: readonly (S | RelayFailure)[], operation: string): void {
  if (!results.some((r) => !isRelayFailure(r))) throw new AllRelaysFailedError(operation, relayFailures(results));
}

const asError = (e: unknown): Error => (e instanceof Error ? e : new ZaxClientError(String(e)));

/** Per-relay outcome of `send`: the storage token that relay returned, or its error. */
export type SendOutcome = { readonly url: string; readonly token: string } | RelayFailure;
/** Per-relay outcome of `delete` / `deleteAll`: live messages left there, or its error. */
export type DeleteOutcome = { readonly url: string; readonly remaining: number } | RelayFailure;
/** Per-relay outcome of `count`: live messages there, or its error. */
export type CountOutcome = { readonly url: string; readonly count: number } | RelayFailure;

export interface MultiSendResult {
  /** b64(recipient hpk) */
  readonly to: string;
  /** b64(message nonce): the same on every relay, plain messages included. */
  readonly nonce: string;
  /** One outcome per chosen relay, in `relaysFor(to)` order. */
  readonly relays: readonly SendOutcome[];
  /** The failed ones among `relays`. */
  readonly failures: readonly RelayFailure[];
}

/** A received message, with the relays that hold it. */
export interface MultiReceivedMessage extends ReceivedMessage {
  /** The relays (of the k read) that returned this message, in `ownRelays` order. */
  readonly relays: readonly string[];
  /**
   * For a `file` message: its upload on each relay that listed it, in `relays` order. Each relay
   * derives its own uploadID, so they differ; `uploadID` is the one of the copy kept.
   */
  readonly uploads?: readonly RelayUpload[];
}

/** One relay's upload of a file: the relay and the uploadID it gave. */
export interface RelayUpload {
  readonly url: string;
  readonly uploadID: string;
}

/** A relay that failed a file upload; `uploadID` when it had started it (the partial upload may stay there). */
export type FileRelayFailure = RelayFailure & { readonly uploadID?: string };

/** Per-relay outcome of `sendFile`: the whole file stored (uploadID, storage token of the file message), or the error. */
export type FileSendOutcome = { readonly url: string; readonly uploadID: string; readonly token: string } | FileRelayFailure;
/** Per-relay outcome of `fileStatus`. */
export type FileStatusOutcome = { readonly url: string; readonly uploadID: string; readonly status: FileStatus } | RelayFailure;
/** Per-relay outcome of `deleteFile`: whether the relay had the file, or its error. */
export type DeleteFileOutcome = { readonly url: string; readonly uploadID: string; readonly deleted: boolean } | RelayFailure;

/** `sendFile` options: those of `Mailbox.sendFile` without resume (not supported across relays). */
export type MultiSendFileOptions = Omit<SendFileOptions, 'resume' | 'sourceOffset' | 'onCheckpoint'>;

export interface MultiSentFile {
  /** b64(recipient hpk) */
  readonly to: string;
  /** b64 nonce of the file message: the same on every relay, so the recipient lists the file once. */
  readonly nonce: string;
  readonly name: string;
  readonly size: number;
  /** Plaintext bytes per chunk: the same on every relay, within each one's max_chunk_size. */
  readonly chunkSize: number;
  readonly chunks: number;
  /** One outcome per chosen relay, in `relaysFor(to)` order; a success holds the whole file. */
  readonly relays: readonly FileSendOutcome[];
  /** The failed ones among `relays`. */
  readonly failures: readonly FileRelayFailure[];
  /** Every upload started, complete or not, in `relays` order: pass to `deleteFile` or `fileStatus`. */
  readonly uploads: readonly RelayUpload[];
}

/** A received file, with the relay it came from and the relays tried before it. */
export interface MultiReceivedFile extends ReceivedFile {
  readonly url: string;
  readonly uploadID: string;
  /** Relays tried first that failed. */
  readonly failures: readonly RelayFailure[];
}

/** An operation's outcome on each relay it ran on, and the failures among them. */
export interface PerRelay<Outcome> {
  readonly relays: readonly Outcome[];
  readonly failures: readonly RelayFailure[];
}

export type MultiFileStatusResult = PerRelay<FileStatusOutcome>;

export type MultiDeleteFileResult = PerRelay<DeleteFileOutcome>;

/** A file on several relays: a received `file` message, a `sendFile` result, or its uploads (and metadata, to receive). */
export type MultiFileRef = { readonly uploads?: readonly RelayUpload[] };

export interface MultiReceiveResult {
  /** Each (sender hpk, nonce) once, with its earliest `time`; sorted by `time`. */
  readonly messages: MultiReceivedMessage[];
  /** Relays that could not be read; their messages are missing unless another relay had them. */
  readonly failures: readonly RelayFailure[];
}

export type MultiDeleteResult = PerRelay<DeleteOutcome>;

export type MultiCountResult = PerRelay<CountOutcome>;

// ---------- the mailbox over several relays ----------

export interface MultiMailboxOptions extends Omit<RelaySessionOptions, 'url'>, Pick<MailboxOptions, 'guests'> {
  /** The shared relay list. Sender and recipient must use the same list (in any order or spelling) and the same k. */
  urls: readonly (string | URL)[];
  /** Relays per message. @default min(2, number of distinct URLs) */
  k?: number;
}

/**
 * One identity's mailbox spread over k of n relays. It holds one `Mailbox` per relay, created on
 * first use (no I/O until then); every operation runs on its relays in parallel.
 */
export class MultiMailbox {
  /** The relay list, normalised and without repeats. */
  readonly urls: readonly string[];
  readonly k: number;
  readonly identity: Identity;
  private readonly sessionOptions: Omit<RelaySessionOptions, 'url'>;
  private readonly crypto: Crypto;
  private readonly clock: Clock;
  private readonly random: (n: number) => Uint8Array;
  private readonly mailboxes = new Map<string, Mailbox>();
  private readonly guestsByHpk = new Map<string, Guest>();
  private readonly own: readonly string[];

  constructor(options: MultiMailboxOptions) {
    const { urls, k, guests, ...session } = options;
    if (!(session.identity?.hpk instanceof Uint8Array)) throw new UsageError('MultiMailbox: an identity is required');
    this.urls = distinctRelayUrls(urls);
    this.k = k ?? Math.min(2, this.urls.length);
    checkK(this.k, this.urls.length);
    this.identity = session.identity;
    // One crypto, clock and random for every relay's session and for sealing.
    this.crypto = session.crypto ?? bestCrypto();
    this.clock = session.clock ?? systemClock;
    const crypto = this.crypto;
    this.random = session.random ?? ((n) => crypto.randomBytes(n));
    this.sessionOptions = { ...session, crypto: this.crypto, clock: this.clock, random: this.random };
    for (const g of guests ?? []) {
      if (typeof g === 'string' || g instanceof Uint8Array) this.addGuest(g);
      else this.addGuest(g.publicKey, g.name);
    }
    this.own = pickRelays(this.urls, this.identity.hpk, this.k);
  }

  /** b64 of this identity's hpk. */
  get hpk(): string {
    return b64(this.identity.hpk);
  }

  /** The k relays this identity's mail arrives at (and `receive`, `delete`, `count` read). */
  get ownRelays(): readonly string[] {
    return this.own;
  }

  /** The k relays that carry mail to an hpk (`pickRelays` over this list and k). */
  relaysFor(hpk: string | Uint8Array): string[] {
    return pickRelays(this.urls, hpk, this.k);
  }

  /** The Mailbox at one of the list's relays, created on first use. */
  mailboxAt(url: string | URL): Mailbox {
    const u = normalizeBaseUrl(url);
    let mb = this.mailboxes.get(u);
    if (mb === undefined) {
      if (!this.urls.includes(u)) throw new UsageError(`${u} is not in this mailbox's relay list`);
      mb = Mailbox.create({ ...this.sessionOptions, url: u, guests: [...this.guestsByHpk.values()] });
      this.mailboxes.set(u, mb);
    }
    return mb;
  }

  /**
   * Runs `op` on the Mailbox of each URL, all at once, and returns one result per URL in the same
   * order. It never rejects for a relay's failure: that is a result. Every operation here is built
   * on it, and so can others that must reach the k relays of an hpk (`relaysFor`, `ownRelays`).
   */
  async onRelays<T>(urls: readonly string[], op: (mailbox: Mailbox, url: string) => Promise<T>): Promise<RelayResult<T>[]> {
    // Creating the mailboxes first lets a bad option (e.g. timeoutMs) throw here, not per relay.
    const targets = urls.map((url) => ({ url: normalizeBaseUrl(url), mailbox: this.mailboxAt(url) }));
    return Promise.all(
      targets.map(async ({ url, mailbox }): Promise<RelayResult<T>> => {
        try {
          return { url, value: await op(mailbox, url) };
        } catch (e) {
          return { url, error: asError(e) };
        }
      }),
    );
  }

  // ---------- guests ----------

  /** Adds a correspondent, on every relay's mailbox. */
  addGuest(publicKey: string | Uint8Array, name?: string): Guest {
    const pk = parseKey(publicKey);
    const guest: Guest = { publicKey: pk, publicKeyB64: b64(pk), hpk: b64(hpkOf(pk)), ...(name !== undefined ? { name } : {}) };
    this.guestsByHpk.set(guest.hpk, guest);
    for (const mb of this.mailboxes.values()) mb.addGuest(pk, name);
    return guest;
  }

  removeGuest(publicKey: string | Uint8Array): boolean {
    const pk = parseKey(publicKey);
    for (const mb of this.mailboxes.values()) mb.removeGuest(pk);
    return this.guestsByHpk.delete(b64(hpkOf(pk)));
  }

  get guests(): readonly Guest[] {
    return [...this.guestsByHpk.values()];
  }

  // ---------- messages ----------

  /**
   * Sends `text` to a recipient through its k relays, in parallel. The message is sealed once, so
   * every relay stores the same nonce and ciphertext. A plain message (`{ encrypt: false }`) also
   * gets its nonce here, not from the relays: it is uploaded as `{ctext: text, nonce}` (§5.2 stores
   * `ctext` as the data, unchanged), so its copies de-duplicate like encrypted ones.
   * Resolves when at least one relay stored it (`failures` lists the others); throws
   * AllRelaysFailedError, naming every relay's failure, when none did.
   */
  async send(to: Recipient, text: string, options: { encrypt?: boolean } = {}): Promise<MultiSendResult> {
    if (typeof text !== 'string') throw new UsageError('send: the message text must be a string');
    const encrypt = options.encrypt ?? true;
    const { publicKey, hpk } = resolveRecipient(to);
    if (encrypt && publicKey === null) throw new UsageError('cannot encrypt to a bare hpk: pass the recipient public key, or { encrypt: false }');
    const nonce = makeNonce(nowSec(this.clock), this.random);
    const payload = publicKey !== null && encrypt ? sealText(this.crypto, text, nonce, publicKey, this.identity.secretKey) : { ctext: text, nonce: b64(nonce) };
    const results = await this.onRelays(this.relaysFor(hpk), (mb) => mb.upload(hpk, payload));
    throwIfAllFailed(results, `send to ${hpk}`);
    return {
      to: hpk,
      nonce: payload.nonce,
      relays: results.map((r) => (isRelayFailure(r) ? r : { url: r.url, token: r.value })),
      failures: relayFailures(results),
    };
  }

  /**
   * Every message on this identity's k relays (each read in full, as `Mailbox.receive` does, all at
   * once), merged: one per (sender hpk, nonce), with its earliest `time`, sorted by `time`. Relays
   * that fail are listed in `failures`; throws AllRelaysFailedError only when all k fail.
   */
  async receive(options: { from?: readonly Recipient[]; pageSize?: number; maxPages?: number } = {}): Promise<MultiReceiveResult> {
    // A bad sender is the caller's mistake: say so once, not once per relay.
    for (const r of options.from ?? []) resolveRecipient(r);
    const results = await this.onRelays(this.own, (mb) => mb.receive(options));
    throwIfAllFailed(results, `receive for ${this.hpk}`);
    const byKey = new Map<string, { message: ReceivedMessage; relays: string[]; uploads: RelayUpload[] }>();
    for (const r of results) {
      if (isRelayFailure(r)) continue;
      for (const m of r.value) {
        const key = `${m.from}\n${m.nonce}`;
        let seen = byKey.get(key);
        if (seen === undefined) byKey.set(key, (seen = { message: m, relays: [r.url], uploads: [] }));
        else {
          seen.relays.push(r.url);
          if (m.time < seen.message.time) seen.message = m;
        }
        // A file's copies differ by uploadID (each relay derives its own): keep them all.
        if (m.uploadID !== undefined) seen.uploads.push({ url: r.url, uploadID: m.uploadID });
      }
    }
    // Array.prototype.sort is stable: equal times keep the first relay's order.
    const messages = [...byKey.values()]
      .map(({ message, relays, uploads }): MultiReceivedMessage => ({ ...message, relays, ...(uploads.length > 0 ? { uploads } : {}) }))
      .sort((a, b) => a.time - b.time);
    return { messages, failures: relayFailures(results) };
  }

  /**
   * Deletes messages by nonce on each of the k relays. A relay that fails keeps its copies, and
   * `receive` lists them again until a later delete reaches it: check `failures`. Throws
   * AllRelaysFailedError only when all k fail.
   */
  async delete(nonces: readonly string[]): Promise<MultiDeleteResult> {
    if (!Array.isArray(nonces) || !nonces.every((n) => typeof n === 'string')) throw new UsageError('delete: expected an array of base64 nonces');
    const results = await this.onRelays(this.own, (mb) => mb.delete(nonces));
    throwIfAllFailed(results, `delete for ${this.hpk}`);
    return { relays: results.map((r) => (isRelayFailure(r) ? r : { url: r.url, remaining: r.value })), failures: relayFailures(results) };
  }

  /** Empties the mailbox on each of the k relays (`Mailbox.deleteAll`); failures as for `delete`. */
  async deleteAll(): Promise<MultiDeleteResult> {
    const results = await this.onRelays(this.own, (mb) => mb.deleteAll());
    throwIfAllFailed(results, `deleteAll for ${this.hpk}`);
    return { relays: results.map((r) => (isRelayFailure(r) ? r : { url: r.url, remaining: r.value })), failures: relayFailures(results) };
  }

  /**
   * Live messages on each of the k relays, as each counts them: copies of one message on two relays
   * count on both. The number of distinct messages is `(await receive()).messages.length`.
   */
  async count(): Promise<MultiCountResult> {
    const results = await this.onRelays(this.own, (mb) => mb.count());
    throwIfAllFailed(results, `count for ${this.hpk}`);
    return { relays: results.map((r) => (isRelayFailure(r) ? r : { url: r.url, count: r.value })), failures: relayFailures(results) };
  }

  // ---------- files ----------

  /**
   * Sends a file to `to` (a public key) through its k relays: one upload per relay, all with the
   * same file key and metadata nonce (so the recipient lists the file message once), driven
   * together by `uploadChunks`, which reads the source once. The chunk size fits every relay (the
   * smallest max_chunk_size). A relay that fails to start, or fails a chunk after the retries of
   * `options.retry`, is dropped (its chunks in flight are stopped) and the others go on. Resolves
   * when at least one relay stored the whole file (`failures` lists the others, with the uploadID of
   * a partial upload); throws AllRelaysFailedError when none did. A source of the wrong size, a bad
   * option or an abort throws as for `Mailbox.sendFile`. No resume: an interrupted send starts again.
   */
  async sendFile(to: Recipient, source: FileSource, options: MultiSendFileOptions = {}): Promise<MultiSentFile> {
    const o = options as SendFileOptions;
    if (o.resume !== undefined || o.onCheckpoint !== undefined || o.sourceOffset !== undefined) {
      throw new UsageError('sendFile over several relays does not resume: resume, onCheckpoint and sourceOffset are not supported');
    }
    const { publicKey, hpk } = resolveRecipient(to);
    if (publicKey === null) throw new UsageError('a file is always encrypted: pass the recipient public key, not an hpk');
    const size = sourceSize(source, options.size);
    if (options.chunkSize !== undefined && (!Number.isSafeInteger(options.chunkSize) || options.chunkSize < 1)) throw new UsageError('chunkSize must be a positive integer');
    const ownName = (source as { name?: unknown }).name;
    const name = options.name ?? (typeof ownName === 'string' && ownName !== '' ? ownName : 'file');
    const signal = options.signal;
    if (signal?.aborted) throw abortError(signal);
    const urls = this.relaysFor(hpk);
    const skey = this.random(KEY_BYTES);
    const metadataNonce = makeNonce(nowSec(this.clock), this.random);
    // One stop switch per relay, so a dropped relay's chunks in flight stop retrying; the caller's
    // signal throws them all.
    const stops = new Map(urls.map((url) => [url, new AbortController()]));
    const onAbort = (): void => stops.forEach((c) => c.abort(signal?.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const started = await this.onRelays(urls, (mb, url) =>
        startFileUpload(
          mb,
          { publicKey, hpk },
          { name, size, ...(options.metadata ? { metadata: options.metadata } : {}) },
          { skey, metadataNonce, signal: stops.get(url)!.signal, ...(options.retry ? { retry: options.retry } : {}) },
        ),
      );
      if (signal?.aborted) throw abortError(signal);
      // A caller's mistake (e.g. an empty file) fails every start the same way: say it once.
      const misuse = started.find((r) => isRelayFailure(r) && r.error instanceof UsageError);
      if (misuse !== undefined && started.every(isRelayFailure)) throw (misuse as RelayFailure).error;
      const targets: DroppableTarget[] = [];
      const live = { count: 0 };
      for (const r of started) if (!isRelayFailure(r)) targets.push(new DroppableTarget(r.url, r.value, stops.get(r.url)!, live, signal));
      live.count = targets.length;
      const outcomes = (): FileSendOutcome[] =>
        started.map((r) => {
          if (isRelayFailure(r)) return r;
          const t = targets.find((x) => x.url === r.url)!;
          return t.error !== null ? { url: r.url, error: t.error, uploadID: r.value.uploadID } : { url: r.url, uploadID: r.value.uploadID, token: r.value.token };
        });
      if (targets.length === 0) throw new AllRelaysFailedError(`sendFile to ${hpk}`, relayFailures(started));
      const chunkSize = Math.min(options.chunkSize ?? Infinity, ...targets.map((t) => t.upload.maxPlainChunk));
      try {
        await uploadChunks(source, targets, {
          size,
          chunkSize,
          ...(options.window !== undefined ? { window: options.window } : {}),
          ...(signal ? { signal } : {}),
          ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        });
      } catch (e) {
        // The last relay dropped: that is every relay failing, not an error of the source.
        if (live.count === 0 && !signal?.aborted) throw new AllRelaysFailedError(`sendFile to ${hpk}`, relayFailures(outcomes()));
        throw e;
      }
      const relays = outcomes();
      throwIfAllFailed(relays, `sendFile to ${hpk}`);
      return {
        to: hpk,
        nonce: b64(metadataNonce),
        name,
        size,
        chunkSize,
        chunks: chunkCount(size, chunkSize),
        relays,
        failures: relays.filter((r): r is FileRelayFailure => isRelayFailure(r)),
        uploads: targets.map((t) => ({ url: t.url, uploadID: t.upload.uploadID })),
      };
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * The status of a file on each relay that holds it (`file.uploads`: a received `file` message or
   * a `sendFile` result). Throws AllRelaysFailedError only when every relay fails.
   */
  async fileStatus(file: MultiFileRef): Promise<MultiFileStatusResult> {
    const ids = uploadsOf(file);
    const results = await this.onRelays([...ids.keys()], (mb, url) => fileStatus(mb, ids.get(url)!));
    throwIfAllFailed(results, 'fileStatus');
    return { relays: results.map((r) => (isRelayFailure(r) ? r : { url: r.url, uploadID: ids.get(r.url)!, status: r.value })), failures: relayFailures(results) };
  }

  /**
   * Downloads a file from one of the relays that hold it: `file` is a received `file` message (from
   * a known guest) or `{uploads, metadata}`. The relays whose upload is COMPLETE are tried first; if
   * a download fails (relay down, upload gone or incomplete, a chunk that does not open, …), the
   * next relay is tried. Without a sink each try fills a fresh buffer; with a sink, the bytes it
   * already has are downloaded again from the next relay but not delivered twice (and `onProgress`
   * does not go back). A failure of the sink itself, an abort or a bad option is thrown at once.
   * Throws AllRelaysFailedError, naming each relay's error, when no relay delivers the file.
   */
  async receiveFile(file: MultiReceivedMessage | (MultiFileRef & { metadata: FileMetadata }), options: ReceiveFileOptions = {}): Promise<MultiReceivedFile> {
    const ids = uploadsOf(file);
    const { metadata } = 'metadata' in file ? { metadata: file.metadata } : fileOf({ uploadID: [...ids.values()][0]!, ...file });
    const { signal } = options;
    // Rank by a quick status (no retries): COMPLETE, then in progress, then unreachable, then NOT_FOUND.
    const statuses = await this.onRelays([...ids.keys()], (mb, url) => fileStatus(mb, ids.get(url)!, { retries: 0 }, signal));
    const rank = (r: RelayResult<FileStatus>): number => (isRelayFailure(r) ? 2 : r.value.status === 'COMPLETE' ? 0 : r.value.status === 'NOT_FOUND' ? 3 : 1);
    const order = statuses.map((r, i) => ({ url: r.url, rank: rank(r), i })).sort((a, b) => a.rank - b.rank || a.i - b.i);

    const out = options.sink === undefined ? null : sinkWriter(options.sink);
    let delivered = 0;
    let reported = -1;
    const sinkFailed: { error?: unknown; failed: boolean } = { failed: false };
    const failures: RelayFailure[] = [];
    const stop = async (e: unknown): Promise<never> => {
      await out?.abort(e);
      throw e;
    };
    for (const { url } of order) {
      const uploadID = ids.get(url)!;
      let skip = delivered;
      const sink =
        out === null
          ? undefined
          : async (chunk: Uint8Array): Promise<void> => {
              if (skip >= chunk.length) {
                skip -= chunk.length;
                return;
              }
              const piece = skip > 0 ? chunk.subarray(skip) : chunk;
              skip = 0;
              try {
                await out.write(piece);
              } catch (e) {
                sinkFailed.failed = true;
                sinkFailed.error = e;
                throw e;
              }
              delivered += piece.length;
            };
      const onProgress = options.onProgress;
      let closing = false;
      try {
        const got = await downloadFile(this.mailboxAt(url), uploadID, metadata, {
          ...options,
          ...(sink !== undefined ? { sink } : {}),
          ...(onProgress !== undefined
            ? {
                onProgress: (p) => {
                  if (p.bytes <= reported) return;
                  reported = p.bytes;
                  onProgress(p);
                },
              }
            : {}),
        });
        // A sink that fails to close is the caller's failure, not a relay's: no fallback.
        closing = true;
        await out?.close();
        return { ...got, url, uploadID, failures };
      } catch (e) {
        if (closing) throw e;
        if (sinkFailed.failed) return stop(sinkFailed.error);
        if (signal?.aborted || e instanceof UsageError) return stop(e);
        failures.push({ url, error: asError(e) });
      }
    }
    return stop(new AllRelaysFailedError(`receiveFile ${metadata.name}`, failures));
  }

  /**
   * Deletes a file (record and chunks, for both parties, §5.11) on every relay that holds it
   * (`file.uploads`). The `file` message stays in the recipient's mailbox: `delete([nonce])` removes
   * it. Throws AllRelaysFailedError only when every relay fails.
   */
  async deleteFile(file: MultiFileRef): Promise<MultiDeleteFileResult> {
    const ids = uploadsOf(file);
    const results = await this.onRelays([...ids.keys()], (mb, url) => mb.deleteFile(ids.get(url)!));
    throwIfAllFailed(results, 'deleteFile');
    return { relays: results.map((r) => (isRelayFailure(r) ? r : { url: r.url, uploadID: ids.get(r.url)!, deleted: r.value })), failures: relayFailures(results) };
  }
}

/** `uploads` of a file reference, by normalised URL; UsageError when there are none. */
function uploadsOf(file: MultiFileRef): Map<string, string> {
  const list = (file as { uploads?: unknown } | null)?.uploads;
  if (!Array.isArray(list) || list.length === 0) throw new UsageError('not a file on these relays: expected `uploads` ({ url, uploadID }[]), as a received file message or a sendFile result has');
  const ids = new Map<string, string>();
  for (const u of list as RelayUpload[]) {
    if (typeof u?.uploadID !== 'string') throw new UsageError('uploads: each item needs a url and an uploadID');
    const url = normalizeBaseUrl(u.url);
    if (!ids.has(url)) ids.set(url, u.uploadID);
  }
  return ids;
}

function abortError(signal: AbortSignal): FileTransferError {
  return new FileTransferError('aborted', 'file transfer aborted', { cause: signal.reason });
}

/**
 * One relay's upload in a multi-relay send. A failed chunk (after its retries) drops the relay:
 * its other chunks in flight are stopped, and later chunks skip it. The failure is kept, not
 * thrown, so the other relays go on; only the last relay to drop throws, which stops the send.
 */
class DroppableTarget implements ChunkTarget {
  error: Error | null = null;
  constructor(
    readonly url: string,
    readonly upload: FileUpload,
    private readonly stop: AbortController,
    private readonly live: { count: number },
    private readonly signal: AbortSignal | undefined,
  ) {}

  async uploadChunk(part: number, plaintext: Uint8Array, last: boolean): Promise<void> {
    if (this.error !== null) return;
    // Encrypts before the first await: the caller may reuse `plaintext` once this returns.
    const sending = this.upload.uploadChunk(part, plaintext, last);
    try {
      await sending;
    } catch (e) {
      if (this.signal?.aborted) throw e;
      if (this.error !== null) return; // already dropped: this is one of its stopped chunks
      this.error = asError(e);
      this.stop.abort(this.error);
      if (--this.live.count === 0) throw e;
    }
  }
}
