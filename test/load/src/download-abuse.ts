/**
 * `pnpm bench:download-abuse`: the issue's `download` abuse, reproduced against a private relay
 * (redis-server, core, gatekeeper from dist/, throttling off), printing figures, never passing or
 * failing on them. One session uploads 100 × 261,000-byte messages to itself; then:
 *
 *   stalled   20 sockets send that session's `download` to the gatekeeper, read the first bytes
 *             (the status) and never read on: core RSS before / peak during / after, the statuses,
 *             how many stalled sockets the relay closed by itself, and another client's `count`
 *             latency while they stall.
 *   loops     0, 4 and 8 loops of that session downloading (and reading) as fast as they can: the
 *             other client's `count` p50/p95 and the loops' statuses.
 *
 * `--set NAME=VALUE` adds a service setting. `--legacy` runs the same with the bounds lifted (MAX_DOWNLOAD_BYTES = 32 MiB, no per-hpk limit,
 * a 1 GiB answer budget, a 1 h write timeout), which approximates the relay before them.
 */
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { RelaySession, generateIdentity, type FetchLike } from '@zax/client';
import { LocalRelay } from './harness.js';
import { pct, rssKb, sleep } from './probe.js';

const { values: args } = parseArgs({
  options: {
    legacy: { type: 'boolean', default: false },
    stalled: { type: 'string', default: '20' },
    'stall-sec': { type: 'string', default: '30' },
    'loop-sec': { type: 'string', default: '8' },
    /** Extra service settings, e.g. `--set MAX_DOWNLOAD_BYTES=1048576` (repeatable). */
    set: { type: 'string', multiple: true, default: [] },
  },
});

const MESSAGES = 100;
const MESSAGE_BYTES = 261_000;
const LEGACY_ENV = {
  MAX_DOWNLOAD_BYTES: '33554432',
  MAX_DOWNLOADS_PER_HPK: '1000',
  CORE_MAX_RESPONSE_BYTES_IN_FLIGHT: '1073741824',
  CORE_WRITE_TIMEOUT_MS: '3600000',
};

const mb = (kb: number): string => `${(kb / 1024).toFixed(0)} MB`;

const fmt = (s: number[]): string => {
  const failed = [...countFailures].map(([k, c]) => `${k}×${c}`).join(', ');
  countFailures.clear();
  return `p50 ${pct(s, 50).toFixed(1)} ms, p95 ${pct(s, 95).toFixed(1)} ms (n=${s.length}${failed ? `; failed: ${failed}` : ''})`;
};

/** A session whose fetch can capture `/command` bodies instead of sending them. */
function capturingSession(url: string): { session: RelaySession; capture: (on: boolean) => string[] } {
  let capturing = false;
  let bodies: string[] = [];
  const fetchFn: FetchLike = (u, init) => {
    if (capturing && u.endsWith('/command')) {
      bodies.push(String(init.body));
      return Promise.resolve(new Response('', { status: 500 }));
    }
    return fetch(u, init);
  };
  const session = new RelaySession({ url, identity: generateIdentity(), fetch: fetchFn, timeoutMs: 60_000 });
  return {
    session,
    capture(on) {
      capturing = on;
      const out = bodies;
      if (!on) bodies = [];
      return out;
    },
  };
}

/** Sends a raw `/command` to the gatekeeper; resolves with the status once the head arrives, then never reads again. */
function stall(url: string, body: string, onClose: () => void): Promise<{ sock: Socket; status: number }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), hostname);
    sock.on('error', () => undefined);
    sock.on('close', onClose);
    sock.once('data', (chunk: Buffer) => {
      sock.pause();
      resolve({ sock, status: Number(/^HTTP\/1\.1 (\d{3})/.exec(chunk.toString('latin1', 0, 20))?.[1] ?? 0) });
    });
    sock.once('close', () => reject(new Error('closed before an answer')));
    sock.write(`POST /command HTTP/1.1\r\nhost: relay\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  });
}

/** The other client's `count` latencies (successful ones; failures are counted in `countFailures`). */
const countFailures = new Map<string, number>();
async function countLatencies(victim: RelaySession, untilMs: number): Promise<number[]> {
  const out: number[] = [];
  while (Date.now() < untilMs) {
    const t = performance.now();
    try {
      await victim.command({ cmd: 'count' });
      out.push(performance.now() - t);
    } catch (e) {
      const k = String((e as { status?: number }).status ?? 'error');
      countFailures.set(k, (countFailures.get(k) ?? 0) + 1);
    }
    await sleep(20);
  }
  return out;
}

async function main(): Promise<void> {
  const extra = Object.fromEntries(args.set.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const relay = await LocalRelay.start({ env: { ...(args.legacy ? LEGACY_ENV : {}), ...extra } });
  const core = relay.pids.core;
  try {
    console.log(`download abuse (${args.legacy ? 'legacy: bounds lifted' : 'default bounds'}${args.set.length ? `; ${args.set.join(' ')}` : ''}), core pid ${core}, relay ${relay.url}`);
    const abuser = capturingSession(relay.url);
    const victim = new RelaySession({ url: relay.url, identity: generateIdentity() });
    await victim.command({ cmd: 'upload', to: Buffer.from(victim.identity.hpk).toString('base64'), payload: 'hi' });
    const to = Buffer.from(abuser.session.identity.hpk).toString('base64');
    const payload = 'A'.repeat(MESSAGE_BYTES);
    for (let i = 0; i < MESSAGES; i += 5) await Promise.all(Array.from({ length: 5 }, () => abuser.session.command({ cmd: 'upload', to, payload })));
    const first = await abuser.session.command({ cmd: 'download' });
    console.log(`mailbox: ${MESSAGES} × ${MESSAGE_BYTES} B; one download answer: ${(first.lines.join('\r\n').length / 1e6).toFixed(1)} MB, ${(first.open() as unknown[]).length} messages`);

    const idle = await countLatencies(victim, Date.now() + 3000);
    console.log(`idle: other client's count ${fmt(idle)}`);

    // --- stalled readers ---
    const n = Number(args.stalled);
    abuser.capture(true);
    for (let i = 0; i < n; i++) await abuser.session.command({ cmd: 'download' }).catch(() => undefined);
    const bodies = abuser.capture(false);
    const before = rssKb(core);
    let closedByRelay = 0;
    let ours = false;
    const results = await Promise.allSettled(bodies.map((b) => stall(relay.url, b, () => void (ours || closedByRelay++))));
    const statuses = new Map<number, number>();
    for (const r of results) {
      const k = r.status === 'fulfilled' ? r.value.status : 0;
      statuses.set(k, (statuses.get(k) ?? 0) + 1);
    }
    let peak = rssKb(core);
    const stallMs = Number(args['stall-sec']) * 1000;
    const sampler = setInterval(() => (peak = Math.max(peak, rssKb(core))), 200);
    const during = await countLatencies(victim, Date.now() + Math.min(8000, stallMs));
    await sleep(Math.max(0, stallMs - 8000));
    clearInterval(sampler);
    const atEnd = rssKb(core);
    const closedDuring = closedByRelay;
    ours = true;
    for (const r of results) if (r.status === 'fulfilled') r.value.sock.destroy();
    await sleep(3000);
    const after = rssKb(core);
    console.log(
      `stalled readers: ${n}; statuses ${[...statuses].map(([s, c]) => `${s || 'closed'}×${c}`).join(', ')}; ` +
        `closed by the relay within ${args['stall-sec']} s: ${closedDuring}`,
    );
    console.log(`  core RSS: before ${mb(before)}, peak ${mb(peak)}, at ${args['stall-sec']} s ${mb(atEnd)}, 3 s after the clients left ${mb(after)}`);
    console.log(`  other client's count while they stall: ${fmt(during)}`);

    // --- download loops ---
    const loopMs = Number(args['loop-sec']) * 1000;
    for (const loops of [0, 4, 8]) {
      const stop = Date.now() + loopMs;
      const seen = new Map<string, number>();
      let peakLoop = rssKb(core);
      const sampler2 = setInterval(() => (peakLoop = Math.max(peakLoop, rssKb(core))), 200);
      const workers = Array.from({ length: loops }, async () => {
        while (Date.now() < stop) {
          let k: string;
          try {
            await abuser.session.command({ cmd: 'download' });
            k = '200';
          } catch (e) {
            k = String((e as { status?: number }).status ?? 'error');
            await sleep(50);
          }
          seen.set(k, (seen.get(k) ?? 0) + 1);
        }
      });
      const lat = await countLatencies(victim, stop);
      await Promise.all(workers);
      clearInterval(sampler2);
      const st = [...seen].map(([s, c]) => `${s}×${c}`).join(', ') || '—';
      console.log(`download loops ${loops}: other client's count ${fmt(lat)}; loop statuses ${st}; core RSS peak ${mb(peakLoop)}`);
    }
  } finally {
    await relay.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
