/**
 * The message API of one identity on one relay (docs/PROTOCOL.md §5.1–5.6): count, send (end-to-end
 * encrypted in the glow.ts format, or plain), receive (all pages, decrypted for known guests),
 * delete, messageStatus, getEntropy. Guests (correspondents) are known by their public comm key.
 */
import {
  b64,
  decodeFixed,
  decodeStrict,
  makeNonce,
  MAX_DELETE_ENTRIES,
  MAX_DOWNLOAD_COUNT,
  MAX_FROM_ENTRIES,
  nowSec,
  systemClock,
  type Clock,
  type Crypto,
} from '@zax/protocol';
import { bestCrypto } from './crypto-backend.js';
import { RelayProtocolError, UsageError } from './errors.js';
import { hpkOf, parseKey, type Identity } from './identity.js';
import {
  chunkCount,
  deleteFile,
  downloadFile,
  fileOf,
  fileStatus,
  parseFileMetadata,
  resumeFileUpload,
  sourceSize,
  startFileUpload,
  uploadChunks,
  type FileMetadata,
  type FileSource,
  type FileStatus,
  type FileUpload,
  type ReceivedFile,
  type ReceiveFileOptions,
  type SendFileOptions,
  type SentFile,
} from './files.js';
import { openText, parseFileData, sealText, type EncryptedPayload } from './message.js';
import { expectLines, parseDecimalLine, RelaySession, type CommandBytesResponse, type CommandJson, type CommandResponse, type Line4WithRoom, type RelaySessionOptions } from './relay.js';

/** What the Mailbox needs of a relay session (a RelaySession, or a fake in tests). */
export interface CommandTransport {
  readonly identity: Identity;
  command(json: CommandJson, line4?: string): Promise<CommandResponse>;
  /**
   * Optional (RelaySession has it): a command with line 4 as base64 ASCII bytes and the answer as
   * bytes, read into `into` when it fits. File transfer uses it when present, so a chunk never
   * becomes a string.
   */
  commandBytes?(json: CommandJson, line4?: Uint8Array | Line4WithRoom, into?: Uint8Array): Promise<CommandBytesResponse>;
}

/** A correspondent. */
export interface Guest {
  readonly publicKey: Uint8Array;
  /** b64(publicKey) */
  readonly publicKeyB64: string;
  /** b64(h2(publicKey)): the address their messages come from. */
  readonly hpk: string;
  readonly name?: string;
}

/**
 * A recipient: a public key (string = base64, or bytes), or `{ hpk }` for an address whose key is
 * unknown (plain messages only). A bare string is always a public key, never an hpk: both are
 * 44-char base64, and mixing them up would send mail nobody can read.
 */
export type Recipient = string | Uint8Array | { publicKey: string | Uint8Array } | { hpk: string | Uint8Array };

/** An item of `download` as the relay returns it (docs/PROTOCOL.md §5.3). */
export interface RawMessage {
  data: string;
  time: number;
  /** b64(sender hpk) */
  from: string;
  /** b64(message nonce) */
  nonce: string;
  kind: string;
}

export type ReceiveStatus =
  /** From a known guest, and `text` holds the plaintext. */
  | 'decrypted'
  /** From a known guest, but it does not open (a plain message, or not meant for this key); glow.ts shows `data` as text. */
  | 'undecryptable'
  /** From an hpk that is not a known guest; `data` is as stored. */
  | 'unknown-sender';

export interface ReceivedMessage extends RawMessage {
  status: ReceiveStatus;
  /** The known guest it came from, else null. */
  sender: Guest | null;
  /** Decrypted text (`message`) or decrypted metadata JSON (`file`), else null. */
  text: string | null;
  /** For `file` messages whose data parses: the relay's uploadID. */
  uploadID?: string;
  /** For `file` messages whose metadata opens and parses: the file's name, size, key, … (`receiveFile`). */
  file?: FileMetadata;
}

export interface SendResult {
  /** b64(storage token): ask `messageStatus` with it. */
  token: string;
  /** b64(message nonce) for encrypted messages; null for plain ones (the relay made it). */
  nonce: string | null;
  /** b64(recipient hpk) */
  to: string;
}

export interface MailboxOptions {
  /** @default bestCrypto() */
  crypto?: Crypto;
  /** @default systemClock */
  clock?: Clock;
  /** @default crypto.randomBytes */
  random?: (n: number) => Uint8Array;
  /** Correspondents whose messages `receive` decrypts. */
  guests?: Iterable<string | Uint8Array | { publicKey: string | Uint8Array; name?: string }>;
}

export class Mailbox {
  readonly relay: CommandTransport;
  readonly crypto: Crypto;
  readonly clock: Clock;
  readonly random: (n: number) => Uint8Array;
  private readonly guestsByHpk = new Map<string, Guest>();

  constructor(relay: CommandTransport, options: MailboxOptions = {}) {
    this.relay = relay;
    this.crypto = options.crypto ?? bestCrypto();
    this.clock = options.clock ?? systemClock;
    const crypto = this.crypto;
    this.random = options.random ?? ((n) => crypto.randomBytes(n));
    for (const g of options.guests ?? []) {
      if (typeof g === 'string' || g instanceof Uint8Array) this.addGuest(g);
      else this.addGuest(g.publicKey, g.name);
    }
  }

  /** A Mailbox over a new RelaySession (same crypto, clock and random for both). Does no I/O: the first command handshakes. */
  static create(options: RelaySessionOptions & Pick<MailboxOptions, 'guests'>): Mailbox {
    const { guests, ...relayOptions } = options;
    return new Mailbox(new RelaySession(relayOptions), { crypto: options.crypto, clock: options.clock, random: options.random, guests });
  }

  get identity(): Identity {
    return this.relay.identity;
  }

  /** b64 of this mailbox's hpk. */
  get hpk(): string {
    return b64(this.relay.identity.hpk);
  }

  // ---------- guests ----------

  addGuest(publicKey: string | Uint8Array, name?: string): Guest {
    const pk = parseKey(publicKey);
    const guest: Guest = { publicKey: pk, publicKeyB64: b64(pk), hpk: b64(hpkOf(pk)), ...(name !== undefined ? { name } : {}) };
    this.guestsByHpk.set(guest.hpk, guest);
    return guest;
  }

  removeGuest(publicKey: string | Uint8Array): boolean {
    return this.guestsByHpk.delete(b64(hpkOf(parseKey(publicKey))));
  }

  get guests(): readonly Guest[] {
    return [...this.guestsByHpk.values()];
  }

  guestByHpk(hpk: string): Guest | null {
    return this.guestsByHpk.get(hpk) ?? null;
  }

  // ---------- commands ----------

  /** Live messages in this mailbox (§5.1). */
  async count(): Promise<number> {
    const res = await this.relay.command({ cmd: 'count' });
    expectLines(res.lines, 2, 'count');
    const n = res.open();
    if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw new RelayProtocolError('count: response is not an integer');
    return n;
  }

  /**
   * Sends `text` to a recipient. Encrypted by default, exactly as glow.ts `Mailbox.upload` does for
   * a guest (payload `{nonce, ctext}`, box from our comm key to theirs); `{ encrypt: false }` sends
   * the text as a plain string payload, readable by the relay.
   */
  async send(to: Recipient, text: string, options: { encrypt?: boolean } = {}): Promise<SendResult> {
    const encrypt = options.encrypt ?? true;
    const { publicKey, hpk } = resolveRecipient(to);
    if (!encrypt) return { token: await this.upload(hpk, text), nonce: null, to: hpk };
    if (publicKey === null) throw new UsageError('cannot encrypt to a bare hpk: pass the recipient public key, or { encrypt: false }');
    const nonce = makeNonce(nowSec(this.clock), this.random);
    const payload = sealText(this.crypto, text, nonce, publicKey, this.identity.secretKey);
    return { token: await this.upload(hpk, payload), nonce: payload.nonce, to: hpk };
  }

  /**
   * The raw `upload` command (§5.2): `payload` is stored as `data` if a string, else its `ctext`
   * (with its `nonce` as the message nonce). Returns b64(storage token).
   */
  async upload(toHpk: string | Uint8Array, payload: string | EncryptedPayload | { ctext: string; nonce?: string }): Promise<string> {
    const to = b64(parseKey(toHpk, 'recipient hpk'));
    const res = await this.relay.command({ cmd: 'upload', to, payload });
    const [token] = expectLines(res.lines, 1, 'upload');
    if (decodeFixed(token!, 32) === null) throw new RelayProtocolError('upload: storage token is not base64 of 32 bytes');
    return token!;
  }

  /** One `download` page as the relay returns it (§5.3). */
  async download(options: { start?: number; count?: number; from?: readonly string[] } = {}): Promise<RawMessage[]> {
    const json: CommandJson = { cmd: 'download' };
    if (options.start !== undefined) json.start = options.start;
    if (options.count !== undefined) json.count = options.count;
    if (options.from !== undefined) json.from = options.from;
    const res = await this.relay.command(json);
    expectLines(res.lines, 2, 'download');
    const items = res.open();
    if (!Array.isArray(items)) throw new RelayProtocolError('download: response is not an array');
    return items.map((item, i) => {
      const o = item as Partial<RawMessage> | null;
      if (typeof o !== 'object' || o === null || typeof o.data !== 'string' || typeof o.time !== 'number' || typeof o.from !== 'string' || typeof o.nonce !== 'string' || typeof o.kind !== 'string') {
        throw new RelayProtocolError(`download: item ${i} lacks data/time/from/nonce/kind`);
      }
      return { data: o.data, time: o.time, from: o.from, nonce: o.nonce, kind: o.kind };
    });
  }

  /**
   * Every message in the mailbox, page by page, decrypted where the sender is a known guest.
   * `from` restricts the result to those senders (public keys or `{ hpk }`).
   * Messages deleted or added while paging may be missed or listed once; none is listed twice.
   */
  async receive(options: { from?: readonly Recipient[]; pageSize?: number; maxPages?: number } = {}): Promise<ReceivedMessage[]> {
    const pageSize = options.pageSize ?? MAX_DOWNLOAD_COUNT;
    const maxPages = options.maxPages ?? 1000;
    const fromSet = options.from === undefined ? null : new Set(options.from.map((r) => resolveRecipient(r).hpk));
    if (fromSet !== null && fromSet.size === 0) return [];
    // The relay's `from` filter (DEVIATION D12 of the relay) takes at most 100 hpks; with more, or
    // on a relay that ignores it, the filter below still applies.
    const relayFrom = fromSet !== null && fromSet.size <= MAX_FROM_ENTRIES ? [...fromSet] : undefined;

    const seen = new Set<string>();
    const out: ReceivedMessage[] = [];
    let start = 0;
    for (let page = 0; page < maxPages; page++) {
      const items = await this.download({ start, count: pageSize, ...(relayFrom ? { from: relayFrom } : {}) });
      let fresh = 0;
      for (const item of items) {
        const key = `${item.from}\n${item.nonce}`;
        if (seen.has(key)) continue;
        seen.add(key);
        fresh++;
        if (fromSet === null || fromSet.has(item.from)) out.push(this.openItem(item));
      }
      // An empty page is the last one. A page can be short of `pageSize` and not be the last: a
      // relay may cap an answer by bytes (DEVIATION D19 of the relay). A page with nothing new means
      // the relay ignores `start` (the reference relay ignores paging): stop instead of looping.
      if (items.length === 0 || fresh === 0) break;
      start += items.length;
    }
    return out;
  }

  /** Decrypts one downloaded item if its sender is a known guest (the glow.ts rules). */
  openItem(item: RawMessage): ReceivedMessage {
    const sender = this.guestsByHpk.get(item.from) ?? null;
    if (sender === null) return { ...item, status: 'unknown-sender', sender: null, text: null };
    const sk = this.identity.secretKey;
    if (item.kind === 'file') {
      const file = parseFileData(item.data);
      const text = file === null ? null : openText(this.crypto, file.ctext, file.nonce, sender.publicKey, sk);
      const metadata = parseFileMetadata(text);
      return {
        ...item,
        status: text === null ? 'undecryptable' : 'decrypted',
        sender,
        text,
        ...(file !== null ? { uploadID: file.uploadID } : {}),
        ...(metadata !== null ? { file: metadata } : {}),
      };
    }
    const text = openText(this.crypto, item.data, item.nonce, sender.publicKey, sk);
    return { ...item, status: text === null ? 'undecryptable' : 'decrypted', sender, text };
  }

  /**
   * Deletes messages by nonce (§5.5), in batches of 100; returns the count of live messages left.
   * An empty list just returns the count.
   */
  async delete(nonces: readonly string[]): Promise<number> {
    let remaining: number | null = null;
    for (let i = 0; i === 0 || i < nonces.length; i += MAX_DELETE_ENTRIES) {
      const res = await this.relay.command({ cmd: 'delete', payload: nonces.slice(i, i + MAX_DELETE_ENTRIES) });
      remaining = parseDecimalLine(expectLines(res.lines, 1, 'delete')[0], 'delete');
    }
    return remaining!;
  }

  /**
   * Deletes every message, a page of 100 at a time (each delete moves the next ones to the front).
   * Returns the count left: 0, unless messages keep arriving faster than they are deleted.
   */
  async deleteAll(): Promise<number> {
    let remaining: number | null = null;
    for (;;) {
      const page = await this.download({ count: MAX_DOWNLOAD_COUNT });
      const left = await this.delete(page.map((m) => m.nonce));
      // Stop when empty, or when a round made no progress (a relay that ignores the deletes).
      if (page.length === 0 || left === 0 || (remaining !== null && left >= remaining)) return left;
      remaining = left;
    }
  }

  /** Seconds the message with this storage token still lives, or -2 if it is gone (§5.4). */
  async messageStatus(token: string): Promise<number> {
    const res = await this.relay.command({ cmd: 'messageStatus', token });
    return parseDecimalLine(expectLines(res.lines, 1, 'messageStatus')[0], 'messageStatus');
  }

  /** `size` random bytes from the relay (§5.6; not encrypted, so only as private as TLS). */
  async getEntropy(size: number): Promise<Uint8Array> {
    const res = await this.relay.command({ cmd: 'getEntropy', size });
    const [line] = expectLines(res.lines, 1, 'getEntropy');
    const json = decodeStrict(line!);
    let entropy: unknown;
    try {
      entropy = (JSON.parse(json === null ? '' : new TextDecoder().decode(json)) as { entropy?: unknown }).entropy;
    } catch {
      entropy = undefined;
    }
    const bytes = typeof entropy === 'string' ? decodeStrict(entropy) : null;
    if (bytes === null || bytes.length !== size) throw new RelayProtocolError(`getEntropy: response is not ${size} base64 bytes in {"entropy": …}`);
    return bytes;
  }

  // ---------- files (files.ts) ----------

  /**
   * Sends a file to `to` (a public key) in the glow.ts format (§5.7–5.8): reads `source` chunk by
   * chunk, at most `window` chunks in flight, retrying failed chunks; or resumes `options.resume`.
   * Streams need `options.size`. See files.ts for the options.
   */
  async sendFile(to: Recipient, source: FileSource, options: SendFileOptions = {}): Promise<SentFile> {
    const { publicKey, hpk } = resolveRecipient(to);
    const size = sourceSize(source, options.size ?? options.resume?.size);
    const handleOptions = { ...(options.retry ? { retry: options.retry } : {}), ...(options.signal ? { signal: options.signal } : {}) };
    let upload: FileUpload;
    let chunkSize: number;
    let firstPart = 0;
    if (options.resume !== undefined) {
      const cp = options.resume;
      if (cp.to !== hpk) throw new UsageError('resume: the checkpoint is for another recipient');
      if (size !== cp.size) throw new UsageError(`resume: the checkpoint is for ${cp.size} bytes, the source has ${size}`);
      if (options.chunkSize !== undefined && options.chunkSize !== cp.chunkSize) throw new UsageError('resume: chunkSize must stay that of the checkpoint');
      upload = await resumeFileUpload(this, cp, handleOptions);
      chunkSize = cp.chunkSize;
      firstPart = cp.nextPart;
    } else {
      if (publicKey === null) throw new UsageError('a file is always encrypted: pass the recipient public key, not an hpk');
      if (options.sourceOffset !== undefined && options.sourceOffset !== 0) throw new UsageError('sourceOffset needs resume');
      if (options.chunkSize !== undefined && (!Number.isSafeInteger(options.chunkSize) || options.chunkSize < 1)) throw new UsageError('chunkSize must be a positive integer');
      const ownName = (source as { name?: unknown }).name;
      const name = options.name ?? (typeof ownName === 'string' && ownName !== '' ? ownName : 'file');
      upload = await startFileUpload(this, { publicKey, hpk }, { name, size, ...(options.metadata ? { metadata: options.metadata } : {}) }, handleOptions);
      chunkSize = Math.min(options.chunkSize ?? upload.maxPlainChunk, upload.maxPlainChunk);
    }
    const onCheckpoint = options.onCheckpoint;
    onCheckpoint?.(upload.checkpoint(chunkSize, firstPart));
    await uploadChunks(source, [upload], {
      size,
      chunkSize,
      firstPart,
      ...(options.sourceOffset !== undefined ? { sourceOffset: options.sourceOffset } : {}),
      ...(options.window !== undefined ? { window: options.window } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(onCheckpoint ? { onAcknowledged: (next: number) => onCheckpoint(upload.checkpoint(chunkSize, next)) } : {}),
    });
    return { uploadID: upload.uploadID, token: upload.token, nonce: upload.nonce, to: upload.to, size, chunks: chunkCount(size, chunkSize), name: upload.name };
  }

  /**
   * Downloads a file: `file` is a received `file` message (from a known guest) or `{uploadID,
   * metadata}`. Streams into `options.sink` in order, or returns the bytes. See files.ts.
   */
  async receiveFile(file: ReceivedMessage | { uploadID: string; metadata: FileMetadata }, options: ReceiveFileOptions = {}): Promise<ReceivedFile> {
    const { uploadID, metadata } = fileOf(file);
    return downloadFile(this, uploadID, metadata, options);
  }

  /** `fileStatus` (§5.9): NOT_FOUND for a file unknown to this identity. */
  fileStatus(uploadID: string): Promise<FileStatus> {
    return fileStatus(this, uploadID);
  }

  /** `deleteFile` (§5.11): removes the chunks for both parties; false if the relay does not know it. */
  deleteFile(uploadID: string): Promise<boolean> {
    return deleteFile(this, uploadID);
  }
}

/** A recipient's public key (if known) and b64 hpk. */
export function resolveRecipient(to: Recipient): { publicKey: Uint8Array | null; hpk: string } {
  if (typeof to === 'string' || to instanceof Uint8Array) {
    const pk = parseKey(to, 'recipient public key');
    return { publicKey: pk, hpk: b64(hpkOf(pk)) };
  }
  if ('publicKey' in to) {
    const pk = parseKey(to.publicKey, 'recipient public key');
    return { publicKey: pk, hpk: b64(hpkOf(pk)) };
  }
  return { publicKey: null, hpk: b64(parseKey(to.hpk, 'recipient hpk')) };
}
