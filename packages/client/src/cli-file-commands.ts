/**
 * The file commands of the `zax` CLI: send-file (through one relay, with checkpoints and --resume,
 * or through several), files and receive-file. Their help texts and options are rows of `COMMANDS`
 * in cli-app.ts; local file handling (safe names, downloads, checkpoints) is in cli-files.ts.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, realpath, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadContacts } from './contacts-file.js';
import {
  contactsPath,
  identityPath,
  interruptible,
  openMailbox,
  openMulti,
  openReader,
  relayError,
  relays,
  resolvePeer,
  sanitizeForTerminal,
  usage,
  warnFailures,
  type Context,
  type Peer,
  type Relays,
} from './cli-context.js';
import { EXIT_OK, Interrupted } from './cli-errors.js';
import { listUploadStates, pendingFile, removeUploadState, safeFileName, saveUploadState, uploadsDirFor, type PendingFile, type UploadState } from './cli-files.js';
import { FileTransferError, ZaxClientError } from './errors.js';
import type { FileMetadata, FileUploadCheckpoint, SentFile } from './files.js';
import type { ReceivedMessage } from './mailbox.js';
import { createProgress, formatBytes, type TransferProgress } from './progress.js';
import { isRelayFailure, type MultiReceivedMessage } from './relays.js';

/** A whole number of bytes from an option, in [min, max]. */
function bytesOption(c: Context, flag: string, value: string, min: number, max: number): number {
  const n = /^\d{1,12}$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) throw usage(c, `${flag}: expected a whole number of bytes from ${min} to ${max}, got "${value}"`);
  return n;
}

/** An argument quoted for a POSIX shell when it needs it. */
const shellQuote = (s: string): string => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

const errnoCode = (e: unknown): string => {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? code : e instanceof Error ? e.message : String(e);
};

/** Writes bytes to the CLI's stdout, waiting for 'drain' when it says to. */
async function writeStdout(c: Context, chunk: Uint8Array): Promise<void> {
  const out = c.io.stdout;
  if (out.write(chunk) === false && out.once !== undefined) await new Promise<void>((res) => out.once!('drain', res));
}

export async function sendFileCommand(c: Context): Promise<number> {
  const { v } = c;
  if (v.to === undefined) throw usage(c, '--to WHO is required (a contact name or a public key)');
  const to = resolvePeer(c, await loadContacts(contactsPath(c)), v.to, '--to');
  if (c.positionals.length !== 1) throw usage(c, c.positionals.length === 0 ? 'FILE is required' : 'give one FILE');
  const r = relays(c);
  if (r.multi && v.resume) throw usage(c, '--resume works with one relay: an upload through several relays is not resumed (send the file again)');
  const relay = r.urls[0]!;
  if (v.resume && (v.name !== undefined || v['chunk-size'] !== undefined)) {
    throw usage(c, '--resume keeps the name and chunk size the upload started with: leave out --name and --chunk-size');
  }
  if (v.name !== undefined && v.name.trim() === '') throw usage(c, '--name: the name is empty');
  const chunkSize = v['chunk-size'] === undefined ? undefined : bytesOption(c, '--chunk-size', v['chunk-size'], 1, 64 * 1024 * 1024);
  const given = c.positionals[0]!;
  let file: string;
  let size: number;
  let mtimeMs: number;
  try {
    file = await realpath(resolve(given));
    const st = await stat(file);
    if (!st.isFile()) throw new ZaxClientError(`${given} is not a regular file`);
    size = st.size;
    mtimeMs = st.mtimeMs;
  } catch (e) {
    if (e instanceof ZaxClientError) throw e;
    throw new ZaxClientError(`cannot read ${given} (${errnoCode(e)})`);
  }

  const { signal, dispose } = interruptible(c);
  try {
    if (r.multi) return await sendFileMulti(c, r, to, { file, size, name: v.name ?? basenameOf(file), chunkSize, signal });
    const mailbox = await openMailbox(c, relay, { signal });
    const dir = uploadsDirFor(identityPath(c));
    const mine = (await listUploadStates(dir)).filter(({ state }) => state.file === file && state.recipient === to.publicKeyB64 && state.checkpoint.from === mailbox.hpk);
    const who = to.contact ?? to.publicKeyB64;
    let resume: UploadState | undefined;
    let statePath: string | null = null;
    if (v.resume) {
      if (mine.length === 0) throw new ZaxClientError(`no interrupted upload of ${file} to ${who} to resume (checkpoints are kept in ${dir}): send it without --resume`);
      const found = mine.find(({ state }) => state.relay === relay);
      if (found === undefined) throw usage(c, `the interrupted upload of ${file} to ${who} went through ${mine[0]!.state.relay}: resume it with --relay ${mine[0]!.state.relay}`);
      if (found.state.size !== size || found.state.mtimeMs !== mtimeMs) {
        throw new ZaxClientError(`${file} has changed since its upload started (size or modification time): send it again without --resume`);
      }
      resume = found.state;
      statePath = found.path;
    } else if (mine.length > 0) {
      c.out.warn(`an interrupted upload of this file to ${who} can be continued with --resume; this starts a new upload`);
    }

    const resumeCommand = [
      'zax send-file --resume',
      `--relay ${shellQuote(relay)}`,
      `--to ${shellQuote(v.to)}`,
      ...(v.id !== undefined ? [`--id ${shellQuote(v.id)}`] : []),
      ...(v.ca !== undefined ? [`--ca ${shellQuote(v.ca)}`] : []),
      shellQuote(given),
    ].join(' ');
    const startOffset = resume === undefined ? 0 : Math.min(size, resume.checkpoint.nextPart * resume.checkpoint.chunkSize);
    let current: FileUploadCheckpoint | null = resume?.checkpoint ?? null;
    let saveFailed = false;
    const onCheckpoint = (cp: FileUploadCheckpoint): void => {
      current = cp;
      try {
        statePath = saveUploadState(dir, { type: 'zax-upload', version: 1, file, size, mtimeMs, relay, recipient: to.publicKeyB64, checkpoint: cp });
      } catch (e) {
        if (!saveFailed) c.out.warn(`cannot write the upload checkpoint in ${dir} (${errnoCode(e)}): if interrupted, this upload cannot be resumed`);
        saveFailed = true;
      }
    };
    const progress = createProgress({ stream: c.io.stderr, direction: 'send', json: c.out.json, startBytes: startOffset });
    const source = createReadStream(file, { start: startOffset, highWaterMark: 256 * 1024 });
    let sent: SentFile;
    try {
      sent = await mailbox.sendFile(to.publicKey, source, {
        size,
        name: v.name ?? basenameOf(file),
        ...(chunkSize !== undefined ? { chunkSize } : {}),
        signal,
        onProgress: (p) => progress.update(p),
        onCheckpoint,
        ...(resume !== undefined ? { resume: resume.checkpoint, sourceOffset: startOffset } : {}),
      });
    } catch (e) {
      progress.fail();
      source.destroy();
      const cp = current as FileUploadCheckpoint | null;
      const done = cp === null ? 0 : Math.min(size, cp.nextPart * cp.chunkSize);
      if (signal.aborted) {
        if (cp === null || statePath === null) throw new Interrupted('upload interrupted before it started: nothing to resume');
        throw new Interrupted(`upload interrupted: ${formatBytes(done)} of ${formatBytes(size)} acknowledged by the relay. To continue it: ${resumeCommand}`, resumeCommand);
      }
      if (e instanceof FileTransferError && e.code === 'not-found' && statePath !== null) {
        await removeUploadState(statePath);
        throw new ZaxClientError(`${e.message}; its checkpoint is removed: send the file again without --resume`);
      }
      if (cp !== null && statePath !== null) {
        c.out.warn(`the upload stopped after ${formatBytes(done)} of ${formatBytes(size)}; to continue it: ${resumeCommand}`, { resume: resumeCommand });
      }
      throw e;
    }
    progress.done();
    // Delivered: this checkpoint, and those of earlier attempts at the same file for the same recipient, are done with.
    for (const p of new Set([...(statePath !== null ? [statePath] : []), ...mine.map((m) => m.path)])) await removeUploadState(p);
    c.out.result(`uploadID: ${sent.uploadID}\nnonce:    ${sent.nonce}\ntoken:    ${sent.token}\n`, sentFileJson(sent, to, { uploadID: sent.uploadID, token: sent.token, resumedFrom: startOffset }));
    return EXIT_OK;
  } finally {
    dispose();
  }
}

/** send-file through several relays (MultiMailbox.sendFile): no checkpoint, an interrupted send starts again. */
async function sendFileMulti(c: Context, r: Relays, to: Peer, f: { file: string; size: number; name: string; chunkSize: number | undefined; signal: AbortSignal }): Promise<number> {
  const multi = await openMulti(c, r, { signal: f.signal });
  const progress = createProgress({ stream: c.io.stderr, direction: 'send', json: c.out.json });
  const source = createReadStream(f.file, { highWaterMark: 256 * 1024 });
  let sent;
  try {
    sent = await multi.sendFile(to.publicKey, source, {
      size: f.size,
      name: f.name,
      ...(f.chunkSize !== undefined ? { chunkSize: f.chunkSize } : {}),
      signal: f.signal,
      onProgress: (p) => progress.update(p),
    });
  } catch (e) {
    progress.fail();
    source.destroy();
    if (f.signal.aborted) throw new Interrupted('upload interrupted (uploads through several relays are not resumed: send the file again)');
    throw e;
  }
  progress.done();
  warnFailures(c, sent.failures, 'sendFile');
  const ok = sent.relays.filter((o): o is { url: string; uploadID: string; token: string } => !isRelayFailure(o));
  const first = ok[0]!;
  const outcomes = sent.relays.map((o) =>
    isRelayFailure(o) ? { url: o.url, error: relayError(c, o.error), ...(o.uploadID !== undefined ? { uploadID: o.uploadID } : {}) } : { url: o.url, uploadID: o.uploadID, token: o.token },
  );
  c.out.result(
    `${ok.map((o) => `uploadID: ${o.uploadID}  (${o.url})\n`).join('')}nonce:    ${sent.nonce}\ntoken:    ${first.token}\n`,
    sentFileJson(sent, to, { uploadID: first.uploadID, token: first.token, resumedFrom: 0, relays: outcomes }),
  );
  return EXIT_OK;
}

/** The `send-file --json` document: the upload (the first relay's, with several) and the file. */
function sentFileJson(
  sent: { nonce: string; to: string; name: string; size: number; chunks: number },
  to: Peer,
  upload: { uploadID: string; token: string; resumedFrom: number; relays?: unknown },
): Record<string, unknown> {
  const { relays, ...first } = upload;
  return {
    uploadID: first.uploadID,
    nonce: sent.nonce,
    token: first.token,
    to: sent.to,
    publicKey: to.publicKeyB64,
    contact: to.contact,
    name: sent.name,
    size: sent.size,
    chunks: sent.chunks,
    resumedFrom: first.resumedFrom,
    ...(relays !== undefined ? { relays } : {}),
  };
}

const basenameOf = (path: string): string => path.split(/[/\\]/).pop() || 'file';

/** Runs `f` over `items`, at most `limit` at a time, keeping the order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, f: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function fileJson(m: ReceivedMessage, st: FileStatusLike | null): Record<string, unknown> {
  return {
    uploadID: m.uploadID ?? null,
    nonce: m.nonce,
    time: m.time,
    name: m.file?.name ?? null,
    size: m.file?.orig_size ?? null,
    sender: m.sender === null ? null : m.sender.publicKeyB64,
    contact: m.sender?.name ?? null,
    from: m.from,
    status: st?.status ?? null,
    bytesStored: st?.bytes_stored ?? null,
    ...('uploads' in m ? { uploads: (m as MultiReceivedMessage).uploads } : {}),
  };
}

interface FileStatusLike {
  status: string;
  bytes_stored: number;
}

function formatFiles(files: readonly ReceivedMessage[], statuses: readonly (FileStatusLike | null)[]): string {
  if (files.length === 0) return 'no files\n';
  const head = `${files.length} file${files.length === 1 ? '' : 's'}\n`;
  return (
    head +
    files
      .map((m, i) => {
        const st = statuses[i];
        const who = m.sender === null ? `from hpk ${m.from} (unknown sender)` : m.sender.name !== undefined ? `from ${m.sender.name} (${m.sender.publicKeyB64})` : `from ${m.sender.publicKeyB64}`;
        const what = m.file !== undefined ? `${sanitizeForTerminal(m.file.name).replace(/\n/g, '\\n')}  ${formatBytes(m.file.orig_size)}` : '(name and size not readable)';
        return `\n${what}  ${st?.status ?? 'status unknown'}  ${who}\n  uploadID ${m.uploadID ?? '?'}  nonce ${m.nonce}\n`;
      })
      .join('')
  );
}

export async function filesCommand(c: Context): Promise<number> {
  const reader = await openReader(c);
  const files = (await reader.receive()).filter((m) => m.kind === 'file');
  const { mailbox, multi } = reader;
  // One fileStatus per file (with several relays: per relay that holds it, the best one), a few at
  // a time; a failure leaves that status unknown.
  const statusOf = async (m: ReceivedMessage): Promise<FileStatusLike | null> => {
    if (multi !== null) {
      const uploads = (m as MultiReceivedMessage).uploads;
      if (uploads === undefined) return null;
      const res = await multi.fileStatus({ uploads }).catch(() => null);
      const got = (res?.relays ?? []).flatMap((o) => (isRelayFailure(o) ? [] : [o.status]));
      return got.find((st) => st.status === 'COMPLETE') ?? got[0] ?? null;
    }
    return m.uploadID === undefined ? null : mailbox!.fileStatus(m.uploadID).catch(() => null);
  };
  const statuses = await mapLimit(files, 8, statusOf);
  c.out.result(formatFiles(files, statuses), files.map((m, i) => fileJson(m, statuses[i] ?? null)));
  return EXIT_OK;
}

export async function receiveFileCommand(c: Context): Promise<number> {
  const { v } = c;
  if (c.positionals.length !== 1) throw usage(c, 'give the UPLOAD_ID or the NONCE of one file ("zax files" lists them)');
  const id = c.positionals[0]!;
  if (v.out === '-' && c.out.json) throw usage(c, '--json cannot go with --out -: standard output holds the file');
  if (v.out === '') throw usage(c, '--out: the path is empty');
  const { signal, dispose } = interruptible(c);
  try {
    const reader = await openReader(c, { positionals: true, signal });
    const { mailbox, multi } = reader;
    const m = (await reader.receive()).find(
      (f) => f.kind === 'file' && (f.uploadID === id || f.nonce === id || ((f as MultiReceivedMessage).uploads ?? []).some((u) => u.uploadID === id)),
    );
    if (m === undefined) throw new ZaxClientError(`no file with uploadID or nonce "${id}" in your mailbox (see "zax files")`);
    if (m.file === undefined || m.uploadID === undefined) {
      throw new ZaxClientError(
        m.sender === null
          ? `the file is from an unknown sender (hpk ${m.from}): add them with "zax contacts add NAME PUBKEY", or give --from PUBKEY`
          : `the file message from ${m.sender.name ?? m.sender.publicKeyB64} does not open (not file metadata for this key)`,
      );
    }
    const metadata: FileMetadata = m.file;
    const name = safeFileName(metadata.name);
    let dest: string | null = null;
    if (v.out !== '-') {
      const out = resolve(v.out ?? '.');
      const isDir = await stat(out).then((s) => s.isDirectory(), () => false);
      dest = isDir ? join(out, name) : out;
      const exists = await lstat(dest).then(() => true, () => false);
      if (exists && v.force !== true) throw new ZaxClientError(`${dest} already exists: use --force to replace it, or --out another path`);
    }
    let pending: PendingFile | null = null;
    if (dest !== null) {
      try {
        pending = await pendingFile(dest);
      } catch (e) {
        throw new ZaxClientError(`cannot write beside ${dest} (${errnoCode(e)})`);
      }
    }
    const hash = createHash('sha256');
    const progress = createProgress({ stream: c.io.stderr, direction: 'receive', json: c.out.json });
    try {
      const options = {
        sink: async (chunk: Uint8Array): Promise<void> => {
          hash.update(chunk);
          if (pending !== null) await pending.write(chunk);
          else await writeStdout(c, chunk);
        },
        signal,
        onProgress: (p: TransferProgress) => progress.update(p),
      };
      if (multi !== null) {
        // One relay delivers it; the ones tried before it failed.
        const got = await multi.receiveFile(m as MultiReceivedMessage, options);
        warnFailures(c, got.failures, 'download');
      } else {
        await mailbox!.receiveFile(m, options);
      }
      await pending?.commit(v.force === true);
    } catch (e) {
      progress.fail();
      await pending?.discard();
      if (signal.aborted) throw new Interrupted(`download interrupted${pending !== null ? '; the partial file is removed' : ''}`);
      if (errnoCode(e) === 'EEXIST') throw new ZaxClientError(`${dest} appeared during the download: use --force to replace it, or --out another path`);
      throw e;
    }
    progress.done();
    let deleted = false;
    if (v.delete) {
      if (multi !== null) warnFailures(c, (await multi.deleteFile(m as MultiReceivedMessage)).failures, 'deleteFile');
      else await mailbox!.deleteFile(m.uploadID);
      await reader.remove([m.nonce]);
      deleted = true;
    }
    const doc = { uploadID: m.uploadID, nonce: m.nonce, name: metadata.name, path: dest, size: metadata.orig_size, sha256: hash.digest('hex'), deleted };
    if (dest === null) c.out.note(`received ${formatBytes(metadata.orig_size)}${deleted ? ' (deleted from the relay)' : ''}\n`);
    else c.out.result(`${dest}\n`, doc);
    return EXIT_OK;
  } finally {
    dispose();
  }
}
