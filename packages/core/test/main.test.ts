/** The built process (dist/main.js): listening line, readiness, SIGTERM drain → exit 0, bad env → exit 1. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { freshPrefix } from '../../../test/support/prefix.js';
import { SECRET, redisUrl } from './helpers.js';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

function run(env: Record<string, string>): { child: ReturnType<typeof spawn>; stdout: () => string; stderr: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [MAIN], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exit };
}

describe('main', () => {
  it('logs "listening" with its port, serves, and exits 0 on SIGTERM', async () => {
    const p = run({ REDIS_URL: redisUrl(), INTERNAL_SECRET: SECRET, REDIS_PREFIX: freshPrefix('main'), CORE_PORT: '0' });
    const end = Date.now() + 10_000;
    let port = 0;
    while (port === 0 && Date.now() < end) {
      const line = p.stdout().split('\n').find((l) => l.includes('"msg":"listening"'));
      if (line !== undefined) port = (JSON.parse(line) as { port: number }).port;
      else await new Promise((r) => setTimeout(r, 50));
    }
    expect(port).toBeGreaterThan(0);
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/command`, { method: 'POST', body: 'x' })).status).toBe(403);
    p.child.kill('SIGTERM');
    expect(await p.exit).toBe(0);
  });

  it('refuses a bad environment with a readable list and exit 1', async () => {
    const p = run({ REDIS_URL: redisUrl(), INTERNAL_SECRET: 'short', NONCE_WINDOW_SEC: '400', SESSION_TTL_SEC: 'abc' });
    expect(await p.exit).toBe(1);
    expect(p.stderr()).toContain('INTERNAL_SECRET');
    expect(p.stderr()).toContain('NONCE_CACHE_SEC');
    expect(p.stderr()).toContain('SESSION_TTL_SEC');
  });
});
