/**
 * Runs the `zax` CLI for a test, in a clean environment: PATH and HOME only (no ZAX_* or proxy
 * settings from the caller) plus what the test gives. `runCliProcess` runs the built executable
 * (dist/cli.js) as a process; `runCliInProcess` calls `runCli` with the same arguments, environment
 * and input in this process, without the ~0.3 s a process takes to start. `runZax` picks: a process
 * when the run needs one (a working directory of its own, or NODE_* variables that only a new
 * Node process reads), else in this process.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runCli } from '../../src/cli-app.js';

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  home: string;
  env?: Record<string, string>;
  /** Standard input; none (an empty, closed stdin) when absent. */
  input?: string;
  cwd?: string;
}

const cleanEnv = (o: RunOptions): Record<string, string> => ({ PATH: process.env.PATH ?? '', HOME: o.home, ...o.env });

export function runCliProcess(args: readonly string[], options: RunOptions): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: cleanEnv(options),
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin?.end(options.input);
  });
}

export async function runCliInProcess(args: readonly string[], options: Omit<RunOptions, 'cwd'>): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const input = options.input;
  const code = await runCli(args, {
    stdout: { write: (s: string | Uint8Array) => (stdout += typeof s === 'string' ? s : Buffer.from(s).toString()) },
    stderr: { write: (s: string) => (stderr += s), isTTY: false },
    stdin: (async function* () {
      if (input !== undefined && input !== '') yield input;
    })(),
    env: cleanEnv(options),
  });
  return { code, stdout, stderr };
}

export function runZax(args: readonly string[], options: RunOptions): Promise<Run> {
  const needsProcess = options.cwd !== undefined || Object.keys(options.env ?? {}).some((k) => k.startsWith('NODE_'));
  return needsProcess ? runCliProcess(args, options) : runCliInProcess(args, options);
}
