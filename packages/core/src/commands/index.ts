/** The command table: one handler per command name (a missing one does not compile). */
import { count } from './count.js';
import { deleteMessages } from './delete.js';
import { download } from './download.js';
import { fileStoreDisabled } from './file-store-disabled.js';
import { getEntropy } from './get-entropy.js';
import { messageStatus } from './message-status.js';
import type { CommandHandlers } from './types.js';
import { upload } from './upload.js';

export const COMMAND_HANDLERS = {
  count,
  upload,
  download,
  messageStatus,
  delete: deleteMessages,
  getEntropy,
  startFileUpload: fileStoreDisabled,
  uploadFileChunk: fileStoreDisabled,
  fileStatus: fileStoreDisabled,
  downloadFileChunk: fileStoreDisabled,
  deleteFile: fileStoreDisabled,
} as const satisfies CommandHandlers;

export type { CommandContext, CommandHandler, CommandHandlers, CommandResult } from './types.js';
