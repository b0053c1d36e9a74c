/**
 * The closing summary line (summary-reporter.ts) on a real vitest run of a fixture folder: a
 * passing, a failing, a skipped, a todo and a self-skipping test, a file that throws while being
 * imported, files whose hooks fail, and an unhandled rejection. Its test counts must be vitest's
 * own "Tests" counts, and the files that failed to load or errored outside a test are named.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CONFIG = fileURLToPath(new URL('./summary-fixture/vitest.config.ts', import.meta.url));
const VITEST = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs');

interface Run {
  code: number | null;
  stdout: string;
}

function runFixture(): Promise<Run> {
  // A clean environment for the inner vitest: none of this worker's VITEST_* settings, no colours.
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('VITEST') && k !== 'NODE_OPTIONS' && k !== 'FORCE_COLOR') env[k] = v;
  env.NO_COLOR = '1';
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [VITEST, 'run', '--config', CONFIG], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.resume();
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

/** vitest's own "Tests  1 failed | 4 passed | 3 skipped | 1 todo (9)" line, as counts. */
function vitestTestCounts(stdout: string): Record<string, number> {
  const line = stdout.split('\n').find((l) => /^\s*Tests\s{2}/.test(l));
  if (line === undefined) throw new Error(`no "Tests" line in vitest's output:\n${stdout}`);
  const counts: Record<string, number> = { passed: 0, failed: 0, skipped: 0, todo: 0 };
  for (const m of line.matchAll(/(\d+) (passed|failed|skipped|todo)/g)) counts[m[2]!] = Number(m[1]);
  return counts;
}

describe('summary reporter', () => {
  it('counts tests as vitest does and names the files that failed to load or errored outside a test', async () => {
    const run = await runFixture();
    expect(run.code).toBe(1);
    const lines = run.stdout.split('\n').filter((l) => l.trim().length > 0);
    const closing = lines[lines.length - 1]!;
    process.stdout.write(`closing line of the fixture run: ${closing}\n`);

    expect(closing).toBe(
      '4 passed, 1 failed, 3 skipped, 1 todo; ' +
        '1 test file failed to load: throws-at-import.fixture.ts; ' +
        '2 test files errored outside a test: hook-fails.fixture.ts, setup-fails.fixture.ts; ' +
        '1 unhandled error',
    );
    // The same numbers vitest printed in its own summary.
    const ours = /^(\d+) passed, (\d+) failed, (\d+) skipped(?:, (\d+) todo)?/.exec(closing)!;
    expect({ passed: Number(ours[1]), failed: Number(ours[2]), skipped: Number(ours[3]), todo: Number(ours[4] ?? 0) }).toEqual(vitestTestCounts(run.stdout));
    expect(run.stdout).toMatch(/Errors\s+1 error/);
  }, 120_000);
});
