/**
 * `delete` (docs/PROTOCOL.md §5.5): removes messages from the caller's own mailbox by nonce string,
 * with their storage-token records, and answers the live count afterwards.
 */
import { NONCE_BYTES, decodeFixed } from '@zax/protocol';
import { plain, type CommandHandler } from './types.js';

export const deleteMessages: CommandHandler<'delete'> = async (ctx, req) => {
  // Every stored message nonce is strict base64 of 24 bytes; any other entry cannot match one.
  const nonces = req.nonces.filter((n) => decodeFixed(n, NONCE_BYTES) !== null);
  return plain(String(await ctx.stores.mailboxes.delete(ctx.hpk, nonces, ctx.nowMs)));
};
