/**
 * Entry of `pnpm start` (root package.json: `exec node scripts/start.js`). Plain JavaScript, so it
 * runs on a fresh clone after `pnpm install`: it builds the workspace (`tsc -b`, a quick no-op when
 * nothing changed) and the gatekeeper's self-test page (src/build-dashboard.ts), then runs the
 * launcher (src/start.ts, compiled to dist/start.js) in this same process.
 *
 * Why this shape: pnpm runs a script as `sh -c "<script>"` and forwards SIGTERM, SIGINT and SIGHUP
 * to that direct child only. With `tsc -b && node …` the shell stays in between (dash does not exec
 * the last command of a list), a signal to pnpm kills the shell and orphans the launcher with
 * everything it started. With `exec node scripts/start.js` and the build done here, the launcher is
 * pnpm's direct child: whatever pnpm forwards reaches it, and it sees pnpm go away (its parent pid
 * changes) if pnpm is killed outright.
 *
 * A signal during the build stops the build and exits (130 for SIGINT, 143 for SIGTERM, 129 for
 * SIGHUP); so does the parent going away while building.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const parent = process.ppid;

/** Runs `tsc -b` at the repository root; resolves with its exit code (or 128 + signal number). */
function build() {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const child = spawn(process.execPath, [tsc, '-b'], { cwd: ROOT, stdio: 'inherit' });
  const signals = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };
  let stoppedBy = 0;
  const onSignal = (sig) => {
    stoppedBy = signals[sig];
    child.kill(sig);
  };
  for (const sig of Object.keys(signals)) process.on(sig, onSignal);
  return new Promise((resolve) => {
    child.once('error', (err) => {
      process.stderr.write(`[launcher] could not run the TypeScript compiler: ${err.message}\n`);
      resolve(1);
    });
    child.once('exit', (code) => {
      for (const sig of Object.keys(signals)) process.off(sig, onSignal);
      resolve(stoppedBy || (code ?? 1));
    });
  });
}

const code = await build();
if (code !== 0) process.exit(code);
// The gatekeeper's self-test page (DASHBOARD=1): bundled from the compiled client.
try {
  await (await import('./dist/build-dashboard.js')).buildDashboard();
} catch (err) {
  process.stderr.write(`[launcher] could not build the self-test page: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
if (process.ppid !== parent) process.exit(129); // nobody left to run it for
await import('./dist/start.js');
