/**
 * `uploadFileChunk` (docs/PROTOCOL.md §5.8): stores one chunk as bytes, atomically per file. The chunk
 * line is decoded once here (a 512000-byte chunk is ~683 KB of base64) and the bytes go to Redis as
 * a binary argument. Outcomes: `{"status":"OK"}`, `{"status":"NOT_FOUND"}`, 400 G for a part at or
 * past file_size (D16), 413 when bytes_stored would pass file_size + 16 × total_chunks (D16), and
 * 503 with Retry-After when the relay-wide maxFileBytesTotal would be passed — nothing is stored.
 */
import { RelayError } from '@zax/protocol';
import { encrypted, type CommandHandler } from './types.js';

export const OK_JSON = '{"status":"OK"}';
export const NOT_FOUND_JSON = '{"status":"NOT_FOUND"}';

export const uploadFileChunk: CommandHandler<'uploadFileChunk'> = async (ctx, req) => {
  const { config } = ctx;
  await ctx.storeGuard.assertWritable();
  // The envelope (line 4, decoded there once) or the validator (`ctext`) has checked it is strict base64.
  const chunk = ctx.line4Bytes ?? Buffer.from(req.chunk, 'base64');
  const outcome = await ctx.stores.files.uploadChunk({
    uploadID: req.uploadID,
    caller: ctx.hpk,
    part: req.part,
    nonce: req.nonce,
    lastChunk: req.lastChunk,
    chunk,
    nowMs: ctx.nowMs,
    expiresAtMs: ctx.nowMs + config.fileTtlSec * 1000,
    maxFileBytesTotal: config.maxFileBytesTotal,
  });
  switch (outcome) {
    case 'stored':
      return encrypted(OK_JSON);
    case 'notFound':
      return encrypted(NOT_FOUND_JSON);
    case 'partOutOfRange':
      throw new RelayError('invalid', 'part ≥ file_size');
    case 'overSize':
      throw new RelayError('tooLarge', 'bytes_stored would pass file_size + 16 per chunk');
    case 'relayFull':
      throw new RelayError('busy', 'maxFileBytesTotal reached', config.busyRetryAfterSec);
  }
};
