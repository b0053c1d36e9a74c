/**
 * `deleteFile` (docs/PROTOCOL.md §5.11, DEVIATION D15): either party removes the record and every chunk
 * for both parties. The `file` message in the recipient's mailbox stays (removed with `delete`).
 */
import { NOT_FOUND_JSON, OK_JSON } from './upload-file-chunk.js';
import { encrypted, type CommandHandler } from './types.js';

export const deleteFile: CommandHandler<'deleteFile'> = async (ctx, req) =>
  encrypted((await ctx.stores.files.delete(req.uploadID, ctx.hpk, ctx.nowMs)) ? OK_JSON : NOT_FOUND_JSON);
