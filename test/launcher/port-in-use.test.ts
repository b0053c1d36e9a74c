/**
 * A port that is taken: the gatekeeper, the core (alone, its admin port, its worker processes) and
 * the launcher say which port, which variable sets it, and how to fix it, and exit non-zero; the
 * launcher leaves nothing running.
 */
import { afterEach, describe, expect, inject, it } from 'vitest';
import { dropPrefix, freshPrefix } from '../support/prefix.js';
import { freePort } from '../support/redis-server.js';
import { CORE_MAIN, GATEKEEPER_MAIN, LAUNCHER, alive, cleanEnv, killAll, occupyPort, portOpen, run, until } from './tree.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** Occupies a port for the test's duration. */
async function taken(): Promise<number> {
  const holder = await occupyPort();
  cleanup.push(() => holder.close());
  return holder.port;
}

function prefix(): string {
  const p = freshPrefix('port-in-use');
  cleanup.push(() => dropPrefix(inject('redisUrl'), p));
  return p;
}

/** Runs `node file` and waits for its exit. */
async function runToExit(file: string, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const p = run(process.execPath, [file], cleanEnv(env));
  cleanup.push(() => killAll([p.child.pid!]));
  const { code } = await p.exit;
  return { code, output: p.out() + p.err() };
}

const services = (): Record<string, string> => ({ REDIS_URL: inject('redisUrl'), REDIS_PREFIX: prefix(), INTERNAL_SECRET: 'x'.repeat(16) });

/** The message names the port and its variable, and says to set the variable to another port. */
function expectExplained(output: string, port: number, variable: string): void {
  expect(output).toContain(`cannot listen: port ${port} on 127.0.0.1 (${variable}) is already in use; set ${variable}=… to another port`);
}

describe('a port in use', () => {
  it('gatekeeper PORT: names the port and PORT, exit 1', async () => {
    const port = await taken();
    const r = await runToExit(GATEKEEPER_MAIN, { ...services(), HOST: '127.0.0.1', PORT: String(port) });
    expect(r.code).toBe(1);
    expectExplained(r.output, port, 'PORT');
  });

  it('gatekeeper ADMIN_PORT: names the port and ADMIN_PORT, exit 1', async () => {
    const adminPort = await taken();
    const r = await runToExit(GATEKEEPER_MAIN, { ...services(), HOST: '127.0.0.1', PORT: '0', ADMIN_PORT: String(adminPort) });
    expect(r.code).toBe(1);
    expectExplained(r.output, adminPort, 'ADMIN_PORT');
  });

  it.each([['1'], ['2']])('core CORE_PORT with CORE_WORKERS=%s: names the port and CORE_PORT, exit 1', async (workers) => {
    const port = await taken();
    const r = await runToExit(CORE_MAIN, { ...services(), CORE_HOST: '127.0.0.1', CORE_PORT: String(port), CORE_WORKERS: workers });
    expect(r.code).toBe(1);
    expectExplained(r.output, port, 'CORE_PORT');
  });

  it('core CORE_ADMIN_PORT: names the port and CORE_ADMIN_PORT, exit 1', async () => {
    const adminPort = await taken();
    const r = await runToExit(CORE_MAIN, { ...services(), CORE_HOST: '127.0.0.1', CORE_PORT: '0', CORE_ADMIN_PORT: String(adminPort), CORE_WORKERS: '1' });
    expect(r.code).toBe(1);
    expectExplained(r.output, adminPort, 'CORE_ADMIN_PORT');
  });

  it.each([['PORT'], ['CORE_PORT']])(
    'launcher with %s taken: its last word names the port, the variable and the fix; exit 1; nothing left running',
    async (variable) => {
      const busy = await taken();
      const ports: Record<string, string> = { PORT: String(await freePort()), CORE_PORT: String(await freePort()), [variable]: String(busy) };
      const p = run(process.execPath, [LAUNCHER], cleanEnv({ ...ports, HOST: '127.0.0.1' }));
      cleanup.push(() => killAll([p.child.pid!]));
      expect((await p.exit).code).toBe(1);
      const service = variable === 'PORT' ? 'gatekeeper' : 'core';
      expect(p.err()).toMatch(new RegExp(`^\\[launcher\\] ${service} exited unexpectedly \\(code 1\\): cannot listen: port ${busy} on 127\\.0\\.0\\.1 \\(${variable}\\) is already in use; set ${variable}=… to another port`, 'm'));
      // everything it started is gone (the launcher waited for each)
      const started = [...p.out().matchAll(/started (\w+) \(pid (\d+)\)/g)].map((m) => Number(m[2]));
      expect(started.length).toBeGreaterThanOrEqual(2);
      for (const pid of started) await until(`pid ${pid} gone`, () => !alive(pid));
      const redisPort = Number(/redis-server on 127\.0\.0\.1:(\d+)/.exec(p.out())?.[1]);
      expect(await portOpen(redisPort)).toBe(false);
    },
    60_000,
  );
});
