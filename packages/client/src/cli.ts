#!/usr/bin/env node
/** The `zax` executable: runs the CLI on the process's arguments and streams (see cli-app.ts). */
import { runCli } from './cli-app.js';

// A reader that goes away (`zax watch | head -1`) ends the run quietly, as a closed pipe does for
// other tools, instead of an unhandled EPIPE.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

// exitCode, not exit(): exit() could cut off output still buffered for a pipe.
process.exitCode = await runCli(process.argv.slice(2));
