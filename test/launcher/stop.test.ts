/**
 * `pnpm start` stops cleanly however it is stopped: a whole relay (pnpm → launcher → private
 * redis-server + its watchdog, core, gatekeeper) as a real process tree, one signal per test, and
 * then every process of the tree must be gone and every port closed. Waits are event-driven (poll
 * until gone, generous upper bound); no duration is asserted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, redisPing } from '@zax/service';
import { alive, cleanEnv, descendants, fdTarget, fdTargets, killAll, portFree, portOpen, run, sleep, until, type Proc } from './tree.js';

interface Relay {
  readonly pnpm: Proc;
  readonly port: number;
  readonly corePort: number;
  readonly redisPort: number;
  readonly pids: { launcher: number; redis: number; watchdog: number; core: number; gatekeeper: number; workers: number[] };
  /** Every pid of the tree, pnpm included. */
  readonly all: number[];
}

const cleanup: number[][] = [];
afterEach(() => {
  for (const pids of cleanup.splice(0)) killAll(pids);
});

async function startRelay(extra: Record<string, string> = {}): Promise<Relay> {
  const [port, corePort] = [await freePort(), await freePort()];
  const pnpm = run('pnpm', ['start'], cleanEnv({ PORT: String(port), HOST: '127.0.0.1', CORE_PORT: String(corePort), ...extra }));
  const tracked = [pnpm.child.pid!];
  cleanup.push(tracked);
  await pnpm.waitFor(new RegExp(`Zax relay ready: http://127\\.0\\.0\\.1:${port}\\n`));
  const redisPort = Number((await pnpm.waitFor(/redis-server on 127\.0\.0\.1:(\d+)/))[1]);

  const tree = descendants(pnpm.child.pid!);
  tracked.push(...tree.map((p) => p.pid));
  const one = (what: string, match: (cmdline: string, ppid: number) => boolean): { pid: number; ppid: number } => {
    const found = tree.filter((p) => match(p.cmdline, p.ppid));
    expect(found.map((p) => p.cmdline), what).toHaveLength(1);
    return found[0]!;
  };
  const launcher = one('launcher', (c) => /^\S*node scripts\/start\.js/.test(c));
  // The point of the `exec` in the start script: the launcher is pnpm's own child, no shell between.
  expect(launcher.ppid).toBe(pnpm.child.pid);
  const below = (_c: string, ppid: number): boolean => ppid === launcher.pid;
  const redis = one('redis-server', (c, ppid) => below(c, ppid) && c.startsWith('redis-server'));
  const watchdog = one('watchdog', (c, ppid) => below(c, ppid) && c.includes('zax-redis-watchdog'));
  // (cluster workers run the same file, as children of the core)
  const core = one('core', (c, ppid) => below(c, ppid) && c.endsWith('packages/core/dist/main.js'));
  const gatekeeper = one('gatekeeper', (c, ppid) => below(c, ppid) && c.endsWith('packages/gatekeeper/dist/main.js'));
  for (const p of [redis, watchdog, core, gatekeeper]) expect(p.ppid).toBe(launcher.pid);
  const workers = tree.filter((p) => p.ppid === core.pid).map((p) => p.pid);
  // nothing else in the tree
  expect(tree).toHaveLength(5 + workers.length);
  return {
    pnpm,
    port,
    corePort,
    redisPort,
    pids: { launcher: launcher.pid, redis: redis.pid, watchdog: watchdog.pid, core: core.pid, gatekeeper: gatekeeper.pid, workers },
    all: [pnpm.child.pid!, ...tree.map((p) => p.pid)],
  };
}

/** Waits until no process of the relay is left and none of its ports answers. */
async function expectAllGone(relay: Relay): Promise<void> {
  for (const pid of relay.all) await until(`pid ${pid} gone (${JSON.stringify(relay.pids)})`, () => !alive(pid));
  expect(await portOpen(relay.port)).toBe(false);
  expect(await portFree(relay.port)).toBe(true);
  expect(await portOpen(relay.corePort)).toBe(false);
  expect(await portOpen(relay.redisPort)).toBe(false);
}

/** The launcher's stop went gatekeeper → core → Redis, each stopping cleanly. */
function expectOrderlyStop(out: string, reason: RegExp): void {
  const at = (re: RegExp): number => out.search(re);
  const steps = [reason, /\[launcher\] stopping gatekeeper/, /\[gatekeeper\] .*"msg":"stopped"/, /\[launcher\] stopping core/, /\[core\] .*"msg":"stopped"/, /\[launcher\] stopping redis/];
  const positions = steps.map(at);
  expect(positions.every((p) => p >= 0), `every step in the output:\n${out}`).toBe(true);
  expect([...positions].sort((a, b) => a - b)).toEqual(positions);
}

describe('pnpm start stops cleanly', () => {
  it.each([
    ['SIGTERM', 'pnpm'],
    ['SIGINT', 'pnpm'],
    ['SIGTERM', 'launcher'],
    ['SIGINT', 'launcher'],
  ] as const)(
    '%s to %s: gatekeeper, core, then Redis; the launcher exits 0; nothing is left',
    async (signal, target) => {
      const relay = await startRelay();
      const launcherExit = new Promise<void>((resolve) => {
        const poll = setInterval(() => !alive(relay.pids.launcher) && (clearInterval(poll), resolve()), 50);
      });
      process.kill(target === 'pnpm' ? relay.pnpm.child.pid! : relay.pids.launcher, signal);
      await relay.pnpm.exit;
      await launcherExit;
      await expectAllGone(relay);
      expectOrderlyStop(relay.pnpm.out(), new RegExp(`\\[launcher\\] ${signal}: stopping`));
      // pnpm reports a failed script with ELIFECYCLE: the launcher exited 0
      expect(relay.pnpm.err()).not.toContain('ELIFECYCLE');
    },
    120_000,
  );

  it('SIGKILL to pnpm: the launcher sees its parent go and stops the relay in order', async () => {
    const relay = await startRelay();
    process.kill(relay.pnpm.child.pid!, 'SIGKILL');
    await expectAllGone(relay);
    expectOrderlyStop(relay.pnpm.out(), /\[launcher\] parent process \d+ is gone: stopping/);
  }, 120_000);

  it('SIGKILL to the launcher: core (with its workers) and gatekeeper drain and exit; Redis outlives them, then goes', async () => {
    const relay = await startRelay({ CORE_WORKERS: '2' });
    const { launcher, redis, watchdog, core, gatekeeper, workers } = relay.pids;
    expect(workers).toHaveLength(2);
    // The services hold the launcher's end of the watchdog's stdin as fd 4 (not the workers: the
    // core waits for them before it exits).
    const held = fdTarget(core, 4);
    expect(held).toMatch(/^socket:/);
    expect(fdTarget(gatekeeper, 4)).toBe(held);
    expect(fdTargets(launcher)).toContain(held);

    // Freeze the services, kill the launcher: Redis must stay while they still hold the pipe.
    for (const pid of [core, gatekeeper]) process.kill(pid, 'SIGSTOP');
    process.kill(launcher, 'SIGKILL');
    await until('launcher gone', () => !alive(launcher));
    await relay.pnpm.exit;
    // A watchdog that fired when the launcher alone was gone would kill Redis now: watch a while.
    for (let i = 0; i < 10; i++) {
      expect(alive(watchdog) && (await redisPing(relay.redisPort))).toBe(true);
      await sleep(50);
    }
    for (const pid of [core, gatekeeper]) process.kill(pid, 'SIGCONT');
    await expectAllGone({ ...relay, all: relay.all.filter((p) => p !== redis) });
    await until('redis-server gone', () => !alive(redis));
    expect(await portOpen(relay.redisPort)).toBe(false);
  }, 120_000);
});
