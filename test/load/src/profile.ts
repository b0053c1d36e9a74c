/**
 * `pnpm bench --profile DIR`: the relay's services run under `node --cpu-prof` (one V8 CPU profile
 * per process, written when it exits), and this file sums each profile's self time into a few
 * categories, so a report can say where a tier's CPU goes (syscalls, HTTP, Redis client, crypto,
 * relay code, …) and what would lift a bound. The `.cpuprofile` files stay in DIR for a flame
 * graph (Chrome DevTools, speedscope).
 *
 * A profile covers the process's whole life, start-up and warm-up included: profile one scenario
 * at one concurrency with a long enough window. Start-up (module compilation) is its own category.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export const CATEGORIES = [
  'socket I/O (writes, reads: syscalls)',
  'node:http',
  'undici (gatekeeper → core)',
  'ioredis',
  'crypto (sodium-native, node:crypto)',
  'streams, events, timers, promises',
  'metrics and logs',
  'relay code',
  'garbage collection',
  'start-up (module compilation)',
  'other',
] as const;
export type Category = (typeof CATEGORIES)[number];

/** Native functions that are the write/read syscalls of sockets (and their string encoding). */
const SOCKET_NATIVES = new Set(['writev', 'writeUtf8String', 'writeLatin1String', 'writeAsciiString', 'writeBuffer', 'writeUcs2String', 'onStreamRead', 'readStart', 'readStop', 'shutdown']);
const STARTUP = /^(wrapSafe|parseCJS|parseSource|compileSourceTextModule|compileForInternalLoader|compileFunction|internalCompileFunction|link|instantiate|evaluate|readFileSync|realpathSync)$/;

export function categorize(f: CallFrame): Category | null {
  const { functionName: fn, url } = f;
  if (fn === '(idle)' || fn === '(root)') return null;
  if (fn === '(garbage collector)') return 'garbage collection';
  if (url === '' && SOCKET_NATIVES.has(fn)) return 'socket I/O (writes, reads: syscalls)';
  if (STARTUP.test(fn) || url.includes('cjs-module-lexer') || url.includes('internal/modules/')) return 'start-up (module compilation)';
  if (url.includes('/undici/')) return 'undici (gatekeeper → core)';
  if (url.includes('/ioredis/') || url.includes('redis-parser') || url.includes('cluster-key-slot') || url.includes('standard-as-callback')) return 'ioredis';
  if (url.includes('sodium-native') || url.includes('tweetnacl') || url.startsWith('node:crypto') || url.startsWith('node:internal/crypto')) return 'crypto (sodium-native, node:crypto)';
  if (url.includes('prom-client') || url.includes('/pino') || url.includes('sonic-boom') || url.includes('tdigest') || url.includes('bintrees')) return 'metrics and logs';
  if (/packages\/[a-z]+\/dist\//.test(url)) return 'relay code';
  if (url.startsWith('node:_http') || url === 'node:http' || url.startsWith('node:internal/http')) return 'node:http';
  if (url.startsWith('node:') || fn === 'runMicrotasks' || fn === '(program)') return 'streams, events, timers, promises';
  return 'other';
}

export interface ProfileSummary {
  readonly file: string;
  /** Busy (non-idle) milliseconds in the profile. */
  readonly busyMs: number;
  readonly byCategory: Readonly<Record<Category, number>>;
  /** Heaviest functions by self time: [label, ms]. */
  readonly top: readonly (readonly [string, number])[];
}

export function summarize(file: string, topN = 12): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const byCategory = Object.fromEntries(CATEGORIES.map((c) => [c, 0])) as Record<Category, number>;
  const byFunction = new Map<string, number>();
  let busyUs = 0;
  for (const node of p.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    const cat = categorize(node.callFrame);
    if (us === 0 || cat === null) continue;
    busyUs += us;
    byCategory[cat] += us / 1000;
    const where = node.callFrame.url === '' ? '(native)' : node.callFrame.url.split('/').slice(-2).join('/');
    const label = `${node.callFrame.functionName || '(anonymous)'} ${where}`;
    byFunction.set(label, (byFunction.get(label) ?? 0) + us / 1000);
  }
  const top = [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, topN);
  return { file, busyMs: busyUs / 1000, byCategory, top };
}

/** The `.cpuprofile` files in `dir` (one per process that exited). */
export function profilesIn(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => join(dir, f));
  } catch {
    return [];
  }
}

export function printSummary(label: string, s: ProfileSummary, out: (line: string) => void): void {
  out(`\nprofile ${label}: ${s.busyMs.toFixed(0)} ms busy (${s.file})`);
  for (const c of CATEGORIES) {
    const ms = s.byCategory[c];
    if (ms > 0) out(`  ${((ms / s.busyMs) * 100).toFixed(1).padStart(5)}%  ${c}`);
  }
  out('  heaviest functions (self time):');
  for (const [fn, ms] of s.top) out(`  ${((ms / s.busyMs) * 100).toFixed(1).padStart(5)}%  ${fn}`);
}
