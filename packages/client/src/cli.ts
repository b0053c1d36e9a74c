#!/usr/bin/env node
/** The `zax` executable: runs the CLI on the process's arguments and streams (see cli-app.ts). */
import { runCli } from './cli-app.js';

// exitCode, not exit(): exit() could cut off output still buffered for a pipe.
process.exitCode = await runCli(process.argv.slice(2));
