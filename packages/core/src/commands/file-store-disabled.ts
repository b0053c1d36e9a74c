/**
 * The five file commands (PROTOCOL.md §5.7–5.11). The file store is not implemented yet, so the
 * core runs with `fileStoreEnabled` false and the envelope answers them 405 before they get here
 * (§4.4 step 9); this handler only keeps that true should one ever be dispatched.
 */
import { RelayError } from '@zax/protocol';
import type { CommandHandler } from './types.js';

export const fileStoreDisabled: CommandHandler<'startFileUpload' | 'uploadFileChunk' | 'fileStatus' | 'downloadFileChunk' | 'deleteFile'> = async () => {
  throw new RelayError('fileStoreDisabled', 'file store not available');
};
