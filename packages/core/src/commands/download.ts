/**
 * `download` (docs/PROTOCOL.md §5.3, DEVIATION D12: `count` honoured, `from` filter, always receipt
 * order; DEVIATION D19: at most `maxDownloadBytes` data bytes per answer, but at least one message,
 * and at most `maxDownloadsPerHpk` downloads in flight per hpk). The store renders the items.
 */
import { downloadAnswerBound, downloadBytesWithin } from '../config.js';
import { encrypted, type CommandHandler } from './types.js';

export const download: CommandHandler<'download'> = async (ctx, req) => {
  const { maxDownloadBytes, maxMessageBytes } = ctx.config;
  // Refused (429 per hpk, 503 over the process budget) before anything is read. A budget short of
  // the full bound still admits a smaller page, down to the bound of one largest message.
  const full = downloadAnswerBound(maxDownloadBytes, maxMessageBytes);
  const granted = ctx.answers.enter(ctx.hpk, full, downloadAnswerBound(0, maxMessageBytes));
  const maxBytes = granted >= full ? maxDownloadBytes : Math.min(maxDownloadBytes, downloadBytesWithin(granted));
  const items = await ctx.stores.mailboxes.download(ctx.hpk, { ...req, maxBytes }, ctx.nowMs);
  return encrypted(`[${items.join(',')}]`);
};
