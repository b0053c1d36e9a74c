/**
 * `download` (docs/PROTOCOL.md §5.3, DEVIATION D12: `count` honoured, `from` filter, always receipt
 * order): an encrypted JSON array of the caller's live messages. The store renders the items.
 */
import { encrypted, type CommandHandler } from './types.js';

export const download: CommandHandler<'download'> = async (ctx, req) => {
  const items = await ctx.stores.mailboxes.download(ctx.hpk, req, ctx.nowMs);
  return encrypted(`[${items.join(',')}]`);
};
