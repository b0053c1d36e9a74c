/** Shared helpers for the file-command tests: start a file, upload and download chunks over HTTP. */
import { expect } from 'vitest';
import { TEXT_G, b64, randomBytes, tweetnaclCrypto as C } from '@zax/protocol';
import { command, commandJson, randomNonceB64, type Core, type HttpReply, type Session } from './helpers.js';

export interface FileStatusJson {
  status: string;
  file_size: number;
  bytes_stored: number;
  total_chunks: number;
}

export const NOT_FOUND_STATUS: FileStatusJson = { status: 'NOT_FOUND', file_size: 0, bytes_stored: 0, total_chunks: 0 };

export interface Started {
  uploadID: string;
  max_chunk_size: number;
  storage_token: string;
  metadataNonce: string;
}

/** startFileUpload from `from` to `to`; must succeed. */
export async function startFile(core: Core, from: Session, to: Session | string, fileSize: number, ctext = 'metadata-ctext'): Promise<Started> {
  const metadataNonce = randomNonceB64();
  const r = await commandJson<Omit<Started, 'metadataNonce'>>(core, from, {
    cmd: 'startFileUpload',
    to: typeof to === 'string' ? to : to.hpk,
    file_size: fileSize,
    metadata: { nonce: metadataNonce, ctext },
  });
  return { ...r, metadataNonce };
}

/** One uploadFileChunk with the bytes as line 4; returns the raw reply. */
export function putChunk(
  core: Core,
  s: Session,
  uploadID: string,
  part: number,
  bytes: Uint8Array,
  opts: { last?: boolean; nonce?: string } = {},
): Promise<HttpReply> {
  const cmd: Record<string, unknown> = { cmd: 'uploadFileChunk', uploadID, part, nonce: opts.nonce ?? randomNonceB64() };
  if (opts.last !== undefined) cmd.last_chunk = opts.last;
  return command(core, s, cmd, { line4: b64(bytes) });
}

/** uploadFileChunk that must answer `{"status":"OK"}`. */
export async function putChunkOk(core: Core, s: Session, uploadID: string, part: number, bytes: Uint8Array, opts: { last?: boolean; nonce?: string } = {}): Promise<void> {
  const r = await putChunk(core, s, uploadID, part, bytes, opts);
  expect(r.status, `chunk ${part}`).toBe(200);
  expect(openJson(s, r.body)).toEqual({ status: 'OK' });
}

export const fileStatus = (core: Core, s: Session, uploadID: string): Promise<FileStatusJson> => commandJson<FileStatusJson>(core, s, { cmd: 'fileStatus', uploadID });

/** Opens a 2-line encrypted body and parses its JSON. */
export function openJson(s: Session, body: string): unknown {
  const lines = body.split('\r\n');
  expect(lines).toHaveLength(2);
  const opened = C.boxOpenAfter(Buffer.from(lines[1]!, 'base64'), Buffer.from(lines[0]!, 'base64'), s.sharedKey);
  expect(opened).not.toBeNull();
  return JSON.parse(Buffer.from(opened!).toString('utf8'));
}

export type Download = { kind: 'chunk'; nonce: string; line3: string; bytes: Buffer } | { kind: 'notFound' } | { kind: 'status'; reply: HttpReply };

/** downloadFileChunk: the 3-line chunk, the 2-line NOT_FOUND, or any other reply. */
export async function getChunk(core: Core, s: Session, uploadID: string, part: number): Promise<Download> {
  const r = await command(core, s, { cmd: 'downloadFileChunk', uploadID, part });
  if (r.status !== 200) return { kind: 'status', reply: r };
  const lines = r.body.split('\r\n');
  if (lines.length === 2) {
    expect(openJson(s, r.body)).toEqual({ status: 'NOT_FOUND' });
    return { kind: 'notFound' };
  }
  expect(lines).toHaveLength(3);
  const opened = C.boxOpenAfter(Buffer.from(lines[1]!, 'base64'), Buffer.from(lines[0]!, 'base64'), s.sharedKey);
  const json = JSON.parse(Buffer.from(opened!).toString('utf8')) as { nonce: string };
  expect(Object.keys(json)).toEqual(['nonce']);
  return { kind: 'chunk', nonce: json.nonce, line3: lines[2]!, bytes: Buffer.from(lines[2]!, 'base64') };
}

export async function getChunkBytes(core: Core, s: Session, uploadID: string, part: number): Promise<Buffer> {
  const d = await getChunk(core, s, uploadID, part);
  if (d.kind !== 'chunk') throw new Error(`part ${part}: ${d.kind}`);
  return d.bytes;
}

export const deleteFile = async (core: Core, s: Session, uploadID: string): Promise<unknown> => commandJson(core, s, { cmd: 'deleteFile', uploadID });

export function expectG(r: HttpReply): void {
  expect(r.status).toBe(400);
  expect(r.headers.get('x-error-details')).toBe(TEXT_G);
  expect(r.body).toBe('');
}

export const rnd = (n: number): Buffer => Buffer.from(randomBytes(n));
