/**
 * The relay self-test page (DASHBOARD=1): a page at /dashboard whose script, in the visitor's
 * browser, creates two fresh mailboxes, sends a message from one to the other through this relay,
 * receives and deletes it, and shows each step's latency, the proof-of-work difficulty and the
 * relay's health. Its sources are packages/gatekeeper/dashboard/; the build (scripts/src/
 * build-dashboard.ts) bundles them into dist/dashboard/, which `loadDashboard` reads once at start-up
 * into memory. Missing files with DASHBOARD=1 are a ConfigError: the process refuses to start.
 *
 * Only the known files are served (exact paths of the route table, so no path reaches the disk):
 * `/dashboard` and `/dashboard/` (index.html), `/dashboard/dashboard.js`, `/dashboard/dashboard.css`,
 * and `/dashboard/status.json` ({difficulty, adaptiveDifficulty}: what /start_session announces now,
 * no secret). Every response carries a strict Content-Security-Policy (no inline script or style, the
 * page may only talk to its own origin), `nosniff`, `no-referrer` and `no-cache` with an ETag.
 *
 * The page uses relative URLs only, so it works under a mount prefix (mount.ts). As `/dashboard` and
 * `/dashboard/` resolve relative references differently, index.html is kept in two forms: as built
 * (references `./dashboard.js`, for `/dashboard/`) and with those references as `dashboard/…` (for
 * `/dashboard`). The script finds the relay's base URL from its own address.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '@zax/service';
import type { RouteHandler } from './routes.js';

/** The directory the build writes: the package's dist/dashboard (from src/ in tests, from dist/ when compiled). */
export const DASHBOARD_DIR = fileURLToPath(new URL('../dist/dashboard/', import.meta.url));

export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Headers on every response of the page's routes. */
const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': DASHBOARD_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** The built files the page consists of, and their content types. */
const FILES = {
  'index.html': 'text/html; charset=utf-8',
  'dashboard.js': 'text/javascript; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
} as const;

/** The references index.html must make, relative to /dashboard/. */
const INDEX_REFERENCES = ['./dashboard.js', './dashboard.css'] as const;

interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

/** The page, in memory. */
export interface DashboardPage {
  /** index.html as built, for `/dashboard/`. */
  readonly index: Asset;
  /** index.html for `/dashboard` (no trailing slash): references under `dashboard/`. */
  readonly indexNoSlash: Asset;
  readonly script: Asset;
  readonly style: Asset;
}

function asset(body: Buffer, type: string): Asset {
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

/**
 * Reads the built page from `dir` (default: dist/dashboard). Throws a ConfigError naming what is
 * missing and how to build it.
 */
export function loadDashboard(dir: string = DASHBOARD_DIR): DashboardPage {
  const base = dir.endsWith('/') ? dir : `${dir}/`;
  const read = (name: keyof typeof FILES): Buffer => {
    try {
      return readFileSync(`${base}${name}`);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new ConfigError([`DASHBOARD: the page is not built (${base}${name}: ${code}); build it with \`pnpm build\`, or unset DASHBOARD`]);
    }
  };
  const html = read('index.html');
  const script = read('dashboard.js');
  const style = read('dashboard.css');
  let text = html.toString('utf8');
  for (const ref of INDEX_REFERENCES) {
    if (!text.includes(`"${ref}"`)) throw new ConfigError([`DASHBOARD: ${base}index.html does not reference "${ref}": rebuild the page`]);
  }
  for (const ref of INDEX_REFERENCES) text = text.replaceAll(`"${ref}"`, `"dashboard/${ref.slice(2)}"`);
  return {
    index: asset(html, FILES['index.html']),
    indexNoSlash: asset(Buffer.from(text, 'utf8'), FILES['index.html']),
    script: asset(script, FILES['dashboard.js']),
    style: asset(style, FILES['dashboard.css']),
  };
}

/** Whether the request's own target ended in `/` (routing sees `/dashboard` for both). */
function endsInSlash(req: IncomingMessage): boolean {
  const url = req.url ?? '';
  const q = url.search(/[?#]/);
  return (q === -1 ? url : url.slice(0, q)).endsWith('/');
}

function send(req: IncomingMessage, res: ServerResponse, a: Asset): void {
  const headers = { ...PAGE_HEADERS, 'content-type': a.type, 'cache-control': 'no-cache', etag: a.etag };
  const match = req.headers['if-none-match'];
  if (match !== undefined && match.split(',').some((t) => t.trim().replace(/^W\//, '') === a.etag)) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  res.writeHead(200, { ...headers, 'content-length': a.body.length });
  if (req.method === 'HEAD') res.end();
  else res.end(a.body);
}

/** The handlers of the page's routes (routes.ts `dashboardRoutes`). */
export interface DashboardHandlers {
  readonly page: RouteHandler;
  readonly script: RouteHandler;
  readonly style: RouteHandler;
  readonly status: RouteHandler;
}

export function dashboardHandlers(page: DashboardPage): DashboardHandlers {
  return {
    page: async (_edge, req, res) => send(req, res, endsInSlash(req) ? page.index : page.indexNoSlash),
    script: async (_edge, req, res) => send(req, res, page.script),
    style: async (_edge, req, res) => send(req, res, page.style),
    // What /start_session announces now (the adaptive provider reads the edge store at most once per DIFFICULTY_CACHE_MS).
    status: async (edge, req, res) => {
      const difficulty = await edge.difficulty.current(edge.nowMs());
      const body = Buffer.from(JSON.stringify({ difficulty, adaptiveDifficulty: edge.config.difficultyPeriodMin > 0 }), 'utf8');
      res.writeHead(200, { ...PAGE_HEADERS, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': body.length });
      if (req.method === 'HEAD') res.end();
      else res.end(body);
    },
  };
}
