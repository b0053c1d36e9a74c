/**
 * A core or gatekeeper whose parent (the `pnpm start` launcher) is SIGKILLed exits on its own,
 * whatever state its Redis connection is in: connected, or reconnecting to a Redis that is gone.
 * The parent here is a stand-in for the launcher: a small node process that starts the service as
 * the launcher does (stdout and stderr piped to it, an IPC channel) and relays its output, so that
 * killing it closes the IPC channel and leaves the service writing its shutdown lines to pipes
 * nobody reads any more (EPIPE). A service that blocks or spins on those writes never exits.
 * Waits are event-driven (generous upper bound); no duration is asserted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, startRedisServer, type RedisServer } from '../support/redis-server.js';
import { CORE_MAIN, GATEKEEPER_MAIN, alive, cleanEnv, killAll, run, until, type Proc } from './tree.js';

/** Starts argv[1] as the launcher does and relays its output; prints `child <pid>` first. */
const PARENT = `
const { spawn } = require('node:child_process');
const c = spawn(process.execPath, [process.argv[1]], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], detached: true });
process.stdout.write('child ' + c.pid + '\\n');
c.stdout.pipe(process.stdout);
c.stderr.pipe(process.stderr);
c.on('exit', () => process.exit(0));
`;

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function redisState(state: 'connected' | 'gone'): Promise<string> {
  if (state === 'gone') return `redis://127.0.0.1:${await freePort()}`; // nothing listens: reconnecting
  const server: RedisServer = await startRedisServer();
  cleanup.push(() => server.stop());
  return server.url;
}

async function serviceEnv(service: 'core' | 'gatekeeper', redisUrl: string): Promise<NodeJS.ProcessEnv> {
  const secret = 'parent-gone-test-secret-0123456789abcdef';
  if (service === 'core') return cleanEnv({ REDIS_URL: redisUrl, INTERNAL_SECRET: secret, CORE_HOST: '127.0.0.1', CORE_PORT: '0' });
  return cleanEnv({ REDIS_URL: redisUrl, INTERNAL_SECRET: secret, HOST: '127.0.0.1', PORT: '0', CORE_URL: `http://127.0.0.1:${await freePort()}` });
}

describe('a service whose launcher is SIGKILLed exits on its own', () => {
  it.each([
    ['gatekeeper', 'gone'],
    ['gatekeeper', 'connected'],
    ['core', 'gone'],
    ['core', 'connected'],
  ] as const)('%s, its Redis %s', async (service, state) => {
    const env = await serviceEnv(service, await redisState(state));
    const parent: Proc = run(process.execPath, ['-e', PARENT, service === 'core' ? CORE_MAIN : GATEKEEPER_MAIN], env);
    const pid = Number((await parent.waitFor(/^child (\d+)$/m))[1]);
    cleanup.push(() => killAll([parent.child.pid!, pid]));
    await parent.waitFor(/"msg":"listening"/);

    process.kill(parent.child.pid!, 'SIGKILL');
    await parent.exit;
    await until(`${service} (pid ${pid}) gone after its launcher was killed`, () => !alive(pid));
    expect(alive(pid)).toBe(false);
  }, 120_000);
});
