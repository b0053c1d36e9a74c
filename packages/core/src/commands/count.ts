/** `count` (docs/PROTOCOL.md §5.1): the caller's live message count as a bare, encrypted JSON number. */
import { encrypted, type CommandHandler } from './types.js';

export const count: CommandHandler<'count'> = async (ctx) => encrypted(String(await ctx.stores.mailboxes.count(ctx.hpk, ctx.nowMs)));
