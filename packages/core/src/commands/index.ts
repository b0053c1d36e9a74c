/** The command table: one handler per command name (a missing one does not compile). */
import { count } from './count.js';
import { deleteMessages } from './delete.js';
import { deleteFile } from './delete-file.js';
import { download } from './download.js';
import { downloadFileChunk } from './download-file-chunk.js';
import { fileStatus } from './file-status.js';
import { getEntropy } from './get-entropy.js';
import { messageStatus } from './message-status.js';
import { startFileUpload } from './start-file-upload.js';
import type { CommandHandlers } from './types.js';
import { uploadFileChunk } from './upload-file-chunk.js';
import { upload } from './upload.js';

export const COMMAND_HANDLERS = {
  count,
  upload,
  download,
  messageStatus,
  delete: deleteMessages,
  getEntropy,
  startFileUpload,
  uploadFileChunk,
  fileStatus,
  downloadFileChunk,
  deleteFile,
} as const satisfies CommandHandlers;

export type { CommandContext, CommandHandler, CommandHandlers, CommandResult } from './types.js';
