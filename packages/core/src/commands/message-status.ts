/**
 * `messageStatus` (docs/PROTOCOL.md §5.4): seconds left of a live message, rounded up (≥ 1), or -2 when
 * it is unknown, expired or deleted. -1 ("never expires") is never returned.
 */
import { plain, type CommandHandler } from './types.js';

export const messageStatus: CommandHandler<'messageStatus'> = async (ctx, req) => {
  const expiresAtMs = await ctx.stores.mailboxes.tokenExpiry(req.token);
  if (expiresAtMs === null || expiresAtMs <= ctx.nowMs) return plain('-2');
  return plain(String(Math.ceil((expiresAtMs - ctx.nowMs) / 1000)));
};
