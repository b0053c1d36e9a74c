/**
 * CORE_WORKERS (cluster.ts, main.ts): the setting, the restart backoff, and the built process
 * (dist/main.js) with real workers on the test Redis — one "listening" line once all workers
 * listen, requests spread over the workers, one load replica per worker, metrics aggregated over
 * the process group, scheduled jobs run once per deployment, a killed worker replaced, SIGTERM and
 * the launcher's IPC channel closing drain everything (exit 0), a failed start exits 1, and with
 * CORE_WORKERS=1 no primary at all.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { INTERNAL_SECRET_HEADER } from '@zax/protocol';
import { dropPrefix, freshPrefix } from '../../../test/support/prefix.js';
import { until } from '../../../test/support/until.js';
import { restartDelayMs, RESTART_MAX_MS } from '../src/cluster.js';
import { autoWorkers, ConfigError, loadConfig } from '../src/config.js';
import { SECRET, redisUrl } from './helpers.js';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

interface Line {
  msg: string;
  pid?: number;
  port?: number;
  adminPort?: number;
  route?: string;
  [k: string]: unknown;
}

interface Proc {
  readonly child: ChildProcess;
  readonly prefix: string;
  lines(): Line[];
  stderr(): string;
  readonly exit: Promise<number | null>;
}

const running: Proc[] = [];

afterEach(async () => {
  // Whatever a failed test left: the primary and any worker it forked.
  for (const p of running.splice(0)) {
    const pids = p.child.pid === undefined ? [] : [p.child.pid, ...childrenOf(p.child.pid)];
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await dropPrefix(redisUrl(), p.prefix);
  }
});

function start(env: Record<string, string>, ipc = false): Proc {
  const prefix = freshPrefix('cluster');
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', REDIS_URL: redisUrl(), INTERNAL_SECRET: SECRET, REDIS_PREFIX: prefix, CORE_PORT: '0', ...env },
    stdio: ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const p: Proc = {
    child,
    prefix,
    lines: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Line),
    stderr: () => err,
    exit,
  };
  running.push(p);
  return p;
}

const byMsg = (p: Proc, msg: string): Line[] => p.lines().filter((l) => l.msg === msg);

/** The "listening" line (port from it), failing if it appears more than once. */
async function listening(p: Proc): Promise<Line> {
  const line = await until('"listening"', () => {
    if (p.child.exitCode !== null) throw new Error(`exited ${p.child.exitCode}: ${p.stderr()}`);
    return byMsg(p, 'listening')[0];
  });
  expect(byMsg(p, 'listening')).toHaveLength(1);
  return line;
}

/** Pids whose parent is `pid` (Linux /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(d));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** One request on a fresh connection (keep-alive would pin it to one worker). */
function request(port: number, path: string, opts: { method?: string; secret?: boolean; body?: string } = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: opts.method ?? 'GET',
        agent: false,
        headers: { connection: 'close', ...(opts.secret === true ? { [INTERNAL_SECRET_HEADER]: SECRET } : {}) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** The value of a sample line (`name{labels} value`, or `name value`) in a metrics text, or null. */
function sample(text: string, series: string): number | null {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? null : Number(line.slice(series.length + 1));
}

describe('CORE_WORKERS setting', () => {
  const base = { REDIS_URL: 'redis://127.0.0.1:6379', INTERNAL_SECRET: '0123456789abcdef' };
  const problems = (v: string): string[] => {
    try {
      loadConfig({ ...base, CORE_WORKERS: v });
      return [];
    } catch (e) {
      if (e instanceof ConfigError) return [...e.problems];
      throw e;
    }
  };

  it('defaults to auto: 1 up to 2 CPUs, else half of them', () => {
    expect([1, 2, 3, 4, 5, 8, 16, 64].map(autoWorkers)).toEqual([1, 1, 1, 2, 2, 4, 8, 32]);
    expect(loadConfig(base, { cpus: () => 2 }).workers).toBe(1);
    expect(loadConfig(base, { cpus: () => 8 }).workers).toBe(4);
    expect(loadConfig({ ...base, CORE_WORKERS: '' }, { cpus: () => 4 }).workers).toBe(2);
    expect(loadConfig({ ...base, CORE_WORKERS: 'auto' }, { cpus: () => 12 }).workers).toBe(6);
  });

  it('takes an explicit count', () => {
    expect(loadConfig({ ...base, CORE_WORKERS: '1' }, { cpus: () => 32 }).workers).toBe(1);
    expect(loadConfig({ ...base, CORE_WORKERS: '3' }, { cpus: () => 2 }).workers).toBe(3);
  });

  it('rejects anything else with a readable problem', () => {
    for (const v of ['0', '-1', '1.5', 'two', 'AUTO', ' 2', '257', '0x2']) {
      const p = problems(v);
      expect(p, v).toHaveLength(1);
      expect(p[0], v).toMatch(/^CORE_WORKERS: /);
    }
  });

  it('backs off restarts exponentially up to a bound', () => {
    expect([1, 2, 3, 4].map(restartDelayMs)).toEqual([250, 500, 1000, 2000]);
    expect(restartDelayMs(50)).toBe(RESTART_MAX_MS);
  });
});

describe('core worker processes', () => {
  it('CORE_WORKERS=1: no primary, the process serves itself', async () => {
    const p = start({ CORE_WORKERS: '1', LOG_LEVEL: 'debug' });
    const line = await listening(p);
    expect(childrenOf(p.child.pid!)).toEqual([]);
    expect((await request(line.port!, '/readyz')).status).toBe(200);
    expect(byMsg(p, 'worker listening')).toEqual([]);
    expect(byMsg(p, 'starting worker processes')).toEqual([]);
    p.child.kill('SIGTERM');
    expect(await p.exit).toBe(0);
  });

  it('CORE_WORKERS=2: shares the port, one replica each, aggregated metrics, jobs once, a killed worker replaced, SIGTERM drains', async () => {
    const p = start({ CORE_WORKERS: '2', CORE_ADMIN_PORT: '0', LOAD_PERIOD_SEC: '1', LOG_LEVEL: 'debug' });
    const line = await listening(p);
    const port = line.port!;
    const primary = p.child.pid!;
    const workers = byMsg(p, 'worker listening').map((l) => l.pid!);
    expect(new Set(workers).size).toBe(2);
    expect(childrenOf(primary).sort()).toEqual([...workers].sort());
    expect(workers).not.toContain(primary);
    const admin = byMsg(p, 'admin listening');
    expect(admin).toHaveLength(1);
    const adminPort = admin[0]!.adminPort!;

    // Every connection goes to the next worker (round-robin): both serve.
    for (let i = 0; i < 20; i++) expect((await request(port, '/command', { method: 'POST', secret: true, body: 'x' })).status).toBe(400);
    const servedBy = new Set(p.lines().filter((l) => l.msg === 'request' && l.route === 'command').map((l) => l.pid));
    expect(servedBy).toEqual(new Set(workers));

    // The load report counts both workers as replicas, and all the commands.
    const report = await until('a report with 2 replicas', async () => {
      const r = await request(port, '/internal/load', { secret: true });
      const body = JSON.parse(r.text) as { replicas: number };
      return body.replicas === 2 && body;
    });
    expect(report.replicas).toBe(2);

    // One scrape shows the process group: the sum of both workers' requests, the worker count.
    let text = (await request(adminPort, '/metrics')).text;
    expect(sample(text, 'zax_core_http_request_duration_seconds_count{route="command",status="400"}')).toBe(20);
    expect(sample(text, 'zax_core_workers')).toBe(2);
    expect(sample(text, 'zax_core_load_replicas')).toBe(2);
    expect(text.split('\n').filter((l) => l.startsWith('zax_core_event_loop_utilization '))).toHaveLength(1);
    expect((await request(adminPort, '/livez')).status).toBe(200);
    expect((await request(adminPort, '/readyz')).status).toBe(200);

    // The load job is scheduled by both workers but runs once per 1-s period, not twice: each run
    // logs the period it aggregated (either worker may run it), and no period comes twice.
    const loadRuns = (): Line[] => p.lines().filter((l) => l.msg === 'job done' && l.job === 'load-aggregate');
    await until('three load job runs', () => loadRuns().length >= 3);
    const periods = loadRuns().map((l) => l.period as number);
    expect(new Set(periods).size).toBe(periods.length);
    text = (await request(adminPort, '/metrics')).text;
    expect(sample(text, 'zax_core_jobs_total{job="load-aggregate",outcome="completed"}')).toBeGreaterThanOrEqual(3);

    // A worker killed outright is forked again; the service keeps serving, "listening" stays single.
    process.kill(workers[0]!, 'SIGKILL');
    const again = await until('a replacement worker', () => byMsg(p, 'worker listening again')[0]);
    expect(workers).not.toContain(again.pid);
    expect(byMsg(p, 'worker exited; restarting it')).toHaveLength(1);
    expect(byMsg(p, 'listening')).toHaveLength(1);
    const now = childrenOf(primary);
    expect(now).toHaveLength(2);
    expect(now).toContain(workers[1]);
    for (let i = 0; i < 4; i++) expect((await request(port, '/readyz')).status).toBe(200);
    text = (await request(adminPort, '/metrics')).text;
    expect(sample(text, 'zax_core_worker_restarts_total')).toBe(1);
    expect(sample(text, 'zax_core_workers')).toBe(2);

    // SIGTERM to the primary: every worker drains and exits, then the primary exits 0. A request
    // still sending its body is answered first. "100 Continue" tells the test that a worker has the
    // request (node:http sends it as it hands the request to the app) before SIGTERM goes out.
    const slow = http.request({
      host: '127.0.0.1',
      port,
      path: '/command',
      method: 'POST',
      agent: false,
      headers: { [INTERNAL_SECRET_HEADER]: SECRET, expect: '100-continue' },
    });
    let done = false;
    const answered = new Promise<number>((resolve, reject) => {
      slow.on('response', (res) => {
        done = true;
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      slow.on('error', reject);
    });
    const inWorker = new Promise<void>((resolve) => slow.once('continue', () => resolve()));
    slow.flushHeaders();
    await inWorker;
    slow.write('x');
    p.child.kill('SIGTERM');
    await until('the workers shutting down', () => byMsg(p, 'shutting down').length === 3);
    // The worker without a request stops all the way; the one holding the open request waits for it.
    await until('the idle worker stopped', () => byMsg(p, 'stopped').length >= 1);
    expect(byMsg(p, 'stopped')).toHaveLength(1);
    expect(p.child.exitCode).toBeNull();
    expect(done).toBe(false);
    slow.end('y');
    expect(await answered).toBe(400);
    expect(await p.exit).toBe(0);
    for (const pid of now) expect(alive(pid)).toBe(false);
    expect(byMsg(p, 'stopped')).toHaveLength(3);
  }, 60_000);

  it('CORE_WORKERS=2 without an admin port: /metrics on CORE_PORT is the aggregate; the launcher going away stops everything', async () => {
    const p = start({ CORE_WORKERS: '2' }, true);
    const { port } = await listening(p);
    const workers = childrenOf(p.child.pid!);
    expect(workers).toHaveLength(2);
    for (let i = 0; i < 6; i++) expect((await request(port!, '/livez')).status).toBe(200);
    // Whichever worker answers, the text is the whole group's.
    for (let i = 0; i < 2; i++) {
      const text = (await request(port!, '/metrics')).text;
      expect(sample(text, 'zax_core_workers')).toBe(2);
      expect(sample(text, 'zax_core_http_request_duration_seconds_count{route="livez",status="200"}')).toBe(6);
    }
    p.child.disconnect(); // what the launcher's death looks like to the core
    expect(await p.exit).toBe(0);
    for (const pid of workers) expect(alive(pid)).toBe(false);
  }, 40_000);

  it('a worker that cannot start stops the core with exit 1', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    try {
      const p = start({ CORE_WORKERS: '2', CORE_ADMIN_PORT: String((busy.address() as AddressInfo).port) });
      expect(await p.exit).toBe(1);
      expect(byMsg(p, 'listening')).toEqual([]);
      expect(byMsg(p, 'worker exited before the core was ready; stopping').length).toBeGreaterThanOrEqual(1);
      const forked = byMsg(p, 'worker started').map((l) => l.pid!);
      expect(forked.length).toBeGreaterThanOrEqual(1);
      await until('workers gone', () => forked.every((pid) => !alive(pid)));
    } finally {
      busy.close();
    }
  }, 40_000);

  it('refuses a bad CORE_WORKERS with exit 1 before forking', async () => {
    const p = start({ CORE_WORKERS: '0' });
    expect(await p.exit).toBe(1);
    expect(p.stderr()).toContain('CORE_WORKERS');
    expect(p.lines()).toEqual([]);
  });
});
