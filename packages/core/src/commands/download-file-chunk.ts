/**
 * `downloadFileChunk` (docs/PROTOCOL.md §5.10): 3 lines — the response nonce, the box of
 * `{"nonce":<chunk nonce as uploaded>}`, and the chunk bytes as base64 (encoded once, here). An
 * unknown file is the 2-line `{"status":"NOT_FOUND"}`; a missing part of a known file is 400 G.
 * Its answer counts against the process's budget of answer bytes in flight (download-gate.ts): 503
 * when a chunk's answer would pass it.
 */
import { RelayError } from '@zax/protocol';
import { NOT_FOUND_JSON } from './upload-file-chunk.js';
import { encrypted, type CommandHandler } from './types.js';

/** Bytes of a chunk answer besides the chunk's base64: nonce line, box of `{"nonce":…}`, line breaks. */
const CHUNK_ANSWER_OVERHEAD = 200;

export const downloadFileChunk: CommandHandler<'downloadFileChunk'> = async (ctx, req) => {
  ctx.answers.enter(null, 4 * Math.ceil(ctx.config.maxChunkSize / 3) + CHUNK_ANSWER_OVERHEAD);
  const r = await ctx.stores.files.downloadChunk(req.uploadID, ctx.hpk, req.part, ctx.nowMs);
  switch (r.kind) {
    case 'notFound':
      return encrypted(NOT_FOUND_JSON);
    case 'noPart':
      throw new RelayError('invalid', 'no such part');
    case 'chunk':
      return encrypted(JSON.stringify({ nonce: r.nonce }), r.bytes.toString('base64'));
  }
};
