/**
 * The file side of the `zax` CLI, apart from its commands (in cli-file-commands.ts): the safe
 * local name of a file someone else named, downloads written to a temporary file beside the
 * destination and moved into place at the end (never over an existing file unless asked), and the
 * checkpoints of interrupted uploads (`uploads/<uploadID>.json` beside the identity file, mode
 * 0600: they hold the file key).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { link, open, readdir, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { FileUploadCheckpoint } from './files.js';

// ---------- names ----------

/** The longest local name, in UTF-8 bytes (most file systems allow 255). */
const MAX_NAME_BYTES = 200;

/**
 * A local file name for a sender-chosen name: its last path component (either separator), without
 * control characters, bidi overrides or characters Windows refuses, without leading dots (no
 * hidden file, no `.` or `..`) or trailing dots and spaces, cut to 200 bytes; `file` when nothing
 * is left. The result never names a directory or a path outside the one it is joined to.
 */
export function safeFileName(name: string): string {
  const last = name.split(/[/\\]/).filter((s) => s !== '').pop() ?? '';
  // eslint-disable-next-line no-control-regex
  let s = last.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069<>:"|?*]/g, '');
  s = s.replace(/^[.\s]+/, '').replace(/[.\s]+$/, '');
  const enc = new TextEncoder();
  while (enc.encode(s).length > MAX_NAME_BYTES) s = Array.from(s).slice(0, -1).join('');
  return s === '' ? 'file' : s;
}

// ---------- writing a download ----------

/** A download in progress: bytes go to a temporary file beside `dest`. */
export interface PendingFile {
  readonly tmp: string;
  write(chunk: Uint8Array): Promise<void>;
  /** Moves the file to `dest`; without `overwrite`, fails with EEXIST if something is there by now. */
  commit(overwrite: boolean): Promise<void>;
  /** Removes the temporary file. */
  discard(): Promise<void>;
}

/** Opens `.<name>.<random>.part` beside `dest` (mode 0600). */
export async function pendingFile(dest: string): Promise<PendingFile> {
  const tmp = join(dirname(dest), `.${basename(dest)}.${randomBytes(6).toString('hex')}.part`);
  const fh: FileHandle = await open(tmp, 'wx', 0o600);
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await fh.close();
  };
  return {
    tmp,
    async write(chunk) {
      let off = 0;
      while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
    },
    async commit(overwrite) {
      await fh.sync();
      await close();
      if (overwrite) {
        await rename(tmp, dest);
        return;
      }
      // link() fails if dest exists: no window in which another file could be replaced.
      await link(tmp, dest);
      await rm(tmp, { force: true });
    },
    async discard() {
      await close().catch(() => undefined);
      await rm(tmp, { force: true });
    },
  };
}

// ---------- checkpoints of interrupted uploads ----------

const UPLOAD_TYPE = 'zax-upload';

/** What `send-file --resume` needs: the SDK checkpoint and what it was about. */
export interface UploadState {
  type: typeof UPLOAD_TYPE;
  version: 1;
  /** Absolute path of the file being sent, its size and modification time when the upload started. */
  file: string;
  size: number;
  mtimeMs: number;
  /** The relay's normalised URL. */
  relay: string;
  /** b64 public key of the recipient. */
  recipient: string;
  checkpoint: FileUploadCheckpoint;
}

/** The directory of the checkpoints of an identity: `uploads` beside its file. */
export const uploadsDirFor = (identityPath: string): string => join(dirname(identityPath), 'uploads');

export const uploadStatePath = (dir: string, uploadID: string): string => join(dir, `${uploadID.replace(/[^A-Za-z0-9_-]/g, '_')}.json`);

/**
 * Writes an upload's state (mode 0600, directory 0700, through a temporary file and a rename).
 * Synchronous: it is called from the progress callback, and each write must land before the next.
 */
export function saveUploadState(dir: string, state: UploadState): string {
  const path = uploadStatePath(dir, state.checkpoint.uploadID);
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  return path;
}

export async function removeUploadState(path: string): Promise<void> {
  await rm(path, { force: true });
}

function isUploadState(v: unknown): v is UploadState {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Partial<UploadState>;
  const cp = o.checkpoint as Partial<FileUploadCheckpoint> | undefined;
  return (
    o.type === UPLOAD_TYPE &&
    o.version === 1 &&
    typeof o.file === 'string' &&
    typeof o.size === 'number' &&
    typeof o.mtimeMs === 'number' &&
    typeof o.relay === 'string' &&
    typeof o.recipient === 'string' &&
    typeof cp === 'object' &&
    cp !== null &&
    typeof cp.uploadID === 'string' &&
    typeof cp.nextPart === 'number' &&
    typeof cp.chunkSize === 'number'
  );
}

/** Every readable upload state in `dir`, with its path (a damaged or foreign file is skipped). */
export async function listUploadStates(dir: string): Promise<{ path: string; state: UploadState }[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const out: { path: string; state: UploadState }[] = [];
  for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
    const path = join(dir, name);
    try {
      const v: unknown = JSON.parse(await readFile(path, 'utf8'));
      if (isUploadState(v)) out.push({ path, state: v });
    } catch {
      // not ours, or half-written: leave it
    }
  }
  return out;
}
