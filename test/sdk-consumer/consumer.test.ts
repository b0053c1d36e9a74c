/**
 * @zax/client installed the way an app installs it: the workspace packages are packed with
 * `pnpm pack` (as they would be published), the app in this directory (package.json, tsconfig.json
 * with `strict` and `skipLibCheck: false`, index.ts) is copied to a temp directory with the tarballs
 * in vendor/, installed with npm, type-checked with its own tsc, and run against a real relay —
 * once with sodium-native (an optional dependency of @zax/client) and once with
 * `npm install --omit=optional`, checking with NODE_DEBUG=zax which crypto backend the SDK picked.
 * Needs the built dist/ of protocol and client (`tsc -b`) and the npm registry (or npm's cache).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Relay } from '../support/relay.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./', import.meta.url));
const FIXTURE_FILES = ['package.json', 'tsconfig.json', 'index.ts'];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * The caller's environment as an app's developer would have it, plus `extra`: without the npm/pnpm
 * settings a `pnpm exec` parent passes on (npm_config_* would change how npm installs), without its
 * NODE_PATH (pnpm points it at the workspace's store, where sodium-native would be found) and
 * NODE_OPTIONS, and without NODE_DEBUG and ZAX_*.
 */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  const dropped = (k: string): boolean => /^(npm|pnpm)_/i.test(k) || ['NODE_PATH', 'NODE_OPTIONS', 'NODE_DEBUG'].includes(k) || k.startsWith('ZAX_');
  for (const [k, v] of Object.entries(process.env)) if (!dropped(k)) env[k] = v;
  return { ...env, ...extra };
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = cleanEnv()): Promise<Run> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, stderr, ms: Math.round(performance.now() - started) });
    });
  });
}

function ok(r: Run, what: string): Run {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

let work: string;
let relay: Relay;
let packs: { protocol: string; client: string };
const figures: string[] = [];

beforeAll(async () => {
  for (const pkg of ['protocol', 'client']) {
    if (!existsSync(join(ROOT, 'packages', pkg, 'dist', 'index.js'))) throw new Error(`packages/${pkg}/dist is missing: run "pnpm exec tsc -b" first`);
  }
  work = await mkdtemp(join(tmpdir(), 'zax-sdk-consumer-'));
  const packDir = join(work, 'packs');
  await mkdir(packDir);
  const pack = async (pkg: string): Promise<string> => {
    const r = ok(await run('pnpm', ['pack', '--pack-destination', packDir], join(ROOT, 'packages', pkg)), `pnpm pack (${pkg})`);
    figures.push(`pnpm pack ${pkg}: ${r.ms} ms`);
    return join(packDir, `zax-${pkg}-0.1.0.tgz`);
  };
  const [protocol, client, started] = await Promise.all([pack('protocol'), pack('client'), Relay.start({ redisUrl: inject('redisUrl') })]);
  packs = { protocol, client };
  relay = started;
}, 120_000);

afterAll(async () => {
  await relay?.stop();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
  console.log(`sdk-consumer figures:\n  ${figures.join('\n  ')}`);
});

/** A fresh copy of the app with the tarballs in vendor/, installed with `npm install ...installArgs`. */
async function installApp(name: string, installArgs: string[]): Promise<string> {
  const dir = join(work, name);
  await mkdir(join(dir, 'vendor'), { recursive: true });
  for (const f of FIXTURE_FILES) await copyFile(join(FIXTURE, f), join(dir, f));
  await copyFile(packs.protocol, join(dir, 'vendor', 'zax-protocol.tgz'));
  await copyFile(packs.client, join(dir, 'vendor', 'zax-client.tgz'));
  const r = ok(await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...installArgs], dir), `npm install ${installArgs.join(' ')}`);
  figures.push(`${name}: npm install ${r.ms} ms`);
  return dir;
}

const variants = [
  { name: 'with-sodium', installArgs: [], sodiumInstalled: true, backend: /^ZAX \d+: crypto backend: sodium-native$/m },
  {
    name: 'without-sodium',
    installArgs: ['--omit=optional'],
    sodiumInstalled: false,
    backend: /^ZAX \d+: crypto backend: tweetnacl \(sodium-native is not installed\)$/m,
  },
];

describe('an app depending on @zax/client (npm, strict, skipLibCheck false)', () => {
  for (const v of variants) {
    it(`${v.name}: installs, type-checks, exchanges a message through a relay, reports its crypto backend`, async () => {
      const dir = await installApp(v.name, v.installArgs);
      const installed = (p: string): boolean => existsSync(join(dir, 'node_modules', p, 'package.json'));
      expect(installed('@zax/client') && installed('@zax/protocol') && installed('tweetnacl')).toBe(true);
      expect(installed('sodium-native')).toBe(v.sodiumInstalled);
      // The app depends on @zax/client alone; @zax/protocol came in as its dependency.
      const manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
      expect(Object.keys(manifest.dependencies)).toEqual(['@zax/client']);

      // The app's own compiler and tsconfig; noEmitOnError, so any diagnostic fails the build.
      const tsc = await run(process.execPath, [join(dir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], dir);
      figures.push(`${v.name}: tsc ${tsc.ms} ms`);
      expect(tsc.stdout + tsc.stderr).toBe('');
      expect(tsc.code).toBe(0);

      const app = await run(process.execPath, [join(dir, 'dist', 'index.js')], dir, cleanEnv({ ZAX_RELAY: relay.url, NODE_DEBUG: 'zax' }));
      figures.push(`${v.name}: app run ${app.ms} ms`);
      expect(app.stderr).toMatch(v.backend);
      expect(app.code, app.stderr).toBe(0);
      const out = JSON.parse(app.stdout) as { sent: string; received: { status: string; text: string }[]; left: number; gone: number };
      expect(out.received).toEqual([{ status: 'decrypted', text: out.sent }]);
      expect(out.left).toBe(0);
      expect(out.gone).toBe(-2);
      // Without NODE_DEBUG the SDK prints nothing of its own.
      const quiet = await run(process.execPath, [join(dir, 'dist', 'index.js')], dir, cleanEnv({ ZAX_RELAY: relay.url }));
      expect(quiet).toMatchObject({ code: 0, stderr: '' });

      // The bin an install links.
      const bin = await run(join(dir, 'node_modules', '.bin', 'zax'), ['--version'], dir);
      expect(bin).toMatchObject({ code: 0, stdout: '0.1.0\n', stderr: '' });
    }, 300_000);
  }
});
