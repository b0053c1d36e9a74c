/**
 * README.md "Using glow.ts" is what this test runs. It takes the section's fenced blocks: the shell
 * blocks are commands, a block whose first line names a file (`// hello.mjs`, `<!-- index.html -->`)
 * is that file. In a fresh directory (its node_modules a link to this repository's, where glow.ts and
 * esbuild are dev dependencies) it runs the esbuild commands as written (`npx esbuild` is the local
 * node_modules/.bin/esbuild), runs the Node script with plain `node`, and opens the page in headless
 * Chromium from a small local web server. The only change to the blocks: the README's relay URL
 * becomes the URL of the relay this test starts. Both clients must print the message byte for byte,
 * and the relay's core must have counted their upload and delete.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Relay } from '../support/relay.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
const INSTALL_CHROMIUM = 'apt-get update && apt-get install -y chromium';
/** The relay URL the README's blocks use (what `pnpm start` prints). */
const README_RELAY = 'http://127.0.0.1:8080';
/** What the README's Alice sends, and what both clients must show: Bob's tag for her, then the text. */
const MESSAGE = 'Hello Bob! Grüße ✓';
const SHOWN = `Alice: ${MESSAGE}`;

interface Block {
  lang: string;
  body: string;
}

/** The text of `## title` up to the next `## ` heading. */
function section(markdown: string, title: string): string {
  const start = markdown.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`README.md has no "## ${title}" section`);
  const rest = markdown.slice(start + 1);
  const end = rest.indexOf('\n## ', 1);
  return end < 0 ? rest : rest.slice(0, end + 1);
}

function fencedBlocks(text: string): Block[] {
  return [...text.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1]!, body: m[2]! }));
}

/** The file a block stands for, from its first line (`// name` or `<!-- name -->`). */
function fileName(block: Block): string | null {
  const first = block.body.split('\n', 1)[0]!;
  const m = /^(?:\/\/\s*([\w.-]+)|<!--\s*([\w.-]+)\s*-->)\s*$/.exec(first);
  return m === null ? null : (m[1] ?? m[2])!;
}

function commands(block: Block): string[] {
  return block.body
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('#'));
}

interface Run {
  stdout: Buffer;
  stderr: string;
}

/** Runs one README command line with sh in `cwd`; `node` is this Node, `npx esbuild` the local esbuild. */
function sh(command: string, cwd: string): Promise<Run> {
  let line = command;
  if (line.startsWith('npx esbuild ')) line = `node_modules/.bin/esbuild ${line.slice('npx esbuild '.length)}`;
  else if (!line.startsWith('node ')) throw new Error(`the test does not know how to run this README command: ${command}`);
  return new Promise((resolve, reject) => {
    execFile(
      'sh',
      ['-c', line],
      { cwd, encoding: 'buffer', timeout: 20_000, env: { PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` } },
      (err, stdout, stderr) => {
        if (err !== null) reject(new Error(`\`${command}\` failed${err.killed ? ' (still running after 20 s, killed)' : ''}: ${err.message}\n${stdout.toString('utf8')}\n${stderr.toString('utf8')}`));
        else resolve({ stdout, stderr: stderr.toString('utf8') });
      },
    );
  });
}

/** Serves the files directly in `dir` (no sub-directories) on 127.0.0.1. */
async function serveDir(dir: string): Promise<Server> {
  const types: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8' };
  const server = createServer((req, res) => {
    const name = basename(new URL(req.url ?? '/', 'http://x').pathname);
    const type = types[extname(name)];
    if (type === undefined) {
      res.writeHead(404).end();
      return;
    }
    readFile(join(dir, name)).then(
      (body) => res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' }).end(body),
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** Upload and delete commands the core has answered with 200 so far. */
async function coreCounts(relay: Relay): Promise<{ upload: number; delete: number }> {
  const text = await (await fetch(`http://127.0.0.1:${relay.core.port}/metrics`)).text();
  const count = (cmd: string): number => {
    const m = new RegExp(`^zax_core_commands_total\\{cmd="${cmd}",status="200"\\} (\\d+)$`, 'm').exec(text);
    return m === null ? 0 : Number(m[1]);
  };
  return { upload: count('upload'), delete: count('delete') };
}

let relay: Relay;
let dir: string;
let nodeCommands: string[];
let browserCommands: string[];
let browserPage: string;

beforeAll(async () => {
  const blocks = fencedBlocks(section(await readFile(join(ROOT, 'README.md'), 'utf8'), 'Using glow.ts'));
  const shells = blocks.filter((b) => b.lang === 'sh').map(commands);
  const nodeBlock = shells.find((c) => c.some((l) => l.includes('--platform=node')));
  const browserBlock = shells.find((c) => c.some((l) => l.includes('--platform=browser')));
  if (nodeBlock === undefined || browserBlock === undefined) throw new Error('"Using glow.ts" needs a sh block for --platform=node and one for --platform=browser');
  nodeCommands = nodeBlock;
  browserCommands = browserBlock;

  relay = await Relay.start({ redisUrl: inject('redisUrl') });
  dir = await mkdtemp(join(tmpdir(), 'readme-glow-'));
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  const files: string[] = [];
  for (const block of blocks) {
    const name = fileName(block);
    if (name === null) continue;
    if (!block.body.includes(README_RELAY)) throw new Error(`${name} in the README does not use the relay URL ${README_RELAY}`);
    await writeFile(join(dir, name), block.body.replaceAll(README_RELAY, relay.url));
    files.push(name);
  }
  const page = files.find((f) => f.endsWith('.html'));
  if (page === undefined || !files.some((f) => f.endsWith('.mjs'))) throw new Error(`"Using glow.ts" needs a Node script and a page; it has ${files.join(', ')}`);
  browserPage = page;
});

afterAll(async () => {
  await relay?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('README "Using glow.ts"', () => {
  it('the Node recipe bundles glow.ts, sends through the relay and prints the message byte for byte', { timeout: 60_000 }, async () => {
    const before = await coreCounts(relay);
    const outputs: Buffer[] = [];
    for (const command of nodeCommands) {
      const run = await sh(command, dir);
      if (command.startsWith('node ')) outputs.push(run.stdout);
    }
    expect(outputs, 'the Node block runs one node script').toHaveLength(1);
    expect(outputs[0]!.equals(Buffer.from(`${SHOWN}\n`, 'utf8')), `node printed ${JSON.stringify(outputs[0]!.toString('utf8'))}`).toBe(true);
    const after = await coreCounts(relay);
    expect(after.upload - before.upload).toBe(1);
    expect(after.delete - before.delete).toBe(1);
  });

  it('the browser recipe bundles glow.ts and the page sends through the relay (cross-origin) in headless Chromium', { timeout: 90_000 }, async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium is missing at ${CHROMIUM}; install it with: ${INSTALL_CHROMIUM}`);
    for (const command of browserCommands) await sh(command, dir);

    const before = await coreCounts(relay);
    const server = await serveDir(dir);
    const pageOrigin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const userDataDir = await mkdtemp(join(tmpdir(), 'readme-glow-chromium-'));
    let context: BrowserContext | undefined;
    const problems: string[] = [];
    const relayAnswers: Array<{ status: number; allowOrigin: string | null }> = [];
    try {
      context = await chromium.launchPersistentContext(userDataDir, {
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
      const page = context.pages()[0] ?? (await context.newPage());
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('console', (m) => {
        if (m.type() === 'error' && !m.location().url.endsWith('/favicon.ico')) problems.push(`console: ${m.text()}`);
      });
      page.on('response', (r) => {
        if (r.url().startsWith(`${relay.url}/`) && r.request().method() === 'POST') relayAnswers.push({ status: r.status(), allowOrigin: r.headers()['access-control-allow-origin'] ?? null });
      });
      await page.goto(`${pageOrigin}/${browserPage}`);
      // glow.ts aborts each request after 5 s, so the page settles well within this bound.
      await page.waitForFunction(() => document.getElementById('out')?.textContent !== 'working…', null, { timeout: 60_000 });
      const shown = (await page.textContent('#out')) ?? '';
      expect(Buffer.from(shown, 'utf8').equals(Buffer.from(SHOWN, 'utf8')), `the page shows ${JSON.stringify(shown)}\n${problems.join('\n')}`).toBe(true);
    } finally {
      await context?.close();
      await new Promise((resolve) => server.close(resolve));
      await rm(userDataDir, { recursive: true, force: true });
    }
    expect(pageOrigin).not.toBe(new URL(relay.url).origin);
    expect(relayAnswers.length).toBeGreaterThan(0);
    expect(relayAnswers.every((a) => a.status === 200 && a.allowOrigin === '*'), JSON.stringify(relayAnswers)).toBe(true);
    expect(problems).toEqual([]);
    const after = await coreCounts(relay);
    expect(after.upload - before.upload).toBe(1);
    expect(after.delete - before.delete).toBe(1);
  });
});
