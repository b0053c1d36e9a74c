/**
 * `pnpm start` supervises: a core, gatekeeper or private redis-server that dies on its own is
 * started again, the private Redis (and so the mail) outlives a core or gatekeeper crash, restarted
 * services still hold the Redis watchdog's pipe, and the stop is as orderly as ever afterwards. Its
 * private Redis has the configured `maxmemory`. Waits are event-driven (generous upper bound); no
 * duration is asserted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Mailbox, generateIdentity } from '@zax/client';
import { freePort } from '../support/redis-server.js';
import { LAUNCHER, alive, cleanEnv, descendants, fdTarget, killAll, portOpen, run, until, type Proc } from './tree.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

interface Launched {
  readonly p: Proc;
  readonly url: string;
  readonly redisPort: number;
}

/** The launcher (as `pnpm start` runs it, without the build) on free ports, ready. */
async function launch(extra: Record<string, string> = {}): Promise<Launched> {
  const [port, corePort] = [await freePort(), await freePort()];
  const p = run(process.execPath, [LAUNCHER], cleanEnv({ PORT: String(port), CORE_PORT: String(corePort), HOST: '127.0.0.1', ...extra }));
  cleanup.push(() => killAll([p.child.pid!, ...descendants(p.child.pid!).map((d) => d.pid), ...(seen.get(p) ?? [])]));
  await p.waitFor(new RegExp(`Zax relay ready: http://127\\.0\\.0\\.1:${port}\\n`));
  const redisPort = Number((await p.waitFor(/redis-server on 127\.0\.0\.1:(\d+)/))[1]);
  return { p, url: `http://127.0.0.1:${port}`, redisPort };
}

/** Every child pid a test looked up, per launcher: killed at the end even if the launcher went first. */
const seen = new Map<Proc, number[]>();

/** The pid of the launcher's live child running `what` (`redis`, `core`, `gatekeeper`). */
function pidOf(p: Proc, what: 'redis' | 'core' | 'gatekeeper'): number {
  const match = { redis: (c: string) => c.startsWith('redis-server'), core: (c: string) => c.endsWith('packages/core/dist/main.js'), gatekeeper: (c: string) => c.endsWith('packages/gatekeeper/dist/main.js') }[what];
  const found = descendants(p.child.pid!).filter((d) => d.ppid === p.child.pid && d.state !== 'Z' && match(d.cmdline));
  expect(found, what).toHaveLength(1);
  seen.set(p, [...(seen.get(p) ?? []), ...descendants(p.child.pid!).map((d) => d.pid)]);
  return found[0]!.pid;
}

/** Keeps asking until the relay answers (a 503 or a refused connection while a service restarts). */
async function eventually<T>(what: string, f: () => Promise<T>): Promise<T> {
  let value: T | undefined;
  await until(what, async () => {
    try {
      value = await f();
      return true;
    } catch {
      return false;
    }
  });
  return value!;
}

async function configGet(port: number, key: string): Promise<string | undefined> {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await r.connect();
    const [, value] = (await r.config('GET', key)) as [string, string];
    return value;
  } finally {
    r.disconnect();
  }
}

/** SIGTERM to the launcher: it exits 0 after stopping gatekeeper, core, Redis in order; nothing left. */
async function stopAndExpectClean(l: Launched): Promise<void> {
  const tree = descendants(l.p.child.pid!).map((d) => d.pid);
  const from = l.p.out().length;
  l.p.child.kill('SIGTERM');
  expect(await l.p.exit).toEqual({ code: 0, signal: null });
  for (const pid of tree) await until(`pid ${pid} gone`, () => !alive(pid));
  expect(await portOpen(l.redisPort)).toBe(false);
  const out = l.p.out().slice(from);
  const steps = [/\[launcher\] stopping gatekeeper/, /\[launcher\] stopping core/, /\[launcher\] stopping redis/].map((re) => out.search(re));
  expect(steps.every((s) => s >= 0), out).toBe(true);
  expect([...steps].sort((a, b) => a - b)).toEqual(steps);
}

describe('pnpm start supervises its services', () => {
  it.each([['core'], ['gatekeeper']] as const)(
    'SIGKILL to the %s: restarted after a backoff, Redis untouched, the mail stored before is still there; the stop stays orderly',
    async (victim) => {
      const l = await launch();
      const alice = generateIdentity();
      const bob = generateIdentity();
      const a = Mailbox.create({ url: l.url, identity: alice, guests: [bob.publicKey] });
      const b = Mailbox.create({ url: l.url, identity: bob, guests: [alice.publicKey] });
      await a.send(bob.publicKey, 'sent before the crash');
      expect(await b.count()).toBe(1);

      const redis = pidOf(l.p, 'redis');
      const dead = pidOf(l.p, victim);
      process.kill(dead, 'SIGKILL');
      // One line on stderr: what died, how, and when it comes back.
      await l.p.waitFor(new RegExp(`\\[launcher\\] ${victim} \\(pid ${dead}\\) exited unexpectedly \\(signal SIGKILL\\); restarting it in 0\\.5 s \\(failure 1 in a row`));
      const back = Number((await l.p.waitFor(new RegExp(`\\[launcher\\] ${victim} is ready again \\(pid (\\d+)\\)`)))[1]);
      expect(back).not.toBe(dead);
      expect(pidOf(l.p, victim)).toBe(back);
      expect(pidOf(l.p, 'redis')).toBe(redis);
      // The restarted service holds the watchdog's pipe (fd 4) like the other one does.
      const other = pidOf(l.p, victim === 'core' ? 'gatekeeper' : 'core');
      expect(fdTarget(back, 4)).toMatch(/^socket:/);
      expect(fdTarget(back, 4)).toBe(fdTarget(other, 4));

      // The same mailbox, through the restarted service: the message is still there.
      expect(await eventually('bob counts again', () => b.count())).toBe(1);
      const got = await b.receive();
      expect(got.map((m) => m.text)).toEqual(['sent before the crash']);
      // And new mail flows.
      await eventually('alice sends again', () => a.send(bob.publicKey, 'sent after the restart'));
      expect((await b.receive()).map((m) => m.text)).toContain('sent after the restart');

      await stopAndExpectClean(l);
    },
    120_000,
  );

  it('a second crash before the restarted process has been up a while doubles the backoff', async () => {
    const l = await launch();
    const first = pidOf(l.p, 'core');
    process.kill(first, 'SIGKILL');
    const second = Number((await l.p.waitFor(/\[launcher\] core is ready again \(pid (\d+)\)/))[1]);
    process.kill(second, 'SIGKILL');
    await l.p.waitFor(new RegExp(`\\[launcher\\] core \\(pid ${second}\\) exited unexpectedly \\(signal SIGKILL\\); restarting it in 1 s \\(failure 2 in a row`));
    // and it does come back a second time
    await l.p.waitFor(/\[launcher\] core is ready again[\s\S]*\[launcher\] core is ready again/);
    await stopAndExpectClean(l);
  }, 120_000);

  it('SIGKILL to the private Redis: started again, empty, on the same port; the services reconnect', async () => {
    const l = await launch();
    const dead = pidOf(l.p, 'redis');
    process.kill(dead, 'SIGKILL');
    await l.p.waitFor(new RegExp(`\\[launcher\\] redis \\(pid ${dead}\\) exited unexpectedly \\(signal SIGKILL\\) \\(its data is gone[^)]*\\); restarting it in 0\\.5 s`));
    await l.p.waitFor(/\[launcher\] redis is ready again/);
    expect(pidOf(l.p, 'redis')).not.toBe(dead);
    expect(await configGet(l.redisPort, 'maxmemory')).toBe(String(512 * 1024 * 1024));
    // A new pair of identities works end to end through the reconnected services.
    const alice = generateIdentity();
    const bob = generateIdentity();
    const a = Mailbox.create({ url: l.url, identity: alice, guests: [bob.publicKey] });
    const b = Mailbox.create({ url: l.url, identity: bob, guests: [alice.publicKey] });
    await eventually('alice sends after the Redis restart', () => a.send(bob.publicKey, 'after'));
    expect((await eventually('bob receives', () => b.receive())).map((m) => m.text)).toEqual(['after']);
    await stopAndExpectClean(l);
  }, 120_000);

  // At once, while the services are still reconnecting: to a Redis that is not there yet, or to the
  // new, empty one.
  it.each([
    ['while its Redis is down', /\[launcher\] redis \(pid \d+\) exited unexpectedly/, ['core', 'gatekeeper']],
    ['right after a Redis restart', /\[launcher\] redis is ready again/, ['redis', 'core', 'gatekeeper']],
  ] as const)('%s, SIGKILL to the launcher: the services drain and exit, and the watchdog takes Redis along', async (_when, moment, live) => {
    const l = await launch();
    const dead = pidOf(l.p, 'redis');
    process.kill(dead, 'SIGKILL');
    await l.p.waitFor(moment);
    const pids = live.map((what) => pidOf(l.p, what));
    const before = descendants(l.p.child.pid!);
    const tree = before.map((d) => d.pid);
    const names = new Map(before.map((d) => [d.pid, d.cmdline]));
    process.kill(l.p.child.pid!, 'SIGKILL');
    for (const pid of [...pids, ...tree]) await until(`pid ${pid} (${names.get(pid)}) gone`, () => !alive(pid));
    expect(await portOpen(l.redisPort)).toBe(false);
  }, 120_000);
});

describe('the private Redis has a maxmemory', () => {
  it('512mb and noeviction by default', async () => {
    const l = await launch();
    expect(await configGet(l.redisPort, 'maxmemory')).toBe(String(512 * 1024 * 1024));
    expect(await configGet(l.redisPort, 'maxmemory-policy')).toBe('noeviction');
    await stopAndExpectClean(l);
  }, 120_000);

  it('REDIS_MAXMEMORY sets it (Redis units)', async () => {
    const l = await launch({ REDIS_MAXMEMORY: '64MB' });
    expect(await configGet(l.redisPort, 'maxmemory')).toBe(String(64 * 1024 * 1024));
    expect(await configGet(l.redisPort, 'maxmemory-policy')).toBe('noeviction');
    await stopAndExpectClean(l);
  }, 120_000);

  it.each([['lots'], ['512 mb'], ['-1gb'], ['1tb'], ['1mb'], ['0']])('REDIS_MAXMEMORY=%s: a readable message, exit 1, nothing started', async (value) => {
    const p = run(process.execPath, [LAUNCHER], cleanEnv({ PORT: String(await freePort()), CORE_PORT: String(await freePort()), HOST: '127.0.0.1', REDIS_MAXMEMORY: value }));
    cleanup.push(() => killAll([p.child.pid!]));
    expect((await p.exit).code).toBe(1);
    expect(p.err()).toMatch(/^\[launcher\] REDIS_MAXMEMORY must be (a size such as 512mb or 2gb|at least 16mb)/m);
    expect(p.err()).toContain(`got "${value}"`);
    expect(p.out()).not.toContain('started');
  });
});
