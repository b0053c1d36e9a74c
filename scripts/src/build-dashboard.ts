/**
 * Builds the gatekeeper's self-test page (DASHBOARD=1, packages/gatekeeper/src/dashboard.ts): bundles
 * packages/gatekeeper/dashboard/dashboard.ts with @zax/client's browser entry point (esbuild,
 * platform browser, one IIFE script, minified, ES2020), minifies dashboard.css, and writes both with
 * index.html to packages/gatekeeper/dist/dashboard/. Run after `tsc -b` (it bundles the compiled
 * client): the root `build` and `test` scripts, `pnpm start` (scripts/start.js) and deploy/build.sh
 * do. A bundle that would import a Node built-in is refused.
 *
 *   node scripts/dist/build-dashboard.js
 */
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, stop } from 'esbuild';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const DASHBOARD_SRC = `${ROOT}packages/gatekeeper/dashboard`;
export const DASHBOARD_OUT = `${ROOT}packages/gatekeeper/dist/dashboard`;

export interface BuiltDashboard {
  readonly dir: string;
  /** Bytes of each file written. */
  readonly sizes: Readonly<Record<string, number>>;
}

/**
 * Writes the page to `out`; throws with esbuild's messages when the bundle does not build. Stops
 * esbuild's service process before it returns, so a caller that goes on running (`pnpm start`'s
 * launcher) does not keep it as a child.
 */
export async function buildDashboard(out: string = DASHBOARD_OUT): Promise<BuiltDashboard> {
  try {
    return await bundle(out);
  } finally {
    await stop();
  }
}

async function bundle(out: string): Promise<BuiltDashboard> {
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  const common = { bundle: true, minify: true, target: 'es2020', logLevel: 'silent', legalComments: 'none', metafile: true } as const;
  const script = await build({
    ...common,
    entryPoints: [`${DASHBOARD_SRC}/dashboard.ts`],
    outfile: `${out}/dashboard.js`,
    platform: 'browser',
    format: 'iife',
  });
  const style = await build({ ...common, entryPoints: [`${DASHBOARD_SRC}/dashboard.css`], outfile: `${out}/dashboard.css` });
  const nodeInputs = Object.keys(script.metafile.inputs).filter((p) => p.startsWith('node:') || builtinModules.includes(p));
  if (nodeInputs.length > 0) throw new Error(`the page's bundle imports Node built-ins: ${nodeInputs.join(', ')}`);
  await copyFile(`${DASHBOARD_SRC}/index.html`, `${out}/index.html`);
  const sizes: Record<string, number> = {};
  for (const [file, meta] of Object.entries({ ...script.metafile.outputs, ...style.metafile.outputs })) sizes[file.split('/').pop()!] = meta.bytes;
  return { dir: out, sizes };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    const built = await buildDashboard();
    const files = Object.entries(built.sizes).map(([f, n]) => `${f} ${(n / 1024).toFixed(1)} kB`);
    process.stdout.write(`build-dashboard: ${relative(process.cwd(), built.dir) || '.'}: index.html, ${files.join(', ')}\n`);
  } catch (err) {
    const errors = (err as { errors?: { text: string; location?: { file: string; line: number } | null }[] }).errors;
    const lines = errors?.map((e) => `  ${e.location ? `${e.location.file}:${e.location.line}: ` : ''}${e.text}`) ?? [`  ${err instanceof Error ? err.message : String(err)}`];
    process.stderr.write(`build-dashboard: the self-test page does not build (is the workspace compiled? run \`tsc -b\` first):\n${lines.join('\n')}\n`);
    process.exit(1);
  }
}
