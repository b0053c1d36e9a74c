/**
 * Figures for stalled request bodies against one gatekeeper (not a test: it prints, it asserts
 * nothing). Starts its own relay (LocalRelay: private Redis, core, gatekeeper from packages/*\/dist),
 * with TRUSTED_PROXIES=127.0.0.0/8 and the default throttling, then:
 *
 *   1. idle: a legitimate client's latency (`/start_session`, and a `/command` the core refuses: the
 *      whole forwarding path) and the gatekeeper's RSS;
 *   2. abuse: CONNECTIONS connections from ADDRESSES addresses (X-Forwarded-For through the trusted
 *      loopback proxy), each declaring a 1 MiB `/command` body, sending 1,048,000 bytes of it and
 *      stalling; the legitimate client keeps going meanwhile; the gatekeeper's RSS is sampled;
 *   3. after: once every abusive connection is closed, RSS again.
 *
 * Prints the statuses the abusive connections got, RSS before/peak/after, and latency p50/p95 idle
 * vs during. Usage (after `pnpm exec tsc -b && pnpm exec tsc -p test/load`):
 *   node test/load/dist/body-abuse.js [connections=1000] [addresses=5] [K=V ...relay env]
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { LocalRelay } from './harness.js';
import { pct as pctOf, rssMiB, sleep } from './probe.js';

const args = process.argv.slice(2);
const positional = args.filter((a) => !a.includes('='));
const CONNECTIONS = Number(positional[0] ?? 1000);
const ADDRESSES = Number(positional[1] ?? 5);
const relayEnv: Record<string, string> = {
  TRUSTED_PROXIES: '127.0.0.0/8',
  // The defaults of docs/PROTOCOL.md §7 (LocalRelay turns throttling off otherwise).
  HANDSHAKE_BURST_PER_IP: '120',
  REQUEST_BURST_PER_IP: '600',
  LOG_LEVEL: 'warn',
};
for (const a of args.filter((x) => x.includes('='))) {
  const i = a.indexOf('=');
  relayEnv[a.slice(0, i)] = a.slice(i + 1);
}

const DECLARED = 1_048_576;
const SENT = 1_048_000;
const PAYLOAD = Buffer.alloc(SENT, 0x41);

const pct = (xs: number[], p: number): number => Math.round(pctOf(xs, p) * 10) / 10;

let legitN = 0;

/**
 * One legitimate round: a `/start_session` and a `/command` the core refuses (400), each from its
 * own address of 203.0.113.0/24 (so the client's own throttle budget never answers 429 here).
 */
async function legitRound(url: string, out: number[], statuses: Map<number, number>): Promise<void> {
  const from = `203.0.113.${(legitN++ % 250) + 1}`;
  for (const [path, body] of [
    ['/start_session', Buffer.alloc(32, Math.floor(Math.random() * 256)).toString('base64')],
    ['/command', `${'A'.repeat(43)}=\r\n${'B'.repeat(32)}\r\n${'C'.repeat(64)}`],
  ] as const) {
    const t0 = performance.now();
    try {
      const r = await fetch(`${url}${path}`, { method: 'POST', body, headers: { 'x-forwarded-for': from }, signal: AbortSignal.timeout(10_000) });
      await r.arrayBuffer();
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    } catch {
      statuses.set(0, (statuses.get(0) ?? 0) + 1);
    }
    out.push(performance.now() - t0);
  }
}

async function legitLoop(url: string, until: () => boolean, out: number[], statuses: Map<number, number>): Promise<void> {
  while (!until()) {
    await legitRound(url, out, statuses);
    await sleep(20);
  }
}

interface Abuser {
  status: number | null;
  closed: boolean;
}

function abuse(port: number, address: string): Abuser {
  const a: Abuser = { status: null, closed: false };
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  let got = '';
  s.on('data', (c: Buffer) => {
    if (a.status !== null) return;
    got += c.toString('latin1');
    const m = /^HTTP\/1\.1 (\d{3})/.exec(got);
    if (m !== null) a.status = Number(m[1]);
  });
  s.on('close', () => {
    a.closed = true;
  });
  s.write(`POST /command HTTP/1.1\r\nhost: relay\r\ncontent-type: text/plain\r\ncontent-length: ${DECLARED}\r\nx-forwarded-for: ${address}\r\n\r\n`);
  s.write(PAYLOAD);
  return a;
}

async function main(): Promise<void> {
  const relay = await LocalRelay.start({ env: relayEnv });
  const pid = relay.pids.gatekeeper;
  const port = Number(new URL(relay.url).port);
  try {
    await sleep(500);
    const idle: number[] = [];
    const idleStatuses = new Map<number, number>();
    for (let i = 0; i < 100; i++) await legitRound(relay.url, idle, idleStatuses);
    const rssBefore = rssMiB(pid);

    const abusers: Abuser[] = [];
    const t0 = performance.now();
    let done = false;
    const during: number[] = [];
    const duringStatuses = new Map<number, number>();
    const legit = legitLoop(relay.url, () => done, during, duringStatuses);
    let rssPeak = rssBefore;
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, rssMiB(pid));
    }, 100);
    for (let i = 0; i < CONNECTIONS; i++) {
      abusers.push(abuse(port, `198.51.100.${(i % ADDRESSES) + 1}`));
      if (i % 50 === 49) await sleep(10);
    }
    const openedMs = performance.now() - t0;
    // Wait until every abusive connection is closed (408 after the idle timeout, or refused at once).
    const deadline = performance.now() + 120_000;
    while (abusers.some((a) => !a.closed) && performance.now() < deadline) await sleep(100);
    const allClosedSec = (performance.now() - t0) / 1000;
    done = true;
    await legit;
    clearInterval(sampler);
    await sleep(2000);
    const rssAfter = rssMiB(pid);

    const statuses = new Map<string, number>();
    for (const a of abusers) {
      const k = a.status === null ? 'none (closed)' : String(a.status);
      statuses.set(k, (statuses.get(k) ?? 0) + 1);
    }
    const fmt = (m: Map<number | string, number>): string =>
      [...m.entries()]
        .sort()
        .map(([k, v]) => `${k}×${v}`)
        .join(' ');
    const lines = [
      `stalled bodies: ${CONNECTIONS} connections from ${ADDRESSES} addresses, each ${SENT} of ${DECLARED} declared bytes, then nothing`,
      `relay env: ${Object.entries(relayEnv)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
      `opened in ${Math.round(openedMs)} ms; all closed after ${allClosedSec.toFixed(1)} s`,
      `abusive statuses: ${fmt(statuses)}`,
      `gatekeeper RSS MiB: before ${rssBefore}, peak ${rssPeak}, after ${rssAfter}`,
      `legit latency ms (start_session + refused command): idle p50 ${pct(idle, 50)} p95 ${pct(idle, 95)} (n=${idle.length}); during p50 ${pct(during, 50)} p95 ${pct(during, 95)} (n=${during.length})`,
      `legit statuses: idle ${fmt(idleStatuses)}; during ${fmt(duringStatuses)}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await relay.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
