/**
 * A child process that this one starts, watches and stops: the common ground of the relay's
 * launchers (`pnpm start`, the test helpers, the load tool) for redis-server, the core and the
 * gatekeeper. Its output is read line by line (the last lines kept to explain a death), a readiness
 * wait gives up as soon as it exits, and a stop escalates to SIGKILL, of its whole process group
 * when it runs in one, so that what it started itself (cluster workers) goes with it.
 */
import { spawn, type ChildProcess, type StdioNull, type StdioPipe } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Stream } from 'node:stream';

export interface ManagedProcessOptions {
  /** Names it in error messages. */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** Descriptors from fd 3 on (e.g. an IPC channel, a pipe it must hold). */
  readonly extraStdio?: readonly ('ipc' | StdioNull | StdioPipe | Stream)[];
  /** Its own process group: a terminal's Ctrl-C does not reach it, and SIGKILL takes the group. */
  readonly detached?: boolean;
  /** How many of its last output lines to keep for error messages. @default 30 */
  readonly keepLines?: number;
  /** Each line it writes, as it comes. */
  readonly onLine?: (line: string, stream: 'stdout' | 'stderr', from: ManagedProcess) => void;
  /** Called once it runs, before anything else can see it exit (e.g. to record its pid). */
  readonly onSpawn?: (p: ManagedProcess) => void;
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A readiness wait that failed: the process exited first (`exit`), or the time ran out. */
export class NotReadyError extends Error {
  constructor(
    readonly processName: string,
    readonly exit: ExitStatus | null,
    message: string,
  ) {
    super(message);
    this.name = 'NotReadyError';
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class ManagedProcess {
  /** Its last output lines (both streams, in arrival order). */
  readonly tail: string[] = [];
  /** Resolves when it has exited. */
  readonly exit: Promise<ExitStatus>;
  /** Resolves once it has exited and its output is read (a second at most: a process it started may hold the pipes). */
  readonly ended: Promise<void>;

  private constructor(
    readonly name: string,
    readonly proc: ChildProcess,
    private readonly group: boolean,
    keepLines: number,
    onLine: ManagedProcessOptions['onLine'],
  ) {
    const closed = new Promise<void>((r) => proc.once('close', () => r()));
    this.exit = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
    this.ended = this.exit.then(() => Promise.race([closed, sleep(1000)]));
    for (const [stream, input] of [['stdout', proc.stdout], ['stderr', proc.stderr]] as const) {
      if (input === null) continue;
      createInterface({ input }).on('line', (line) => {
        this.tail.push(line);
        if (this.tail.length > keepLines) this.tail.shift();
        onLine?.(line, stream, this);
      });
    }
  }

  /** Starts it; resolves once it runs, rejects with the spawn error (e.g. ENOENT for a missing command). */
  static spawn(opts: ManagedProcessOptions): Promise<ManagedProcess> {
    return new Promise((resolve, reject) => {
      const proc = spawn(opts.command, opts.args, {
        env: opts.env ?? process.env,
        stdio: ['ignore', 'pipe', 'pipe', ...(opts.extraStdio ?? [])],
        detached: opts.detached ?? false,
      });
      proc.once('error', reject);
      proc.once('spawn', () => {
        proc.off('error', reject);
        proc.on('error', () => {}); // kill() on a dead child must not throw
        const p = new ManagedProcess(opts.name, proc, opts.detached ?? false, opts.keepLines ?? 30, opts.onLine);
        opts.onSpawn?.(p);
        resolve(p);
      });
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get exited(): boolean {
    return this.proc.exitCode !== null || this.proc.signalCode !== null;
  }

  /** Sends `signal`; SIGKILL to a process in its own group kills the group. */
  kill(signal: NodeJS.Signals): void {
    if (this.exited) return;
    if (this.group && signal === 'SIGKILL') {
      try {
        process.kill(-this.pid, signal);
        return;
      } catch {
        // the group is gone: the process alone, below
      }
    }
    this.proc.kill(signal);
  }

  /**
   * Polls `probe` every `intervalMs` until it holds; throws NotReadyError if the process exits first
   * (once its last lines are read) or after `timeoutMs`. `what` names the wait in the timeout message.
   */
  async waitReady(what: string, probe: () => Promise<boolean>, timeoutMs: number, intervalMs = 50): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exited) {
        await this.ended;
        const exit = { code: this.proc.exitCode, signal: this.proc.signalCode };
        throw new NotReadyError(this.name, exit, `${this.name}: process exited with ${exit.code ?? exit.signal} before ready:\n${this.tail.join('\n')}`);
      }
      if (await probe().catch(() => false)) return;
      if (Date.now() > deadline) throw new NotReadyError(this.name, null, `${this.name}: not ready within ${timeoutMs / 1000} s (${what}):\n${this.tail.join('\n')}`);
      await sleep(intervalMs);
    }
  }

  /**
   * Sends `signal` and resolves once it has exited; if it is still running after `graceMs`, calls
   * `onOverdue` and SIGKILLs it (its group, if it has one). No escalation without `graceMs`.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs?: number, onOverdue?: () => void): Promise<ExitStatus> {
    if (this.exited) return this.exit;
    this.kill(signal);
    const timer =
      graceMs === undefined
        ? null
        : setTimeout(() => {
            onOverdue?.();
            this.kill('SIGKILL');
          }, graceMs);
    const status = await this.exit;
    if (timer !== null) clearTimeout(timer);
    return status;
  }
}
