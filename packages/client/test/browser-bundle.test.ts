/**
 * The browser entry point (`@zax/client/browser`) bundles for a page: esbuild with
 * `platform: 'browser'` honours package.json's `browser` field, so the bundle takes the tweetnacl
 * backend and the probe-free diagnose, and holds no import or require of a Node built-in.
 */
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

async function bundle(): Promise<{ text: string; inputs: string[] }> {
  const result = await build({
    stdin: { contents: "export * from '@zax/client/browser';", resolveDir: ROOT, loader: 'js' },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2020',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  return { text: result.outputFiles[0]!.text, inputs: Object.keys(result.metafile.inputs) };
}

describe('browser bundle of @zax/client', () => {
  it('builds with platform browser and takes the browser variants of the Node-only modules', async () => {
    const { inputs } = await bundle();
    const client = inputs.filter((p) => p.startsWith('packages/client/')).map((p) => p.slice('packages/client/dist/'.length));
    expect(client).toContain('browser.js');
    expect(client).toContain('crypto-backend.browser.js');
    expect(client).toContain('diagnose.browser.js');
    for (const nodeOnly of ['crypto-backend.js', 'diagnose.js', 'identity-file.js', 'cli.js', 'cli-app.js', 'index.js']) expect(client).not.toContain(nodeOnly);
  });

  it('holds no import or require of a Node built-in', async () => {
    const { text } = await bundle();
    expect(text).not.toMatch(/\bfrom\s*["']node:/);
    expect(text).not.toMatch(/\bimport\s*\(\s*["']node:/);
    const required = [...text.matchAll(/\brequire\s*\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1]!);
    expect(required.filter((name) => BUILTINS.has(name))).toEqual([]);
    const imported = [...text.matchAll(/\b(?:from|import)\s*["']([^"']+)["']/g)].map((m) => m[1]!);
    expect(imported.filter((name) => BUILTINS.has(name))).toEqual([]);
  });

  it('exports what a page needs', async () => {
    const { text } = await bundle();
    for (const name of ['Mailbox', 'RelaySession', 'generateIdentity', 'parseKey', 'sealText', 'openText', 'RelayNetworkError', 'RelayHttpError', 'ZaxClientError']) {
      expect(text, name).toMatch(new RegExp(`\\b${name}\\b`));
    }
    expect(text).not.toMatch(/\b(loadIdentityFile|saveIdentityFile|defaultIdentityPath)\b/);
  });
});
