/**
 * Runs glow-exchange.ts in a child Node process: bundled once with esbuild from glow.ts's ES build
 * (plain Node cannot load the published package: see README.md "Using glow.ts"), started with a clean environment
 * plus whatever the test passes (NODE_EXTRA_CA_CERTS).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { GlowExchangeResult } from './glow-exchange.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Bundles the exchange script into `dir`; returns the file to run. */
export async function bundleGlowExchange(dir: string): Promise<string> {
  const outfile = join(dir, 'glow-exchange.cjs');
  await build({
    entryPoints: [fileURLToPath(new URL('./glow-exchange.ts', import.meta.url))],
    absWorkingDir: ROOT,
    outfile,
    bundle: true,
    platform: 'node',
    // CommonJS output: tweetnacl's require('crypto') keeps working.
    format: 'cjs',
    target: 'node20',
    logLevel: 'warning',
  });
  return outfile;
}

export function runGlowExchange(script: string, url: string, env: Record<string, string>): Promise<GlowExchangeResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [script, url], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 25_000 }, (err, stdout, stderr) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as GlowExchangeResult);
      } catch {
        reject(new Error(`glow child gave no result (${err?.message ?? 'exit 0'}):\n${stdout}\n${stderr}`));
      }
    });
  });
}
