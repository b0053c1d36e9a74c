/**
 * `getEntropy` (docs/PROTOCOL.md §5.6): N CSPRNG bytes as plain b64('{"entropy":"' + b64(bytes) + '"}').
 * Not encrypted, as on the reference relay; it works even with the file store disabled.
 */
import { b64 } from '@zax/protocol';
import { plain, type CommandHandler } from './types.js';

export const getEntropy: CommandHandler<'getEntropy'> = async (ctx, req) =>
  plain(Buffer.from(`{"entropy":"${b64(ctx.crypto.randomBytes(req.size))}"}`, 'ascii').toString('base64'));
