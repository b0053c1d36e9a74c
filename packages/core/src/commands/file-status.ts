/**
 * `fileStatus` (docs/PROTOCOL.md §5.9, DEVIATION D13): always exactly status, file_size, bytes_stored
 * and total_chunks, never hpks; zeros with NOT_FOUND for a file unknown to the caller.
 */
import { encrypted, type CommandHandler } from './types.js';

const NOT_FOUND = JSON.stringify({ status: 'NOT_FOUND', file_size: 0, bytes_stored: 0, total_chunks: 0 });

export const fileStatus: CommandHandler<'fileStatus'> = async (ctx, req) => {
  const s = await ctx.stores.files.status(req.uploadID, ctx.hpk, ctx.nowMs);
  if (s === null) return encrypted(NOT_FOUND);
  return encrypted(JSON.stringify({ status: s.status, file_size: s.fileSize, bytes_stored: s.bytesStored, total_chunks: s.totalChunks }));
};
