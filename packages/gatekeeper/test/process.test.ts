/** The compiled processes: gatekeeper main.ts (config refusal, listening line, SIGTERM) and the launcher. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { b64 } from '@zax/protocol';
import { dropPrefix, freshPrefix } from '../../../test/support/prefix.js';
import { post, request } from './helpers.js';
import { until } from '../../../test/support/until.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const gatekeeperMain = `${ROOT}packages/gatekeeper/dist/main.js`;
const coreMain = `${ROOT}packages/core/dist/main.js`;
const launcher = `${ROOT}scripts/dist/start.js`;

interface Proc {
  child: ChildProcess;
  out: string;
  err: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first stdout match of `re`. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

// The test command builds first (`pnpm test` runs `tsc -b`): a missing file is a failure, never a skip.
beforeAll(() => {
  for (const file of [gatekeeperMain, coreMain, launcher]) expect(existsSync(file), `${file} is missing: run \`pnpm build\` first`).toBe(true);
});

const running: Proc[] = [];
const prefixes: string[] = [];

/** Environment without anything the test machine may have set for the relay. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const k of ['PATH', 'HOME', 'LANG', 'TMPDIR']) if (process.env[k] !== undefined) env[k] = process.env[k];
  return { ...env, ...extra };
}

function run(file: string, env: NodeJS.ProcessEnv): Proc {
  const child = spawn(process.execPath, [file], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const p: Proc = {
    child,
    out: '',
    err: '',
    exit: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
    waitFor(re, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const m = p.out.match(re);
          if (m) {
            clearTimeout(timer);
            child.stdout?.off('data', check);
            resolve(m);
          }
          return m !== null;
        };
        const timer = setTimeout(() => reject(new Error(`no ${re} within ${timeoutMs} ms:\n${p.out}\n${p.err}`)), timeoutMs);
        if (!check()) child.stdout?.on('data', check);
        void p.exit.then(() => setTimeout(() => check() || reject(new Error(`exited before ${re}:\n${p.out}\n${p.err}`)), 50));
      });
    },
  };
  child.stdout?.on('data', (d: Buffer) => (p.out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (p.err += d.toString()));
  running.push(p);
  return p;
}

afterEach(async () => {
  for (const p of running.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) {
      // Gracefully first, so a launcher stops its children; SIGKILL only if it does not exit.
      p.child.kill('SIGTERM');
      const timer = setTimeout(() => p.child.kill('SIGKILL'), 10_000);
      await p.exit;
      clearTimeout(timer);
    }
  }
  for (const prefix of prefixes.splice(0)) await dropPrefix(inject('redisUrl'), prefix);
});

const portOpen = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });

describe('gatekeeper process (dist/main.js)', () => {
  it('refuses to start with DIFFICULTY outside 0..255, listing the problem, exit 1', async () => {
    const p = run(gatekeeperMain, cleanEnv({ REDIS_URL: inject('redisUrl'), INTERNAL_SECRET: 'x'.repeat(16), DIFFICULTY: '256' }));
    expect(await p.exit).toEqual({ code: 1, signal: null });
    expect(p.err).toContain('DIFFICULTY: must be a whole number from 0 to 255, got "256"');
  });

  it('logs "listening" with its port, serves, and drains and exits 0 on SIGTERM', async () => {
    const prefix = freshPrefix('gk-main');
    prefixes.push(prefix);
    const p = run(
      gatekeeperMain,
      cleanEnv({ REDIS_URL: inject('redisUrl'), REDIS_PREFIX: prefix, INTERNAL_SECRET: 'x'.repeat(16), PORT: '0', HOST: '127.0.0.1' }),
    );
    const m = await p.waitFor(/"port":(\d+),[^\n]*"msg":"listening"/);
    const port = Number(m[1]);
    expect((await request(port, { method: 'GET', path: '/livez' })).status).toBe(200);
    // Ready once its Redis connection is (however long that takes here): then it serves.
    while ((await request(port, { method: 'GET', path: '/readyz' })).status !== 200) await new Promise((r) => setTimeout(r, 50));
    const r = await post(port, '/start_session', b64(Buffer.alloc(32, 5)));
    expect(r.status).toBe(200);
    const redis = new Redis(inject('redisUrl'));
    try {
      // the handshake record and the caller's throttle bucket, all under the edge prefix
      expect((await redis.keys(`${prefix}*`)).every((k) => k.startsWith(`${prefix}edge:hs:`) || k.startsWith(`${prefix}edge:tb:h:`))).toBe(true);
      expect(await redis.keys(`${prefix}edge:hs:*`)).toHaveLength(1);
    } finally {
      redis.disconnect();
    }
    p.child.kill('SIGTERM');
    expect(await p.exit).toEqual({ code: 0, signal: null });
    // logs are JSON lines and hold no token
    for (const line of p.out.trim().split('\n')) expect(() => JSON.parse(line)).not.toThrow();
    expect(p.out).not.toContain(r.body.split('\r\n')[0]);
    expect(p.out).not.toContain(b64(Buffer.alloc(32, 5)));
  });
});

describe('launcher (scripts/dist/start.js)', () => {
  it('exits 1 with a clear message when REDIS_URL is unset and redis-server is not installed', async () => {
    // The launcher runs node by its absolute path; only redis-server is looked up on PATH.
    const p = run(launcher, cleanEnv({ PATH: '/nonexistent' }));
    expect((await p.exit).code).toBe(1);
    expect(p.err).toContain('redis-server was not found');
    expect(p.err).toContain('apt-get install redis-server');
    expect(p.err).toContain('REDIS_URL');
  });

  it(
    'runs core + gatekeeper on a private redis-server, serves /start_session, and stops cleanly on SIGTERM',
    async () => {
      // Port 0: the OS picks (a port picked here and bound later by the launcher could be taken
      // meanwhile by any process, the launcher's own redis-server included).
      const p = run(launcher, cleanEnv({ PORT: '0', CORE_PORT: '0', REDIS_PREFIX: freshPrefix('launch') }));
      const port = Number((await p.waitFor(/Zax relay ready: http:\/\/127\.0\.0\.1:(\d+)\n/, 60_000))[1]);
      const corePort = Number((await p.waitFor(/^\[core\] \{.*"port":(\d+).*"msg":"listening"/m))[1]);
      const redisPort = Number((await p.waitFor(/redis-server on 127\.0\.0\.1:(\d+)/))[1]);
      expect(await portOpen(redisPort)).toBe(true);
      expect(p.out).toMatch(/^\[core\] \{.*"msg":"listening"/m);
      expect(p.out).toMatch(/^\[gatekeeper\] \{.*"msg":"listening"/m);

      const r = await post(port, '/start_session', b64(Buffer.alloc(32, 8)));
      expect(r.status).toBe(200);
      expect(r.body).toMatch(/^[A-Za-z0-9+/]{43}=\r\n0$/);

      p.child.kill('SIGTERM');
      expect(await p.exit).toEqual({ code: 0, signal: null });
      expect(await portOpen(redisPort)).toBe(false);
      expect(await portOpen(port)).toBe(false);
      expect(await portOpen(corePort)).toBe(false);
      // stop order: gatekeeper, then core, then Redis
      const order = ['SIGTERM: stopping', 'stopping gatekeeper', 'stopping core', 'stopping redis'].map((s) => p.out.indexOf(`[launcher] ${s}`));
      expect(order[0]).toBeGreaterThan(-1);
      expect([...order].sort((a, b) => a - b)).toEqual(order);
    },
    90_000,
  );

  it(
    'runs two launchers side by side; a child that dies is restarted by its launcher and the other is left alone',
    async () => {
      const start = async () => {
        const p = run(launcher, cleanEnv({ PORT: '0', CORE_PORT: '0', REDIS_PREFIX: freshPrefix('launch') }));
        return { p, port: Number((await p.waitFor(/Zax relay ready: http:\/\/127\.0\.0\.1:(\d+)\n/, 60_000))[1]) };
      };
      const [a, b] = await Promise.all([start(), start()]);
      for (const { port } of [a, b]) expect((await post(port, '/start_session', b64(Buffer.alloc(32, 3)))).status).toBe(200);

      const aCorePid = Number((await a.p.waitFor(/started core \(pid (\d+)\)/))[1]);
      const aRedisPort = Number((await a.p.waitFor(/redis-server on 127\.0\.0\.1:(\d+)/))[1]);
      process.kill(aCorePid, 'SIGKILL');
      await until('the launcher restarts its core', () => a.p.err.includes(`core (pid ${aCorePid}) exited unexpectedly (signal SIGKILL); restarting`) && a.p.out.includes('core is ready again'), 60_000).catch((e: Error) => {
        throw new Error(`${e.message}\nstdout:\n${a.p.out}\nstderr:\n${a.p.err}`);
      });
      expect((await post(a.port, '/start_session', b64(Buffer.alloc(32, 5)))).status).toBe(200);

      expect((await post(b.port, '/start_session', b64(Buffer.alloc(32, 4)))).status).toBe(200);
      for (const { p } of [a, b]) p.child.kill('SIGTERM');
      for (const { p } of [a, b]) expect(await p.exit).toEqual({ code: 0, signal: null });
      expect(await portOpen(a.port)).toBe(false);
      expect(await portOpen(aRedisPort)).toBe(false);
    },
    90_000,
  );
});
