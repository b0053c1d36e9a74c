/**
 * Delivery through several relays, the Zax paper's answer to an unreliable relay. Sender and
 * recipient know the same list of n relay URLs; each message to a recipient goes through k of them,
 * chosen from the recipient's hpk by rendezvous (highest-random-weight) hashing, so both sides pick
 * the same k without talking. A message is sealed once (one nonce) and uploaded to each of its k
 * relays; the recipient reads its own k and keeps one copy per (sender hpk, nonce). With one relay
 * down, nothing is lost (another of the k holds it) and nothing is listed twice.
 * No Node modules: the browser bundle uses it too.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { b64, makeNonce, nowSec, systemClock, type Clock, type Crypto } from '@zax/protocol';
import { bestCrypto } from './crypto-backend.js';
import { AllRelaysFailedError, UsageError, ZaxClientError, type RelayFailure } from './errors.js';
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
}

export interface MultiReceiveResult {
  /** Each (sender hpk, nonce) once, with its earliest `time`; sorted by `time`. */
  readonly messages: MultiReceivedMessage[];
  /** Relays that could not be read; their messages are missing unless another relay had them. */
  readonly failures: readonly RelayFailure[];
}

export interface MultiDeleteResult {
  readonly relays: readonly DeleteOutcome[];
  readonly failures: readonly RelayFailure[];
}

export interface MultiCountResult {
  readonly relays: readonly CountOutcome[];
  readonly failures: readonly RelayFailure[];
}

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
    const byKey = new Map<string, { message: ReceivedMessage; relays: string[] }>();
    for (const r of results) {
      if (isRelayFailure(r)) continue;
      for (const m of r.value) {
        const key = `${m.from}\n${m.nonce}`;
        const seen = byKey.get(key);
        if (seen === undefined) byKey.set(key, { message: m, relays: [r.url] });
        else {
          seen.relays.push(r.url);
          if (m.time < seen.message.time) seen.message = m;
        }
      }
    }
    // Array.prototype.sort is stable: equal times keep the first relay's order.
    const messages = [...byKey.values()].map(({ message, relays }) => ({ ...message, relays })).sort((a, b) => a.time - b.time);
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
}
