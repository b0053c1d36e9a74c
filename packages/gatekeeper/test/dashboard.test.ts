/**
 * The self-test page's routes (DASHBOARD=1, src/dashboard.ts): absent by default; when on, the built
 * files from memory under the strict CSP and the other page headers, GET/HEAD only, only the known
 * paths, `/dashboard` and `/dashboard/` each with references that resolve under /dashboard/, ETag
 * revalidation, and a clear refusal when the page is not built. The browser run is
 * test/e2e/dashboard-browser.test.ts.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config.js';
import { DASHBOARD_CSP, DASHBOARD_DIR, loadDashboard } from '../src/dashboard.js';
import { request, startGatekeeper, type Gatekeeper, type Reply } from './helpers.js';

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const PAGE_PATHS = ['/dashboard', '/dashboard/', '/dashboard/dashboard.js', '/dashboard/dashboard.css', '/dashboard/status.json'];

// The test command builds the page (`pnpm test` runs scripts/dist/build-dashboard.js): missing is a failure.
beforeAll(() => {
  expect(existsSync(`${DASHBOARD_DIR}index.html`), `${DASHBOARD_DIR} is missing: run \`pnpm build\` first`).toBe(true);
});

let gk: Gatekeeper | null = null;
afterEach(async () => {
  await gk?.close();
  gk = null;
});

const get = (path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> => request(gk!.port, { method, path, headers });

function expectPageHeaders(r: Reply): void {
  expect(r.headers['content-security-policy']).toBe(CSP);
  expect(r.headers['x-content-type-options']).toBe('nosniff');
  expect(r.headers['referrer-policy']).toBe('no-referrer');
  expect(r.headers['x-frame-options']).toBe('DENY');
  expect(r.headers['access-control-allow-origin']).toBeUndefined();
  expect(r.headers['set-cookie']).toBeUndefined();
}

describe('DASHBOARD unset', () => {
  it('serves no page: every path of it is a 404', async () => {
    gk = await startGatekeeper();
    expect(gk.config.dashboard).toBe(false);
    for (const path of PAGE_PATHS) expect((await get(path)).status, path).toBe(404);
  });
});

describe('DASHBOARD=1', () => {
  it('serves the page at /dashboard and /dashboard/, each with references that resolve under /dashboard/', async () => {
    gk = await startGatekeeper({ env: { DASHBOARD: '1' } });
    expect(DASHBOARD_CSP).toBe(CSP);
    const bare = await get('/dashboard');
    expect(bare.status).toBe(200);
    expect(bare.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(bare.headers['cache-control']).toBe('no-cache');
    expect(Number(bare.headers['content-length'])).toBe(Buffer.byteLength(bare.body, 'latin1'));
    expectPageHeaders(bare);
    expect(bare.body).toContain('"dashboard/dashboard.js"');
    expect(bare.body).toContain('"dashboard/dashboard.css"');

    const slash = await get('/dashboard/?from=somewhere');
    expect(slash.status).toBe(200);
    expectPageHeaders(slash);
    expect(slash.body).toContain('"./dashboard.js"');
    expect(slash.body).toContain('"./dashboard.css"');
    // No inline script or style for the CSP to refuse.
    expect(slash.body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=/i);
  });

  it('serves the script, the style sheet and status.json with their content types', async () => {
    gk = await startGatekeeper({ env: { DASHBOARD: '1', DIFFICULTY: '3' } });
    const js = await get('/dashboard/dashboard.js');
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.body.length).toBeGreaterThan(1000);
    expectPageHeaders(js);
    const css = await get('/dashboard/dashboard.css');
    expect(css.status).toBe(200);
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    expectPageHeaders(css);
    const status = await get('/dashboard/status.json');
    expect(status.status).toBe(200);
    expect(status.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(status.headers['cache-control']).toBe('no-store');
    expectPageHeaders(status);
    expect(JSON.parse(status.body)).toEqual({ difficulty: 3, adaptiveDifficulty: false });
  });

  it('answers HEAD without a body, and 304 to a matching If-None-Match', async () => {
    gk = await startGatekeeper({ env: { DASHBOARD: '1' } });
    const full = await get('/dashboard/dashboard.js');
    const head = await get('/dashboard/dashboard.js', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(head.headers['content-length']).toBe(full.headers['content-length']);
    expect(head.headers.etag).toBe(full.headers.etag);
    const again = await get('/dashboard/dashboard.js', { 'if-none-match': full.headers.etag! });
    expect(again.status).toBe(304);
    expect(again.body).toBe('');
    expectPageHeaders(again);
    expect((await get('/dashboard/dashboard.js', { 'if-none-match': '"other"' })).status).toBe(200);
  });

  it('takes GET and HEAD only: 405 with Allow for any other method', async () => {
    gk = await startGatekeeper({ env: { DASHBOARD: '1' } });
    for (const path of PAGE_PATHS) {
      for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
        const r = await request(gk.port, { method, path, body: 'x' });
        expect({ path, method, status: r.status, allow: r.headers.allow }).toEqual({ path, method, status: 405, allow: 'GET, HEAD' });
      }
    }
  });

  it('serves only the known files: anything else under /dashboard is a 404', async () => {
    gk = await startGatekeeper({ env: { DASHBOARD: '1' } });
    for (const path of [
      '/dashboard/index.html',
      '/dashboard/dashboard.ts',
      '/dashboard/missing.js',
      '/dashboard/../package.json',
      '/dashboard/%2e%2e/main.js',
      '/dashboard/..%2fmain.js',
      '/dashboard//etc/passwd',
      '/dashboard.js',
      '/dashboardx',
    ]) {
      expect((await get(path)).status, path).toBe(404);
    }
  });
});

describe('loadDashboard', () => {
  it('refuses a page that is not built with a ConfigError naming DASHBOARD and the fix', () => {
    const dir = mkdtempSync(join(tmpdir(), 'zax-dashboard-'));
    try {
      const refusal = (): unknown => {
        try {
          loadDashboard(dir);
        } catch (err) {
          return err;
        }
        return null;
      };
      const missing = refusal();
      expect(missing).toBeInstanceOf(ConfigError);
      expect((missing as ConfigError).problems).toEqual([expect.stringMatching(/^DASHBOARD: the page is not built \(.*index\.html: ENOENT\); build it with `pnpm build`, or unset DASHBOARD$/)]);
      writeFileSync(join(dir, 'index.html'), '<!doctype html><title>x</title>');
      writeFileSync(join(dir, 'dashboard.js'), '');
      writeFileSync(join(dir, 'dashboard.css'), '');
      const unreferenced = refusal();
      expect(unreferenced).toBeInstanceOf(ConfigError);
      expect((unreferenced as ConfigError).problems[0]).toMatch(/^DASHBOARD: .*index\.html does not reference "\.\/dashboard\.js"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
