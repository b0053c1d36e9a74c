/**
 * `startFileUpload` (docs/PROTOCOL.md §5.7): derives the uploadID, leaves the recipient a `file`
 * message exactly as `upload` would (replacement, quotas → 429, storage token; lifetime
 * fileTtlSec), and only then creates — or resets — the file record. Answers the encrypted
 * `{uploadID, max_chunk_size, storage_token}`.
 */
import { HASH_BYTES, NONCE_BYTES, RelayError, b64, requireFixed } from '@zax/protocol';
import { uploadId } from '../file-ids.js';
import { short } from '@zax/service';
import { storageToken } from '../store/index.js';
import { encrypted, type CommandHandler } from './types.js';

export const startFileUpload: CommandHandler<'startFileUpload'> = async (ctx, req) => {
  const { config } = ctx;
  await ctx.storeGuard.assertWritable();
  const seed = await ctx.fileSeed.get();
  const id = b64(
    uploadId(
      requireFixed(ctx.hpk, HASH_BYTES, 'hpk'),
      requireFixed(req.to, HASH_BYTES, 'to'),
      requireFixed(req.metadataNonce, NONCE_BYTES, 'metadata.nonce'),
      seed,
    ),
  );
  // The message data glow.ts reads back: compact JSON in exactly this key order.
  const data = JSON.stringify({ ctext: req.metadataCtext, nonce: req.metadataNonce, uploadID: id });
  const expiresAtMs = ctx.nowMs + config.fileTtlSec * 1000;
  const token = storageToken(req.to, req.metadataNonce);
  const outcome = await ctx.stores.mailboxes.upload(
    { to: req.to, from: ctx.hpk, nonce: req.metadataNonce, storageToken: token, data, dataBytes: Buffer.byteLength(data, 'utf8'), kind: 'file', nowMs: ctx.nowMs, expiresAtMs },
    config,
  );
  if (outcome === 'fullCount' || outcome === 'fullBytes') {
    // Nothing is created when the message cannot be stored.
    throw new RelayError('mailboxFull', `mailbox ${short(req.to)} full (${outcome})`, config.mailboxFullRetryAfterSec);
  }
  await ctx.stores.files.start({ uploadID: id, from: ctx.hpk, to: req.to, fileSize: req.fileSize, nowMs: ctx.nowMs, expiresAtMs });
  ctx.log.debug({ file: short(id), fileSize: req.fileSize }, 'file started');
  return encrypted(JSON.stringify({ uploadID: id, max_chunk_size: config.maxChunkSize, storage_token: token }));
};
