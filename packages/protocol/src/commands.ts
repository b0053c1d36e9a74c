/**
 * The eleven commands (docs/PROTOCOL.md §5): names, which need the file store, and per-command validation
 * of the decrypted JSON into typed requests. Validation never touches storage; a failure is 400 G,
 * or 413 where a size limit is crossed.
 */
import { B64_NONCE_CHARS, MAX_DELETE_ENTRIES, MAX_DOWNLOAD_COUNT, MAX_FROM_ENTRIES, NONCE_BYTES } from './constants.js';
import { decodeFixed, isStrictBase64 } from './base64.js';
import { RelayError } from './errors.js';
import { field, isInteger, type JsonObject } from './json.js';
import { utf8Length } from './utf8.js';

export const COMMAND_NAMES = [
  'count',
  'upload',
  'download',
  'messageStatus',
  'delete',
  'getEntropy',
  'startFileUpload',
  'uploadFileChunk',
  'fileStatus',
  'downloadFileChunk',
  'deleteFile',
] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

export const FILE_COMMANDS: ReadonlySet<CommandName> = new Set<CommandName>([
  'startFileUpload',
  'uploadFileChunk',
  'fileStatus',
  'downloadFileChunk',
  'deleteFile',
]);

export const isCommandName = (v: unknown): v is CommandName =>
  typeof v === 'string' && (COMMAND_NAMES as readonly string[]).includes(v);

/** Limits the validators need (docs/PROTOCOL.md §7 names). */
export interface CommandLimits {
  maxMessageBytes: number;
  maxChunkSize: number;
  maxFileSize: number;
}

export interface CommandRequests {
  count: Record<string, never>;
  upload: { to: string; data: string; dataBytes: number; nonce: string | null };
  download: { start: number; count: number; from: string[] | null };
  messageStatus: { token: string };
  delete: { nonces: string[] };
  getEntropy: { size: number };
  startFileUpload: { to: string; fileSize: number; metadataNonce: string; metadataCtext: string };
  uploadFileChunk: { uploadID: string; part: number; nonce: string; lastChunk: boolean; chunk: string; chunkBytes: number };
  fileStatus: { uploadID: string };
  downloadFileChunk: { uploadID: string; part: number };
  deleteFile: { uploadID: string };
}

export type CommandRequest = { [K in CommandName]: { cmd: K } & CommandRequests[K] }[CommandName];

const invalid = (why: string): RelayError => new RelayError('invalid', why);

function hpkField(v: unknown, what: string): string {
  if (typeof v !== 'string' || decodeFixed(v, 32) === null) throw invalid(`${what}: not a 32-byte base64 string`);
  return v;
}

function nonceField(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length !== B64_NONCE_CHARS || decodeFixed(v, NONCE_BYTES) === null) {
    throw invalid(`${what}: not a 24-byte base64 string`);
  }
  return v;
}

function integerField(v: unknown, min: number, what: string): number {
  if (!isInteger(v) || v < min) throw invalid(`${what}: not an integer ≥ ${min}`);
  return v;
}

/** Decoded size of strict base64 without decoding it. */
export function base64DecodedBytes(s: string): number {
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  return (s.length / 4) * 3 - pad;
}


type Validator<K extends CommandName> = (obj: JsonObject, limits: CommandLimits, line4: string | null) => CommandRequests[K];

const VALIDATORS: { [K in CommandName]: Validator<K> } = {
  count: () => ({}),

  upload(obj, limits) {
    const to = hpkField(field(obj, 'to'), 'to');
    const payload = field(obj, 'payload');
    let data: string;
    let nonce: string | null = null;
    if (typeof payload === 'string') {
      data = payload;
    } else if (typeof payload === 'object' && payload !== undefined && !Array.isArray(payload)) {
      const p = payload as JsonObject;
      const ctext = field(p, 'ctext');
      if (typeof ctext !== 'string') throw invalid('payload.ctext: not a string');
      data = ctext;
      const n = field(p, 'nonce');
      if (n !== undefined) nonce = nonceField(n, 'payload.nonce');
    } else {
      throw invalid('payload: neither a string nor an object');
    }
    const dataBytes = utf8Length(data);
    if (dataBytes > limits.maxMessageBytes) throw new RelayError('tooLarge', 'message data above maxMessageBytes');
    return { to, data, dataBytes, nonce };
  },

  download(obj) {
    const start = field(obj, 'start');
    const count = field(obj, 'count');
    const from = field(obj, 'from');
    let fromList: string[] | null = null;
    if (from !== undefined) {
      if (!Array.isArray(from) || from.length < 1 || from.length > MAX_FROM_ENTRIES) throw invalid('from: not 1–100 hpks');
      fromList = from.map((h, i) => hpkField(h, `from[${i}]`));
    }
    return {
      start: start === undefined ? 0 : integerField(start, 0, 'start'),
      count: count === undefined ? MAX_DOWNLOAD_COUNT : Math.min(integerField(count, 1, 'count'), MAX_DOWNLOAD_COUNT),
      from: fromList,
    };
  },

  messageStatus(obj) {
    return { token: hpkField(field(obj, 'token'), 'token') };
  },

  delete(obj) {
    const payload = field(obj, 'payload');
    if (!Array.isArray(payload) || payload.length > MAX_DELETE_ENTRIES || !payload.every((x) => typeof x === 'string')) {
      throw invalid('payload: not an array of at most 100 strings');
    }
    return { nonces: payload as string[] };
  },

  getEntropy(obj, limits) {
    const size = field(obj, 'size');
    if (!isInteger(size) || size < 1 || size > limits.maxChunkSize) throw invalid('size out of range');
    return { size };
  },

  startFileUpload(obj, limits) {
    const to = hpkField(field(obj, 'to'), 'to');
    const fileSize = field(obj, 'file_size');
    if (!isInteger(fileSize) || fileSize < 1 || fileSize > limits.maxFileSize) throw invalid('file_size out of range');
    const metadata = field(obj, 'metadata');
    if (typeof metadata !== 'object' || metadata === undefined || Array.isArray(metadata)) throw invalid('metadata: not an object');
    const m = metadata as JsonObject;
    const metadataNonce = nonceField(field(m, 'nonce'), 'metadata.nonce');
    const metadataCtext = field(m, 'ctext');
    if (typeof metadataCtext !== 'string' || metadataCtext.length === 0) throw invalid('metadata.ctext: not a non-empty string');
    if (utf8Length(metadataCtext) > limits.maxMessageBytes) throw new RelayError('tooLarge', 'metadata above maxMessageBytes');
    return { to, fileSize, metadataNonce, metadataCtext };
  },

  uploadFileChunk(obj, limits, line4) {
    const uploadID = hpkField(field(obj, 'uploadID'), 'uploadID');
    const part = integerField(field(obj, 'part'), 0, 'part');
    const nonce = nonceField(field(obj, 'nonce'), 'nonce');
    const last = field(obj, 'last_chunk');
    if (last !== undefined && typeof last !== 'boolean') throw invalid('last_chunk: not a boolean');
    let chunk = line4;
    if (chunk === null) {
      const ctext = field(obj, 'ctext');
      if (typeof ctext !== 'string' || ctext.length === 0 || !isStrictBase64(ctext)) throw invalid('no chunk');
      chunk = ctext;
    }
    const chunkBytes = base64DecodedBytes(chunk);
    if (chunkBytes > limits.maxChunkSize) throw new RelayError('tooLarge', 'chunk above maxChunkSize');
    return { uploadID, part, nonce, lastChunk: last === true, chunk, chunkBytes };
  },

  fileStatus(obj) {
    return { uploadID: hpkField(field(obj, 'uploadID'), 'uploadID') };
  },

  downloadFileChunk(obj) {
    return { uploadID: hpkField(field(obj, 'uploadID'), 'uploadID'), part: integerField(field(obj, 'part'), 0, 'part') };
  },

  deleteFile(obj) {
    return { uploadID: hpkField(field(obj, 'uploadID'), 'uploadID') };
  },
};

/**
 * Validates a decrypted command object. `line4` is the optional 4th body line (already checked as
 * strict base64 by the envelope). Throws RelayError 400 G / 413.
 */
export function validateCommand(obj: JsonObject, limits: CommandLimits, line4: string | null): CommandRequest {
  const cmd = field(obj, 'cmd');
  if (!isCommandName(cmd)) throw invalid('unknown cmd');
  const v = VALIDATORS[cmd] as Validator<CommandName>;
  return { cmd, ...v(obj, limits, line4) } as CommandRequest;
}
