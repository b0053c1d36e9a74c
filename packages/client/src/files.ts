/**
 * File transfer in the glow.ts format (docs/PROTOCOL.md §5.7–5.11), so a file sent by either client
 * is received by the other:
 *
 * - metadata `{name, orig_size, md5?, created?, modified?, attrs?, skey}` (skey = b64 of a random
 *   32-byte secretbox key) is boxed to the recipient like a text message and sent as
 *   `startFileUpload {to, file_size: orig_size, metadata: {nonce, ctext}}`;
 * - chunk P is `crypto_secretbox(bytes, n_P, skey)` with a fresh timestamped nonce n_P, sent as
 *   `uploadFileChunk {uploadID, part: P, last_chunk, nonce: b64(n_P)}` with b64(ciphertext) as line 4;
 * - the recipient finds the `file` message, opens the metadata, asks `fileStatus` for the chunk
 *   count and opens each `downloadFileChunk` answer with skey.
 *
 * Layers, so that one source can go through several relays while it is read once:
 * - `startFileUpload(mailbox, to, info, keys?)` / `resumeFileUpload(mailbox, checkpoint)` give a
 *   `FileUpload` handle: `uploadChunk(part, plaintext, last)` encrypts (before it returns: the
 *   caller may reuse the buffer at once) and sends with retries;
 * - `uploadChunks(source, targets, options)` reads the source once, in exact `chunkSize` pieces,
 *   and hands every piece to every target (anything with `uploadChunk`), at most `window` pieces in
 *   flight, the last one only after all others are acknowledged by every target (so COMPLETE means
 *   every part is there); it reports the acknowledged prefix (`onAcknowledged`) for checkpoints;
 * - `Mailbox.sendFile` = start (or resume) + drive with one handle. A multi-relay layer starts one
 *   handle per relay (the same `skey` and metadata nonce may be passed to all) and drives them
 *   together; a target wrapper can decide what a failure of one relay means.
 * - `downloadFile(mailbox, uploadID, metadata, options)` is the receiving side: `window` parts
 *   downloaded ahead, delivered in order to a sink (or gathered into one array).
 *
 * Memory stays bounded by the chunks in flight: a send holds one plaintext assembly buffer, one
 * seal buffer and the encoded ciphertext of at most `window` chunks per target; a receive at most
 * `window` chunks. Over a transport with `commandBytes` (a RelaySession) no chunk becomes a string:
 * each chunk is sealed into the reused seal buffer (`Crypto.secretboxInto`, when the backend has
 * it), base64-encoded into a request buffer reused chunk after chunk, with room before line 4 for
 * the session to write lines 1–3 (so the body is not copied), and answers are decoded from bytes
 * into a reused buffer, so a transfer leaves little garbage for the collector.
 * No Node modules: browsers use this too.
 */
import { b64, base64Length, decodeFixed, decodeStrict, decodeStrictBytes, encodeBase64Into, KEY_BYTES, makeNonce, NONCE_BYTES, nowSec, type Clock, type Crypto } from '@zax/protocol';
import { FileTransferError, RelayHttpError, RelayNetworkError, RelayProtocolError, UsageError } from './errors.js';
import { sealText } from './message.js';
import { expectLines, type CommandJson } from './relay.js';
import type { CommandTransport } from './mailbox.js';

// ---------- types ----------

/**
 * What can be sent: bytes, a Blob (or File), a web ReadableStream, or any async iterable of byte
 * pieces (a Node `Readable` is one). Pieces may have any sizes; they are re-cut into chunks.
 * A source may reuse its buffer once the next piece is asked for: a piece is copied or encrypted
 * before that.
 */
export type FileSource = Uint8Array | Blob | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

/** The decrypted metadata of a file message (glow.ts fields; others are kept as they come). */
export interface FileMetadata {
  name: string;
  orig_size: number;
  md5?: string;
  /** Milliseconds since the epoch, as glow.ts apps write them. */
  created?: number;
  modified?: number;
  attrs?: string;
  /** b64 of the 32-byte secretbox key of the chunks. */
  skey: string;
  [extra: string]: unknown;
}

/** Optional metadata fields a sender adds (besides name, orig_size and skey, which are set). */
export type FileMetadataExtras = Omit<Partial<FileMetadata>, 'name' | 'orig_size' | 'skey'>;

export interface FileProgress {
  /** Plaintext bytes acknowledged (send) or delivered (receive) so far. */
  bytes: number;
  totalBytes: number;
  chunks: number;
  totalChunks: number;
}

/** Retries of one request: exponential backoff with full jitter, `Retry-After` honoured. */
export interface RetryOptions {
  /** Attempts after the first. @default 5 */
  retries?: number;
  /** @default 500 */
  baseDelayMs?: number;
  /** The longest wait; a `Retry-After` above it is not waited for: the error is thrown. @default 30000 */
  maxDelayMs?: number;
}

/**
 * Where an interrupted upload stands; plain JSON, to store and pass back as `resume`.
 * It holds the file key (`skey`): keep it as private as the file.
 */
export interface FileUploadCheckpoint {
  version: 1;
  uploadID: string;
  /** b64 of the chunk key. */
  skey: string;
  /** b64(hpk) of the sender (the mailbox that must resume it) and of the recipient. */
  from: string;
  to: string;
  size: number;
  chunkSize: number;
  totalChunks: number;
  /** The lowest part not acknowledged; every part below it is. */
  nextPart: number;
  /** b64 nonce of the file message (the metadata nonce). */
  nonce: string;
  /** b64 storage token of the file message. */
  token: string;
  name: string;
}

export interface SendFileOptions {
  /** File name in the metadata. @default the File's name, else "file" */
  name?: string;
  /** Byte size: required for streams and iterables (the stream must yield exactly this many bytes). */
  size?: number;
  /** Plaintext bytes per chunk. @default and at most the relay's max_chunk_size − 16 */
  chunkSize?: number;
  /** Chunks in flight. @default 4 */
  window?: number;
  onProgress?: (p: FileProgress) => void;
  retry?: RetryOptions;
  signal?: AbortSignal;
  /** Resume this upload instead of starting one (no startFileUpload). */
  resume?: FileUploadCheckpoint;
  /**
   * With `resume`: the offset in the file of the source's first byte. The bytes from there up to
   * `resume.nextPart × chunkSize` are read and skipped. @default 0 (the source is the whole file)
   */
  sourceOffset?: number;
  /** Called with a new checkpoint whenever the acknowledged prefix advances (and once at start). */
  onCheckpoint?: (cp: FileUploadCheckpoint) => void;
  /** More metadata fields (md5, created, modified, attrs, …). */
  metadata?: FileMetadataExtras;
}

export interface SentFile {
  uploadID: string;
  /** b64 storage token of the file message (`messageStatus`). */
  token: string;
  /** b64 nonce of the file message (`delete` removes it from the recipient's mailbox). */
  nonce: string;
  /** b64(hpk) of the recipient. */
  to: string;
  size: number;
  chunks: number;
  name: string;
}

/** Where received chunks go, in order: a function (awaited) or a web WritableStream (closed at the end, aborted on failure). */
export type FileSink = ((chunk: Uint8Array) => void | Promise<void>) | WritableStream<Uint8Array>;

export interface ReceiveFileOptions {
  sink?: FileSink;
  /** Chunks downloaded ahead (delivered in order). @default 4 */
  window?: number;
  onProgress?: (p: FileProgress) => void;
  retry?: RetryOptions;
  signal?: AbortSignal;
}

export interface ReceivedFile {
  name: string;
  size: number;
  metadata: FileMetadata;
  /** The file, when no sink was given. */
  bytes?: Uint8Array;
}

export type FileUploadStatus = 'START' | 'UPLOADING' | 'COMPLETE' | 'NOT_FOUND';

/** `fileStatus` (§5.9). */
export interface FileStatus {
  status: FileUploadStatus;
  file_size: number;
  bytes_stored: number;
  total_chunks: number;
}

/** What the file functions need of a Mailbox. */
export interface FileContext {
  readonly relay: CommandTransport;
  readonly crypto: Crypto;
  readonly clock: Clock;
  readonly random: (n: number) => Uint8Array;
  /** b64 of the own hpk. */
  readonly hpk: string;
}

/** Anything that takes the chunks of a file (a FileUpload, or a wrapper around several). */
export interface ChunkTarget {
  /** Encrypts/copies `plaintext` before it returns (the buffer is reused), then sends it. */
  uploadChunk(part: number, plaintext: Uint8Array, last: boolean): Promise<void>;
}

// ---------- small helpers ----------

export const DEFAULT_WINDOW = 4;
const BOX_OVERHEAD = 16;
/** Room before line 4 in a chunk's request buffer for lines 1–3 (about 300 bytes for uploadFileChunk). */
const HEAD_ROOM = 512;

/** ⌈size / chunkSize⌉. */
export function chunkCount(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize);
}

function checkCount(value: number, what: string, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) throw new UsageError(`${what} must be an integer ≥ ${min}, got ${String(value)}`);
}

function abortError(signal: AbortSignal): FileTransferError {
  return new FileTransferError('aborted', 'file transfer aborted', { cause: signal.reason });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const onAbort = (): void => {
      clearTimeout(t);
      reject(abortError(signal!));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Whether a failed request may succeed if sent again. */
export function isRetryable(e: unknown): boolean {
  if (e instanceof RelayHttpError) return e.status === 503 || e.status === 429 || e.status === 408 || e.status === 502 || e.status === 504;
  if (e instanceof RelayNetworkError) return e.reason === 'timeout' || e.reason === 'connection-refused' || e.reason === 'other';
  return false;
}

/**
 * Runs `attempt` until it succeeds, retrying what `isRetryable` accepts: after `Retry-After` when
 * the relay sent one, else after a random delay in [0, min(maxDelayMs, baseDelayMs × 2^n)].
 */
export async function withRetry<T>(attempt: () => Promise<T>, retry: RetryOptions = {}, signal?: AbortSignal, random: () => number = Math.random): Promise<T> {
  const retries = retry.retries ?? 5;
  const base = retry.baseDelayMs ?? 500;
  const max = retry.maxDelayMs ?? 30_000;
  for (let n = 0; ; n++) {
    if (signal?.aborted) throw abortError(signal);
    try {
      return await attempt();
    } catch (e) {
      if (n >= retries || !isRetryable(e)) throw e;
      const after = e instanceof RelayHttpError ? e.retryAfter : null;
      let delay: number;
      if (after !== null) {
        delay = after * 1000;
        if (delay > max) throw e;
        delay += random() * Math.min(base, 1000);
      } else {
        delay = random() * Math.min(max, base * 2 ** n);
      }
      await sleep(delay, signal);
    }
  }
}

/** What `openStatus` needs of an answer (a CommandResponse or a CommandBytesResponse). */
interface OpenableAnswer {
  readonly lines: readonly unknown[];
  open(): unknown;
}

function openStatus(res: OpenableAnswer, what: string): Record<string, unknown> {
  const v = expectLines(res.lines, 2, what) && res.open();
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new RelayProtocolError(`${what}: answer is not a JSON object`);
  return v as Record<string, unknown>;
}

/** Parses decrypted file metadata (the text of a `file` message); null when it is not glow.ts file metadata. */
export function parseFileMetadata(text: string | null): FileMetadata | null {
  if (text === null) return null;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if (typeof o.name !== 'string' || typeof o.orig_size !== 'number' || !Number.isSafeInteger(o.orig_size) || o.orig_size < 0) return null;
  if (typeof o.skey !== 'string' || decodeFixed(o.skey, KEY_BYTES) === null) return null;
  return o as FileMetadata;
}

// ---------- fileStatus / deleteFile ----------

export async function fileStatus(ctx: FileContext, uploadID: string, retry?: RetryOptions, signal?: AbortSignal): Promise<FileStatus> {
  const o = await withRetry(async () => openStatus(await ctx.relay.command({ cmd: 'fileStatus', uploadID }), 'fileStatus'), retry, signal);
  const { status, file_size, bytes_stored, total_chunks } = o;
  if (
    (status !== 'START' && status !== 'UPLOADING' && status !== 'COMPLETE' && status !== 'NOT_FOUND') ||
    !Number.isSafeInteger(file_size) ||
    !Number.isSafeInteger(bytes_stored) ||
    !Number.isSafeInteger(total_chunks)
  ) {
    throw new RelayProtocolError('fileStatus: answer lacks status/file_size/bytes_stored/total_chunks');
  }
  return { status, file_size: file_size as number, bytes_stored: bytes_stored as number, total_chunks: total_chunks as number };
}

/** Deletes a file's record and chunks for both parties; false when the relay does not know it. */
export async function deleteFile(ctx: FileContext, uploadID: string): Promise<boolean> {
  const o = openStatus(await ctx.relay.command({ cmd: 'deleteFile', uploadID }), 'deleteFile');
  if (o.status === 'OK') return true;
  if (o.status === 'NOT_FOUND') return false;
  throw new RelayProtocolError('deleteFile: answer is neither OK nor NOT_FOUND');
}

// ---------- sending ----------

export interface FileInfo {
  name: string;
  size: number;
  metadata?: FileMetadataExtras;
}

export interface FileUploadOptions {
  /** The chunk key. @default 32 random bytes */
  skey?: Uint8Array;
  /** The metadata nonce (= the file message nonce). @default a fresh timestamped nonce */
  metadataNonce?: Uint8Array;
  retry?: RetryOptions;
  /** Stops retries (and the driver) when aborted. */
  signal?: AbortSignal;
}

/** One upload on one relay: encrypts chunks under its key and sends them with retries. */
export class FileUpload implements ChunkTarget {
  private constructor(
    private readonly ctx: FileContext,
    readonly uploadID: string,
    readonly skey: Uint8Array,
    /** b64(hpk) of the recipient. */
    readonly to: string,
    readonly size: number,
    readonly name: string,
    /** b64 nonce and storage token of the file message. */
    readonly nonce: string,
    readonly token: string,
    /** The relay's max_chunk_size (ciphertext bytes). */
    readonly maxChunkSize: number,
    private readonly options: Pick<FileUploadOptions, 'retry' | 'signal'>,
  ) {}

  /** Request buffers (room for lines 1–3, then base64 of a whole chunk) of finished requests, for the next chunks. */
  private readonly idle: Uint8Array[] = [];
  /** Where each chunk is sealed (largest chunk + 32: no backend allocates), until it is encoded. */
  private sealed: Uint8Array | null = null;

  /** Largest plaintext chunk. */
  get maxPlainChunk(): number {
    return this.maxChunkSize - BOX_OVERHEAD;
  }

  /** @internal */
  static create(ctx: FileContext, f: { uploadID: string; skey: Uint8Array; to: string; size: number; name: string; nonce: string; token: string; maxChunkSize: number }, options: FileUploadOptions): FileUpload {
    return new FileUpload(ctx, f.uploadID, f.skey, f.to, f.size, f.name, f.nonce, f.token, f.maxChunkSize, options);
  }

  uploadChunk(part: number, plaintext: Uint8Array, last: boolean): Promise<void> {
    const { crypto, clock, random } = this.ctx;
    if (plaintext.length > this.maxPlainChunk) return Promise.reject(new UsageError(`chunk of ${plaintext.length} bytes is above the relay's limit of ${this.maxPlainChunk}`));
    const nonce = makeNonce(nowSec(clock), random);
    // Sealed into one reused buffer when the backend can: it is base64-encoded before this returns.
    const ctext = crypto.secretboxInto !== undefined ? crypto.secretboxInto((this.sealed ??= new Uint8Array(this.maxChunkSize + BOX_OVERHEAD)), plaintext, nonce, this.skey) : crypto.boxAfter(plaintext, nonce, this.skey);
    // Sent again as is on a retry: the same part under the same nonce replaces itself.
    const json: CommandJson = { cmd: 'uploadFileChunk', uploadID: this.uploadID, part, last_chunk: last, nonce: b64(nonce) };
    const relay = this.ctx.relay;
    if (relay.commandBytes === undefined) {
      const line4 = b64(ctext);
      return this.send(() => relay.command(json, line4));
    }
    const commandBytes = relay.commandBytes.bind(relay);
    // Line 4 after HEAD_ROOM free bytes: the session writes lines 1–3 there (no body copy).
    const buffer = this.takeBuffer(HEAD_ROOM + base64Length(ctext.length));
    const line4 = { buffer: buffer.subarray(0, HEAD_ROOM + encodeBase64Into(ctext, buffer.subarray(HEAD_ROOM))), start: HEAD_ROOM };
    // Reused only after a success: after a failure (a timeout, say) the transport might still hold it.
    return this.send(() => commandBytes(json, line4)).then(() => void this.idle.push(buffer));
  }

  private send(attempt: () => Promise<OpenableAnswer>): Promise<void> {
    return withRetry(
      async () => {
        const o = openStatus(await attempt(), 'uploadFileChunk');
        if (o.status === 'NOT_FOUND') throw new FileTransferError('not-found', `upload ${this.uploadID} is not on the relay (deleted or expired)`);
        if (o.status !== 'OK') throw new RelayProtocolError('uploadFileChunk: answer is not {"status":"OK"}');
      },
      this.options.retry,
      this.options.signal,
    );
  }

  /** An idle request buffer of at least `length` bytes, else a new one for the largest chunk. */
  private takeBuffer(length: number): Uint8Array {
    const b = this.idle.pop();
    return b !== undefined && b.length >= length ? b : new Uint8Array(Math.max(length, HEAD_ROOM + base64Length(this.maxChunkSize)));
  }

  /** The checkpoint of this upload with every part below `nextPart` acknowledged. */
  checkpoint(chunkSize: number, nextPart: number): FileUploadCheckpoint {
    return {
      version: 1,
      uploadID: this.uploadID,
      skey: b64(this.skey),
      from: this.ctx.hpk,
      to: this.to,
      size: this.size,
      chunkSize,
      totalChunks: chunkCount(this.size, chunkSize),
      nextPart,
      nonce: this.nonce,
      token: this.token,
      name: this.name,
    };
  }
}

/**
 * `startFileUpload` (§5.7): boxes the metadata to `to` (a public key: the file is encrypted) and
 * asks the relay for an upload. Retried like a chunk; a retry sends the identical command, which
 * the relay treats as the same upload.
 */
export async function startFileUpload(ctx: FileContext, to: { publicKey: Uint8Array; hpk: string }, info: FileInfo, options: FileUploadOptions = {}): Promise<FileUpload> {
  checkCount(info.size, 'file size', 1);
  const { crypto, clock, random } = ctx;
  const skey = options.skey ?? random(KEY_BYTES);
  if (skey.length !== KEY_BYTES) throw new UsageError(`skey must have ${KEY_BYTES} bytes`);
  const nonce = options.metadataNonce ?? makeNonce(nowSec(clock), random);
  if (nonce.length !== NONCE_BYTES) throw new UsageError(`metadataNonce must have ${NONCE_BYTES} bytes`);
  const metadata: FileMetadata = { ...(info.metadata ?? {}), name: info.name, orig_size: info.size, skey: b64(skey) };
  const boxed = sealText(crypto, JSON.stringify(metadata), nonce, to.publicKey, ctx.relay.identity.secretKey);
  const json: CommandJson = { cmd: 'startFileUpload', to: to.hpk, file_size: info.size, metadata: boxed };
  const o = await withRetry(async () => openStatus(await ctx.relay.command(json), 'startFileUpload'), options.retry, options.signal);
  const { uploadID, max_chunk_size: max, storage_token: token } = o;
  if (typeof uploadID !== 'string' || decodeFixed(uploadID, KEY_BYTES) === null || typeof token !== 'string' || typeof max !== 'number' || !Number.isSafeInteger(max) || max <= BOX_OVERHEAD) {
    throw new RelayProtocolError('startFileUpload: answer lacks uploadID/max_chunk_size/storage_token');
  }
  return FileUpload.create(ctx, { uploadID, skey, to: to.hpk, size: info.size, name: info.name, nonce: boxed.nonce, token, maxChunkSize: max }, options);
}

/** Checks a checkpoint's shape; throws UsageError naming the bad field. */
export function parseCheckpoint(cp: unknown): FileUploadCheckpoint {
  if (typeof cp !== 'object' || cp === null) throw new UsageError('checkpoint is not an object');
  const o = cp as Record<string, unknown>;
  if (o.version !== 1) throw new UsageError('checkpoint: unsupported version');
  for (const k of ['uploadID', 'skey', 'from', 'to', 'nonce', 'token', 'name'] as const) if (typeof o[k] !== 'string') throw new UsageError(`checkpoint: "${k}" missing`);
  for (const k of ['size', 'chunkSize', 'totalChunks', 'nextPart'] as const) if (!Number.isSafeInteger(o[k]) || (o[k] as number) < 0) throw new UsageError(`checkpoint: "${k}" is not a count`);
  const c = o as unknown as FileUploadCheckpoint;
  if (decodeFixed(c.skey, KEY_BYTES) === null) throw new UsageError('checkpoint: "skey" is not 32 bytes of base64');
  if (c.size < 1 || c.chunkSize < 1 || c.totalChunks !== chunkCount(c.size, c.chunkSize) || c.nextPart > c.totalChunks) throw new UsageError('checkpoint: size, chunkSize, totalChunks and nextPart do not agree');
  return c;
}

/**
 * A handle on an upload interrupted earlier, after `fileStatus` says the relay still has it
 * (FileTransferError `not-found` otherwise). No startFileUpload is sent.
 */
export async function resumeFileUpload(ctx: FileContext, checkpoint: FileUploadCheckpoint, options: Pick<FileUploadOptions, 'retry' | 'signal'> = {}): Promise<FileUpload> {
  const cp = parseCheckpoint(checkpoint);
  if (cp.from !== ctx.hpk) throw new UsageError('checkpoint: the upload was started by another identity');
  const st = await fileStatus(ctx, cp.uploadID, options.retry, options.signal);
  if (st.status === 'NOT_FOUND') throw new FileTransferError('not-found', `upload ${cp.uploadID} is no longer on the relay (deleted or expired): start again`);
  if (st.file_size !== cp.size) throw new FileTransferError('size', `upload ${cp.uploadID} has file_size ${st.file_size} on the relay, the checkpoint says ${cp.size}`);
  // The relay's max_chunk_size is not known without startFileUpload: the checkpoint's chunks fitted.
  return FileUpload.create(ctx, { uploadID: cp.uploadID, skey: decodeFixed(cp.skey, KEY_BYTES)!, to: cp.to, size: cp.size, name: cp.name, nonce: cp.nonce, token: cp.token, maxChunkSize: cp.chunkSize + BOX_OVERHEAD }, options);
}

// ---------- reading a source in chunks ----------

function isReadableStream(s: FileSource): s is ReadableStream<Uint8Array> {
  return typeof (s as Partial<ReadableStream<Uint8Array>>).getReader === 'function';
}

function isBlob(s: FileSource): s is Blob {
  return typeof Blob !== 'undefined' && s instanceof Blob;
}

/** The byte size of a source: its own size for bytes and Blobs (`declared` must then agree), else `declared`. */
export function sourceSize(source: FileSource, declared: number | undefined): number {
  const own = source instanceof Uint8Array ? source.length : isBlob(source) ? source.size : undefined;
  if (own !== undefined) {
    if (declared !== undefined && declared !== own) throw new UsageError(`size ${declared} differs from the source's ${own} bytes`);
    return own;
  }
  if (declared === undefined) throw new UsageError('a stream source needs options.size (its byte count)');
  checkCount(declared, 'size', 0);
  return declared;
}

async function* pieces(source: FileSource): AsyncGenerator<Uint8Array, void, undefined> {
  if (isReadableStream(source)) {
    const reader = source.getReader();
    let finished = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          finished = true;
          return;
        }
        yield value;
      }
    } finally {
      if (!finished) await reader.cancel().catch(() => undefined);
      reader.releaseLock();
    }
  }
  if (isBlob(source)) return yield* pieces(source.stream());
  if (source instanceof Uint8Array) {
    yield source;
    return;
  }
  yield* source;
}

/**
 * Yields `[part, bytes]` for the parts from `firstPart`, cut at multiples of `chunkSize` of a file
 * of `size` bytes whose first `offset` bytes the source does not have. A yielded buffer may be
 * reused for the next part: use it before asking for the next. A source piece is used up (copied,
 * or yielded and so used by the caller) before the next piece is read, so sources may reuse theirs. Throws FileTransferError `size` if
 * the source holds more or fewer bytes than `size − offset`; the last part is only yielded once
 * the source is known to end there.
 */
export async function* readChunks(source: FileSource, size: number, chunkSize: number, firstPart = 0, offset = 0): AsyncGenerator<[number, Uint8Array], void, undefined> {
  checkCount(chunkSize, 'chunkSize', 1);
  const total = chunkCount(size, chunkSize);
  const start = firstPart * chunkSize;
  if (offset > start) throw new UsageError(`the source starts at byte ${offset}, after the first byte to send (${start})`);
  if (firstPart >= total) return;
  let skip = start - offset;
  if (source instanceof Uint8Array) {
    if (source.length !== size - offset) throw new FileTransferError('size', `the source has ${source.length} bytes, ${size - offset} expected`);
    for (let p = firstPart; p < total; p++) yield [p, source.subarray(p * chunkSize - offset, Math.min(size, (p + 1) * chunkSize) - offset)];
    return;
  }
  if (isBlob(source) && skip > 0) {
    if (source.size !== size - offset) throw new FileTransferError('size', `the source has ${source.size} bytes, ${size - offset} expected`);
    source = source.slice(skip);
    skip = 0;
  }
  const it = pieces(source)[Symbol.asyncIterator]();
  let part = firstPart;
  const want = (p: number): number => Math.min(chunkSize, size - p * chunkSize);
  let buf: Uint8Array | null = null;
  let fill = 0;
  let seen = offset;
  const tooLong = (): FileTransferError => new FileTransferError('size', `the source has more than the ${size} bytes declared`);
  try {
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      let piece = r.value;
      if (!(piece instanceof Uint8Array)) throw new UsageError('the source yielded something that is not a Uint8Array (a stream in text mode?)');
      seen += piece.length;
      if (seen > size) throw tooLong();
      if (skip > 0) {
        const s = Math.min(skip, piece.length);
        skip -= s;
        piece = piece.subarray(s);
      }
      while (piece.length > 0) {
        const need = want(part);
        // A whole chunk in one piece: no copy.
        if (fill === 0 && piece.length >= need && part < total - 1) {
          yield [part++, piece.subarray(0, need)];
          piece = piece.subarray(need);
          continue;
        }
        buf ??= new Uint8Array(chunkSize);
        const n = Math.min(need - fill, piece.length);
        buf.set(piece.subarray(0, n), fill);
        fill += n;
        piece = piece.subarray(n);
        if (fill === need) {
          if (part === total - 1) {
            // Make sure the source ends here before the last part goes out.
            for (;;) {
              const extra = await it.next();
              if (extra.done) break;
              if (extra.value.length > 0) throw tooLong();
            }
            yield [part, buf.subarray(0, need)];
            return;
          }
          yield [part++, buf.subarray(0, need)];
          fill = 0;
        }
      }
    }
  } finally {
    await it.return?.();
  }
  throw new FileTransferError('size', `the source ended after ${seen} bytes, ${size} declared`);
}

// ---------- the driver ----------

export interface UploadChunksOptions {
  size: number;
  chunkSize: number;
  /** The first part to send (resume). @default 0 */
  firstPart?: number;
  /** Offset in the file of the source's first byte. @default 0 */
  sourceOffset?: number;
  /** Chunks in flight. @default 4 */
  window?: number;
  signal?: AbortSignal;
  onProgress?: (p: FileProgress) => void;
  /** Called with the new lowest unacknowledged part whenever the acknowledged prefix advances. */
  onAcknowledged?: (nextPart: number) => void;
}

/**
 * Reads `source` once and uploads each chunk through every target, at most `window` chunks in
 * flight; a chunk counts as acknowledged when every target has it. The last chunk goes out after
 * all others are acknowledged. On a failure (or abort) no new chunk is sent, the chunks in flight
 * settle, and the first error is thrown.
 */
export async function uploadChunks(source: FileSource, targets: readonly ChunkTarget[], options: UploadChunksOptions): Promise<void> {
  const { size, chunkSize, signal } = options;
  const firstPart = options.firstPart ?? 0;
  const window = options.window ?? DEFAULT_WINDOW;
  checkCount(window, 'window', 1);
  checkCount(firstPart, 'firstPart', 0);
  if (targets.length === 0) throw new UsageError('no upload targets');
  const total = chunkCount(size, chunkSize);
  let nextPart = firstPart;
  const acked = new Set<number>();
  let ackedBytes = Math.min(size, firstPart * chunkSize);
  let ackedChunks = firstPart;
  const inflight = new Set<Promise<void>>();
  let failure: { error: unknown } | null = null;

  const onAck = (part: number, bytes: number): void => {
    ackedBytes += bytes;
    ackedChunks++;
    acked.add(part);
    const before = nextPart;
    while (acked.delete(nextPart)) nextPart++;
    options.onProgress?.({ bytes: ackedBytes, totalBytes: size, chunks: ackedChunks, totalChunks: total });
    if (nextPart !== before) options.onAcknowledged?.(nextPart);
  };
  const waitFor = async (limit: number): Promise<void> => {
    while (inflight.size > limit) await Promise.race(inflight);
  };

  const chunks = readChunks(source, size, chunkSize, firstPart, options.sourceOffset ?? 0);
  try {
    for (;;) {
      await waitFor(window - 1);
      if (failure !== null) break;
      if (signal?.aborted) {
        failure = { error: abortError(signal) };
        break;
      }
      const r = await chunks.next();
      if (r.done) break;
      const [part, bytes] = r.value;
      const last = part === total - 1;
      // `bytes` may be reused by the reader: every target encrypts it before uploadChunk returns.
      const sends = targets.map((t) => t.uploadChunk(part, bytes, last));
      const length = bytes.length;
      const p: Promise<void> = Promise.all(sends).then(
        () => onAck(part, length),
        (e: unknown) => {
          failure ??= { error: e };
        },
      );
      const tracked = p.finally(() => inflight.delete(tracked));
      inflight.add(tracked);
      // The last part waits for every other (so COMPLETE means all parts are stored).
      if (part === total - 2) await waitFor(0);
    }
  } catch (e) {
    failure ??= { error: e };
  } finally {
    await waitFor(0);
    await chunks.return();
  }
  if (failure !== null) throw failure.error;
}

// ---------- receiving ----------

/**
 * Buffers reused by the downloads of one file (over a transport with `commandBytes`): `bytes` to
 * decode a chunk's ciphertext into, held only while it is opened, and `answers`, idle buffers to
 * read answers into, one taken per request and given back once its chunk is opened.
 */
export interface ChunkScratch {
  bytes: Uint8Array;
  answers?: Uint8Array[];
}

/**
 * Downloads part `part` and opens it with `skey` (§5.10). With `scratch` (over a transport with
 * `commandBytes`) the answer and the ciphertext go into its reused buffers.
 */
export async function downloadChunk(ctx: FileContext, uploadID: string, part: number, skey: Uint8Array, retry?: RetryOptions, signal?: AbortSignal, scratch?: ChunkScratch): Promise<Uint8Array> {
  const json: CommandJson = { cmd: 'downloadFileChunk', uploadID, part };
  const relay = ctx.relay;
  let res: OpenableAnswer;
  let decodeChunk: () => Uint8Array | null;
  if (relay.commandBytes === undefined) {
    const r = await withRetry(() => relay.command(json), retry, signal);
    res = r;
    decodeChunk = () => decodeStrict(r.lines[2]!);
  } else {
    const commandBytes = relay.commandBytes.bind(relay);
    const into = scratch?.answers?.pop();
    const r = await withRetry(() => commandBytes(json, undefined, into), retry, signal).catch((e: unknown) => {
      if (into !== undefined) scratch!.answers!.push(into);
      throw e;
    });
    res = r;
    decodeChunk = () => {
      const line = r.lines[2]!;
      const need = (line.length >>> 2) * 3;
      if (scratch !== undefined && scratch.bytes.length < need) scratch.bytes = new Uint8Array(need);
      const ctext = decodeStrictBytes(line, scratch?.bytes);
      // The answer is done with: its buffer (`into`, or the larger one it was read into) goes back.
      scratch?.answers?.push(new Uint8Array(r.body.buffer, 0, r.body.buffer.byteLength));
      return ctext;
    };
  }
  if (res.lines.length === 2) {
    const o = openStatus(res, 'downloadFileChunk');
    if (o.status === 'NOT_FOUND') throw new FileTransferError('not-found', `upload ${uploadID} is not on the relay (deleted or expired)`);
    throw new RelayProtocolError('downloadFileChunk: a 2-line answer that is not NOT_FOUND');
  }
  expectLines(res.lines, 3, 'downloadFileChunk');
  const head = res.open() as { nonce?: unknown } | null;
  const nonce = typeof head === 'object' && head !== null && typeof head.nonce === 'string' ? decodeFixed(head.nonce, NONCE_BYTES) : null;
  if (nonce === null) throw new RelayProtocolError('downloadFileChunk: answer lacks the chunk nonce');
  // Decoded and opened with no await between: a scratch buffer shared by concurrent downloads is safe.
  const ctext = decodeChunk();
  if (ctext === null) throw new RelayProtocolError('downloadFileChunk: chunk line is not base64');
  const plain = ctx.crypto.boxOpenAfter(ctext, nonce, skey);
  if (plain === null) throw new FileTransferError('corrupt', `part ${part} of upload ${uploadID} does not open under the file key`);
  return plain;
}

/** Resolves a sink into a write function and its end/abort (a WritableStream is locked to it). */
export function sinkWriter(sink: FileSink): { write(c: Uint8Array): Promise<void>; close(): Promise<void>; abort(e: unknown): Promise<void> } {
  if (typeof sink === 'function') return { write: async (c) => sink(c), close: async () => undefined, abort: async () => undefined };
  const w = sink.getWriter();
  return {
    write: async (c) => {
      await w.ready;
      await w.write(c);
    },
    close: async () => {
      await w.close();
    },
    abort: async (e) => {
      await w.abort(e).catch(() => undefined);
    },
  };
}

/**
 * Downloads an upload the relay reports COMPLETE: parts 0..total_chunks−1, `window` ahead,
 * delivered in order to `options.sink` (or gathered and returned as `bytes`). Fails with
 * FileTransferError `not-found`, `incomplete`, `corrupt` or `size` (the total is not `orig_size`).
 */
export async function downloadFile(ctx: FileContext, uploadID: string, metadata: FileMetadata, options: ReceiveFileOptions = {}): Promise<ReceivedFile> {
  const { retry, signal } = options;
  const window = options.window ?? DEFAULT_WINDOW;
  checkCount(window, 'window', 1);
  const skey = decodeFixed(metadata.skey, KEY_BYTES);
  if (skey === null) throw new FileTransferError('corrupt', 'file metadata: skey is not 32 bytes of base64');
  const size = metadata.orig_size;
  const st = await fileStatus(ctx, uploadID, retry, signal);
  if (st.status === 'NOT_FOUND') throw new FileTransferError('not-found', `upload ${uploadID} is not on the relay (deleted or expired)`);
  if (st.status !== 'COMPLETE') throw new FileTransferError('incomplete', `upload ${uploadID} is ${st.status}, not COMPLETE: the sender has not finished`);
  if (st.file_size !== size) throw new FileTransferError('size', `upload ${uploadID}: the relay has file_size ${st.file_size}, the metadata orig_size ${size}`);
  const total = st.total_chunks;
  const bytes = options.sink === undefined ? new Uint8Array(size) : null;
  const writer = options.sink === undefined ? null : sinkWriter(options.sink);
  const ahead: Promise<Uint8Array>[] = [];
  let requested = 0;
  let received = 0;
  const scratch: ChunkScratch = { bytes: new Uint8Array(0), answers: [] };
  const fetchNext = (): void => {
    const p = downloadChunk(ctx, uploadID, requested++, skey, retry, signal, scratch);
    p.catch(() => undefined); // handled when its turn comes
    ahead.push(p);
  };
  try {
    for (let part = 0; part < total; part++) {
      while (requested < total && ahead.length < window) fetchNext();
      if (signal?.aborted) throw abortError(signal);
      const chunk = await ahead.shift()!;
      if (received + chunk.length > size) throw new FileTransferError('size', `upload ${uploadID} holds more than the ${size} bytes of its metadata`);
      if (bytes !== null) bytes.set(chunk, received);
      else await writer!.write(chunk);
      received += chunk.length;
      options.onProgress?.({ bytes: received, totalBytes: size, chunks: part + 1, totalChunks: total });
    }
    if (received !== size) throw new FileTransferError('size', `upload ${uploadID} holds ${received} bytes, its metadata says ${size}`);
    await writer?.close();
  } catch (e) {
    await Promise.allSettled(ahead);
    await writer?.abort(e);
    throw e;
  }
  return { name: metadata.name, size, metadata, ...(bytes !== null ? { bytes } : {}) };
}

/** The uploadID and metadata of a received `file` message; FileTransferError `corrupt` if it has none. */
export function fileOf(file: { kind?: string; uploadID?: string; text?: string | null; file?: FileMetadata | null } | { uploadID: string; metadata: FileMetadata }): { uploadID: string; metadata: FileMetadata } {
  if ('metadata' in file) return { uploadID: file.uploadID, metadata: file.metadata };
  if (file.kind !== undefined && file.kind !== 'file') throw new UsageError(`not a file message (kind ${file.kind})`);
  const metadata = file.file ?? parseFileMetadata(file.text ?? null);
  if (file.uploadID === undefined || metadata === null) throw new FileTransferError('corrupt', 'not a readable file message (unknown sender, or metadata that does not open)');
  return { uploadID: file.uploadID, metadata };
}
