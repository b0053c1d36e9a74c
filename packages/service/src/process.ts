/**
 * What both services' processes need to stop within their bounds whatever their readers do: a log
 * destination that never blocks or outlives its reader, and a kill that holds when the main thread
 * is stuck.
 */
import type { Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';

/** Log bytes a slow reader of stdout may leave waiting; lines beyond are dropped (and counted). */
export const MAX_PENDING_LOG_BYTES = 1024 * 1024;

/** What pino needs of a destination. */
export interface LineDestination {
  write(line: string): void;
}

/**
 * pino's destination: `out` (stdout) through Node's own stream, which on a pipe (the launcher, a
 * container runtime) writes without blocking and keeps what the reader has not taken yet. Nothing
 * here blocks the event loop, retries, or writes at exit:
 * - a reader that is gone (EPIPE: the launcher was killed) ends logging for good, silently;
 * - a slow or stopped reader: lines beyond `maxPending` waiting bytes are dropped, and one line
 *   (with `service`) says how many once it has caught up, so memory stays bounded.
 * (pino's default destination flushes synchronously at exit and retries a failed write there every
 * 100 ms, forever: a process whose launcher died while it logged could never exit.)
 */
export function stdoutDestination(service: string, out: Writable = process.stdout, maxPending = MAX_PENDING_LOG_BYTES): LineDestination {
  let gone = false;
  let dropped = 0;
  out.on('error', () => {
    gone = true;
  });
  return {
    write(line) {
      if (gone || out.destroyed || !out.writable) return;
      if (out.writableLength + line.length > maxPending) {
        dropped++;
        return;
      }
      if (dropped > 0) {
        out.write(`${JSON.stringify({ level: 40, time: Date.now(), service, dropped, msg: 'log lines dropped: stdout was not read fast enough' })}\n`);
        dropped = 0;
      }
      out.write(line);
    },
  };
}

/**
 * SIGKILLs this process after `ms`, from a thread of its own: the one bound that holds even when
 * the main thread is stuck (say, in a synchronous write to a terminal or file that blocks), where
 * no timer of the event loop, and so no `process.exit`, can run. Does not keep the process alive.
 */
export function killAfter(ms: number): void {
  const code = `const { workerData: d } = require('node:worker_threads');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, d.ms);
    process.kill(d.pid, 'SIGKILL');`;
  const watchdog = new Worker(code, { eval: true, workerData: { ms, pid: process.pid } });
  watchdog.on('error', () => {}); // could not start: the caller's exit timer remains
  watchdog.unref();
}
