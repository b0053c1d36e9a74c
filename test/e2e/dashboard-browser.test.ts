/**
 * The gatekeeper's self-test page (DASHBOARD=1) in headless Chromium, against real relays: the page
 * makes two mailboxes in the browser, handshakes, sends, receives and deletes through the relay, and
 * must end with `<body data-state="done">`, every step ok with a latency, the difficulty the relay
 * announced, the relay healthy, and no Content-Security-Policy violation (the page runs under the
 * strict CSP the gatekeeper sends). Once on a relay process at /dashboard (a screenshot is saved to
 * test/e2e/artifacts/dashboard.png), once mounted at /zax in an express app at /zax/dashboard/.
 *
 * Needs Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium). Without it the suite
 * is skipped with a message, except in CI (CI=true), where it must run.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { createGatekeeper, type Gatekeeper } from '@zax/gatekeeper';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dropPrefix, freshPrefix } from '../support/prefix.js';
import { freePort } from '../support/redis-server.js';
import { CORE_MAIN, Relay, ServiceProcess } from '../support/relay.js';
import { storeEnv } from '../support/store.js';
import { testTopology } from '../support/store-server.js';

const CHROMIUM = '/usr/bin/chromium';
const INSTALL_CHROMIUM = 'apt-get update && apt-get install -y chromium';
const IN_CI = process.env.CI === 'true';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));
const SCREENSHOT = `${ARTIFACTS}dashboard.png`;
/** The steps the page runs, in order. */
const STEPS = ['identities', 'handshake', 'send', 'receive', 'send-file', 'receive-file', 'delete'];
const DIFFICULTY = 4;

if (!HAVE_CHROMIUM && !IN_CI) {
  process.stderr.write(`dashboard-browser: skipped: Chromium is not installed at ${CHROMIUM} (install it with: ${INSTALL_CHROMIUM})\n`);
}

interface Outcome {
  state: string | undefined;
  steps: Array<{ id: string; status: string; latencyMs: number | null; detail: string }>;
  health: { status: string | undefined; text: string };
  difficulty: { status: string | undefined; value: string | undefined; text: string };
  summary: string;
}

interface Run {
  outcome: Outcome;
  /** CSP violations seen by the page (securitypolicyviolation events) and console/page errors. */
  violations: string[];
  problems: string[];
  page: Page;
}

let browser: Browser | undefined;

/** Opens `url`, waits for the run to end, and returns what the page shows (the page stays open). */
async function runPage(url: string): Promise<Run> {
  const page = await browser!.newPage({ viewport: { width: 1100, height: 760 } });
  const problems: string[] = [];
  const violations: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    const text = m.text();
    if (/Content.Security.Policy|Refused to/i.test(text)) violations.push(`console: ${text}`);
    else if (m.type() === 'error' && !m.location().url.endsWith('/favicon.ico')) problems.push(`console: ${text}`);
  });
  await page.exposeFunction('reportCspViolation', (v: string) => violations.push(v));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      const report = (window as unknown as { reportCspViolation(v: string): void }).reportCspViolation;
      report(`${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`);
    });
  });
  const response = await page.goto(url);
  expect(response?.status()).toBe(200);
  expect(response?.headers()['content-security-policy']).toMatch(/^default-src 'none'; script-src 'self'/);
  await page.waitForFunction(() => ['done', 'failed'].includes(document.body.dataset.state ?? ''), null, { timeout: 60_000 });
  const outcome = await page.evaluate((): Outcome => {
    const text = (id: string): string => document.getElementById(id)?.textContent?.trim() ?? '';
    return {
      state: document.body.dataset.state,
      steps: Array.from(document.querySelectorAll<HTMLTableRowElement>('#steps tr[data-step]')).map((r) => ({
        id: r.dataset.step ?? '',
        status: r.dataset.status ?? '',
        latencyMs: r.dataset.latencyMs === undefined ? null : Number(r.dataset.latencyMs),
        detail: r.querySelector('.detail')?.textContent ?? '',
      })),
      health: { status: document.getElementById('health')?.dataset.status, text: text('health') },
      difficulty: { status: document.getElementById('difficulty')?.dataset.status, value: document.getElementById('difficulty')?.dataset.value, text: text('difficulty') },
      summary: text('summary'),
    };
  });
  return { outcome, violations, problems, page };
}

function expectPassed(run: Run): void {
  const { outcome } = run;
  const context = JSON.stringify({ outcome, problems: run.problems, violations: run.violations }, null, 2);
  expect(outcome.state, context).toBe('done');
  expect(outcome.steps.map((s) => s.id)).toEqual(STEPS);
  for (const step of outcome.steps) {
    expect(step.status, `${step.id}: ${step.detail}`).toBe('ok');
    expect(step.latencyMs, step.id).toBeGreaterThanOrEqual(0);
  }
  expect(outcome.health.status).toBe('ok');
  expect(outcome.health.text).toMatch(/^ready/);
  expect(outcome.difficulty.status).toBe('ok');
  expect(outcome.difficulty.value).toBe(String(DIFFICULTY));
  expect(outcome.summary).toMatch(new RegExp(`^All ${STEPS.length} steps passed in \\d+ ms\\.$`));
  expect(run.violations, 'Content-Security-Policy violations').toEqual([]);
  expect(run.problems).toEqual([]);
}

// The page does not depend on the store's topology: a topology run (pnpm test:topologies) skips it.
describe.skipIf((!HAVE_CHROMIUM && !IN_CI) || testTopology() !== 'single')('the self-test page in headless Chromium', () => {
  beforeAll(async () => {
    if (!HAVE_CHROMIUM) throw new Error(`Chromium is missing at ${CHROMIUM} and CI=true requires this suite: ${INSTALL_CHROMIUM}`);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('runs every step through a relay process at /dashboard, within the CSP, and saves a screenshot', { timeout: 120_000 }, async () => {
    const relay = await Relay.start({ redisUrl: inject('redisUrl'), gatekeeperEnv: { DASHBOARD: '1', DIFFICULTY: String(DIFFICULTY) } });
    try {
      const run = await runPage(`${relay.url}/dashboard`);
      await mkdir(ARTIFACTS, { recursive: true });
      await run.page.screenshot({ path: SCREENSHOT, fullPage: true });
      process.stdout.write(`dashboard-browser: screenshot saved to ${SCREENSHOT}\n`);
      await run.page.close();
      expectPassed(run);
    } finally {
      await relay.stop();
    }
  });

  it('runs every step with the gatekeeper mounted at /zax in an express app (relative URLs, /dashboard/)', { timeout: 120_000 }, async () => {
    const redisUrl = inject('redisUrl');
    const prefix = freshPrefix('dash');
    const corePort = await freePort();
    const shared = { ...storeEnv(redisUrl), REDIS_PREFIX: prefix, INTERNAL_SECRET: randomBytes(24).toString('hex'), LOG_LEVEL: 'silent' };
    const core = new ServiceProcess('core', CORE_MAIN, { ...shared, CORE_PORT: String(corePort), CORE_HOST: '127.0.0.1' }, corePort);
    let gatekeeper: Gatekeeper | undefined;
    let server: http.Server | undefined;
    try {
      await core.start();
      gatekeeper = await createGatekeeper({
        ...shared,
        CORE_URL: `http://127.0.0.1:${corePort}`,
        HANDSHAKE_BURST_PER_IP: '0',
        REQUEST_BURST_PER_IP: '0',
        DIFFICULTY: String(DIFFICULTY),
        DASHBOARD: '1',
      });
      const app = express();
      app.use('/zax', gatekeeper.handler);
      server = http.createServer(app);
      await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
      const zax = `http://127.0.0.1:${(server.address() as AddressInfo).port}/zax`;
      const deadline = Date.now() + 10_000;
      while ((await fetch(`${zax}/readyz`)).status !== 200) {
        if (Date.now() > deadline) throw new Error('the mounted gatekeeper never became ready');
        await new Promise((r) => setTimeout(r, 50));
      }
      const run = await runPage(`${zax}/dashboard/`);
      const shownRelay = await run.page.textContent('#relay-url');
      await run.page.close();
      expectPassed(run);
      expect(shownRelay).toBe(zax);
    } finally {
      if (server !== undefined) {
        server.closeAllConnections();
        await new Promise<void>((r) => server!.close(() => r()));
      }
      await gatekeeper?.close();
      await core.stop();
      await dropPrefix(redisUrl, prefix);
    }
  });
});
