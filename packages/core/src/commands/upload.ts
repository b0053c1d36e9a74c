/**
 * `upload` (docs/PROTOCOL.md §5.2): stores a message in the recipient's mailbox (replacing a live one
 * with the same nonce) and answers the plain storage token. DEVIATION D11: a full mailbox (count or
 * bytes) is 429 "Mailbox is full." with Retry-After; the reference relay has no quota; a store above
 * its high-water mark is 503.
 */
import { RelayError, b64, makeNonce } from '@zax/protocol';
import { short } from '@zax/service';
import { storageToken } from '../store/index.js';
import { plain, type CommandHandler } from './types.js';

export const upload: CommandHandler<'upload'> = async (ctx, req) => {
  const { config } = ctx;
  await ctx.storeGuard.assertWritable();
  // glow.ts needs a 24-byte nonce back in `download`: make a relay nonce when the client sent none.
  const nonce = req.nonce ?? b64(makeNonce(ctx.nowSec, ctx.crypto.randomBytes));
  const token = storageToken(req.to, nonce);
  const outcome = await ctx.stores.mailboxes.upload(
    {
      to: req.to,
      from: ctx.hpk,
      nonce,
      storageToken: token,
      data: req.data,
      dataBytes: req.dataBytes,
      kind: 'message',
      nowMs: ctx.nowMs,
      expiresAtMs: ctx.nowMs + config.messageTtlSec * 1000,
    },
    config,
  );
  if (outcome === 'fullCount' || outcome === 'fullBytes') {
    throw new RelayError('mailboxFull', `mailbox ${short(req.to)} full (${outcome})`, config.mailboxFullRetryAfterSec);
  }
  return plain(token);
};
