/**
 * `pnpm start` as a real process tree for the launcher tests: starts it from the repository root
 * (its own process group, so a test can always clean up), reads the tree from /proc, and waits,
 * event by event, for processes to go and ports to close.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { freePort, TIER_MAIN } from '@zax/service';
import { until as untilShared } from '../support/until.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const LAUNCHER = `${ROOT}scripts/dist/start.js`;
export const CORE_MAIN = TIER_MAIN.core;
export const GATEKEEPER_MAIN = TIER_MAIN.gatekeeper;

/** Upper bound of every wait: generous, the machine may be busy. Never a performance figure. */
export const PATIENCE_MS = 60_000;

/** Environment without anything the test machine may have set for the relay (no REDIS_URL). */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const k of ['PATH', 'HOME', 'LANG', 'TMPDIR', 'XDG_CONFIG_HOME', 'XDG_DATA_HOME', 'XDG_CACHE_HOME', 'PNPM_HOME']) {
    if (process.env[k] !== undefined) env[k] = process.env[k];
  }
  return { ...env, ...extra };
}

export interface Proc {
  readonly child: ChildProcess;
  readonly out: () => string;
  readonly err: () => string;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first match of `re` in stdout + stderr; rejects if the process exits first. */
  waitFor(re: RegExp): Promise<RegExpMatchArray>;
}

/** Spawns `command` in its own process group with piped output. */
export function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Proc {
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  let err = '';
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const watchers = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of watchers) w();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    for (const w of watchers) w();
  });
  return {
    child,
    out: () => out,
    err: () => err,
    exit,
    waitFor(re) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = (out + err).match(re);
          if (m === null) return;
          watchers.delete(check);
          clearTimeout(timer);
          resolve(m);
        };
        const timer = setTimeout(() => {
          watchers.delete(check);
          reject(new Error(`no ${re} within ${PATIENCE_MS} ms:\n${out}\n${err}`));
        }, PATIENCE_MS);
        watchers.add(check);
        check();
        void exit.then(() =>
          // the last output may arrive just after the exit
          setImmediate(() => {
            check();
            if (watchers.delete(check)) {
              clearTimeout(timer);
              reject(new Error(`exited before ${re}:\n${out}\n${err}`));
            }
          }),
        );
      });
    },
  };
}

interface ProcInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly state: string;
  readonly cmdline: string;
}

function procInfo(pid: number): ProcInfo | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    return { pid, ppid: Number(ppid), state: state ?? '?', cmdline };
  } catch {
    return null; // gone (or going) between the listing and the read
  }
}

/** Every process below `root` (not `root` itself), from /proc. */
export function descendants(root: number): ProcInfo[] {
  const all = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((d) => procInfo(Number(d)))
    .filter((p): p is ProcInfo => p !== null);
  const found: ProcInfo[] = [];
  const parents = new Set([root]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all) {
      if (parents.has(p.ppid) && !parents.has(p.pid)) {
        parents.add(p.pid);
        found.push(p);
        grew = true;
      }
    }
  }
  return found;
}

/** Alive: exists and is not a zombie (a zombie holds no port and runs nothing). */
export function alive(pid: number): boolean {
  const p = procInfo(pid);
  return p !== null && p.state !== 'Z';
}

/** The fd's target ("socket:[123]", "pipe:[456]", "/dev/null"), or null. */
export function fdTarget(pid: number, fd: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/fd/${fd}`);
  } catch {
    return null;
  }
}

/** The targets of all of a process's fds. */
export function fdTargets(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/fd`).map((fd) => fdTarget(pid, Number(fd)) ?? '');
  } catch {
    return [];
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it holds (test/support/until.ts), with this folder's patience. */
export const until = (what: string, check: () => boolean | Promise<boolean>): Promise<true> =>
  untilShared(what, async () => (await check()) || undefined, PATIENCE_MS);

/** Does something accept TCP connections on 127.0.0.1:port? */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** Can a new server listen on 127.0.0.1:port? */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A server holding a port, for "port in use" tests. */
export async function occupyPort(): Promise<{ port: number; close(): Promise<void> }> {
  const srv = net.createServer((s) => s.destroy());
  const port = await freePort();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, '0.0.0.0', () => resolve());
  });
  return { port, close: () => new Promise((resolve) => srv.close(() => resolve())) };
}

/** Kills whatever is left of a test's processes (each in its own group), without waiting. */
export function killAll(pids: Iterable<number>): void {
  for (const pid of pids) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // not a group leader, or gone
    }
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}
