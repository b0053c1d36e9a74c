/**
 * CPU accounting from /proc/<pid>/stat (utime + stime, in clock ticks): for a set of pids and all
 * their descendants (so a core that forks node:cluster workers is counted whole), sampled before and
 * after a run. Processes that exit during the run lose their ticks; the report says how many did.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let clkTck: number | null = null;

/** Clock ticks per second (`getconf CLK_TCK`, 100 on Linux almost everywhere). */
export function clockTicks(): number {
  if (clkTck === null) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

interface ProcStat {
  pid: number;
  ppid: number;
  ticks: number;
  starttime: number;
}

function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); field k is rest[k - 3].
  return { pid, ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]), starttime: Number(rest[19]) };
}

export function pidAlive(pid: number): boolean {
  return readStat(pid) !== null;
}

/** The pids and every descendant, with their CPU ticks so far. Key: pid:starttime (pid reuse safe). */
function treeTicks(roots: readonly number[]): Map<string, number> {
  const all: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s !== null) all.push(s);
  }
  const children = new Map<number, ProcStat[]>();
  for (const s of all) {
    const list = children.get(s.ppid) ?? [];
    list.push(s);
    children.set(s.ppid, list);
  }
  const out = new Map<string, number>();
  const visit = (s: ProcStat): void => {
    out.set(`${s.pid}:${s.starttime}`, s.ticks);
    for (const c of children.get(s.pid) ?? []) visit(c);
  };
  for (const pid of roots) {
    const s = all.find((x) => x.pid === pid);
    if (s !== undefined) visit(s);
  }
  return out;
}

export class CpuMeter {
  private before = new Map<string, number>();
  constructor(readonly pids: readonly number[]) {}

  start(): void {
    this.before = treeTicks(this.pids);
  }

  /** CPU milliseconds used since start() by the pids and their descendants. */
  stop(): { ms: number; processes: number; exited: number } {
    const after = treeTicks(this.pids);
    let ticks = 0;
    for (const [key, t] of after) ticks += t - (this.before.get(key) ?? 0);
    let exited = 0;
    for (const key of this.before.keys()) if (!after.has(key)) exited++;
    return { ms: (ticks * 1000) / clockTicks(), processes: after.size, exited };
  }
}
