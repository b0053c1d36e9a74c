/**
 * The compose stack for real (deploy/compose-e2e.sh brings it up and passes its coordinates in
 * ZAX_E2E_*): the published glow.ts client and @zax/client through the TLS front, the network
 * isolation seen from inside the networks, Prometheus's view of every target, and three faults
 * under traffic: a gatekeeper killed, a gatekeeper crashing, the core restarted. Each check writes
 * what it measured to ZAX_E2E_REPORT (one `name<TAB>value` line each), which the script prints.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { Mailbox, RelayHttpError, RelayNetworkError, RelaySession, generateIdentity, type FetchLike, type Identity } from '@zax/client';
import { loadGlow } from '../support/glow.js';
import { until } from '../support/until.js';

function setting(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this suite with deploy/compose-e2e.sh`);
  return v;
}
const URL_ = setting('ZAX_E2E_URL');
const PROMETHEUS = setting('ZAX_E2E_PROMETHEUS');
const PROJECT = setting('ZAX_E2E_PROJECT');
const GATEKEEPERS = Number(setting('ZAX_E2E_GATEKEEPERS'));
const DOCKER = setting('ZAX_E2E_DOCKER');
const IMAGE = setting('ZAX_E2E_IMAGE');
const REPORT = setting('ZAX_E2E_REPORT');
/** `sentinel`: the stack runs with deploy/compose/sentinel.yml (the core store replicated). */
const STORE = process.env.ZAX_E2E_STORE === 'sentinel' ? 'sentinel' : 'single';
/** The core store's services besides redis-core, and their ports, with the Sentinel override. */
const STORE_EXTRA: readonly [string, number][] =
  STORE === 'sentinel'
    ? [
        ['redis-core-2', 6379],
        ['redis-core-3', 6379],
        ['redis-core-sentinel-1', 26379],
        ['redis-core-sentinel-2', 26379],
        ['redis-core-sentinel-3', 26379],
      ]
    : [];

const exec = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const report = (name: string, value: string) => appendFileSync(REPORT, `${name}\t${value}\n`);
const glow = loadGlow();
const glowOpen: Array<{ clearSession(u: string): void }> = [];
afterAll(() => {
  for (const m of glowOpen) m.clearSession(URL_); // glow.ts keeps timers running otherwise
});

// ---- docker ------------------------------------------------------------------------------------

async function docker(...args: string[]): Promise<string> {
  const { stdout } = await exec(DOCKER, args, { maxBuffer: 16 << 20 });
  return stdout.trim();
}

/** The project's containers of one service, oldest first. */
async function containersOf(service: string): Promise<string[]> {
  const out = await docker('ps', '-a', '-q', '--filter', `label=com.docker.compose.project=${PROJECT}`, '--filter', `label=com.docker.compose.service=${service}`);
  const ids = out.split('\n').filter(Boolean);
  return ids.reverse();
}

interface ContainerState {
  running: boolean;
  health: string;
  restarts: number;
  pid: number;
}
async function stateOf(id: string): Promise<ContainerState> {
  const out = await docker('inspect', '-f', '{{.State.Running}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.RestartCount}} {{.State.Pid}}', id);
  const [running, health, restarts, pid] = out.split(' ');
  return { running: running === 'true', health: health!, restarts: Number(restarts), pid: Number(pid) };
}

// ---- traffic -----------------------------------------------------------------------------------

/** One answer as counted: its status; for an error, whether it says why and, for a 503, when to come back. */
function answerOf(res: Response): string {
  if (res.ok) return String(res.status);
  const retryAfter = res.status === 503 ? (res.headers.get('retry-after') ? ' + Retry-After' : ' without Retry-After') : '';
  const details = res.headers.get('x-error-details');
  return `${res.status}${retryAfter}${details ? ` (${details})` : ' (no X-Error-Details)'}`;
}

/**
 * What the relay answered during one run of traffic, per attempt, and what came of each send; a
 * timeline of the fault's steps and of every answer other than 200 (seconds since the start).
 */
class Tally {
  readonly answers = new Map<string, number>();
  readonly acked: string[] = [];
  readonly failures: string[] = [];
  readonly timeline: string[] = [];
  retried = 0;
  private readonly t0 = Date.now();

  private at(): string {
    return ((Date.now() - this.t0) / 1000).toFixed(1);
  }
  /** A step of the fault, for the timeline. */
  mark(step: string): void {
    this.timeline.push(`${step} ${this.at()}`);
  }
  count(what: string): void {
    this.answers.set(what, (this.answers.get(what) ?? 0) + 1);
    if (what !== '200') this.timeline.push(`${what.split(' (')[0]} ${this.at()}`);
  }
  /** A fetch that counts every answer, or the network error. */
  readonly fetch: FetchLike = async (url, init) => {
    try {
      const res = await fetch(url, init);
      this.count(answerOf(res));
      return res;
    } catch (e) {
      this.count(`network error (${(e as { cause?: { code?: string } }).cause?.code ?? (e as Error).name})`);
      throw e;
    }
  };
  summary(): string {
    const answers = [...this.answers].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n}× ${k}`).join(', ');
    return `${this.acked.length} sends acknowledged, ${this.retried} retried, ${this.failures.length} failed; answers: ${answers}; timeline (s): ${this.timeline.join(', ')}`;
  }
  /** Answers other than 200 and 503 + Retry-After (what a client is told to come back after). */
  unexpected(): string[] {
    return [...this.answers.keys()].filter((a) => a !== '200' && !a.startsWith('503 + Retry-After'));
  }
}

/** Whether a failed send may be tried again: the front or the relay said "not now", or the connection broke. */
function retryDelayMs(e: unknown): number | null {
  if (e instanceof RelayHttpError && [502, 503, 504].includes(e.status)) return Math.min((e.retryAfter ?? 0.25) * 1000, 1000);
  if (e instanceof RelayNetworkError) return 250;
  return null;
}

/**
 * Senders that keep sending to one recipient (each send retried on a 502/503/504 or a broken
 * connection, up to 60 times) while `fault` runs, and for `afterMs` after it.
 */
async function underTraffic(label: string, fault: (tally: Tally) => Promise<void>, afterMs = 3000): Promise<{ tally: Tally; recipient: Identity; senders: Identity[] }> {
  const tally = new Tally();
  const recipient = generateIdentity();
  const senders = Array.from({ length: 3 }, () => generateIdentity());
  let stop = false;
  const loops = senders.map(async (identity, w) => {
    const box = new Mailbox(new RelaySession({ url: URL_, identity, fetch: tally.fetch }));
    for (let i = 0; !stop; i++) {
      const text = `${label} ${w}-${i}`;
      for (let attempt = 1; ; attempt++) {
        try {
          await box.send(recipient.publicKey, text);
          tally.acked.push(text);
          break;
        } catch (e) {
          const delay = retryDelayMs(e);
          if (delay === null || attempt >= 60) {
            tally.failures.push(`${text}: ${(e as Error).message}`);
            break;
          }
          tally.retried++;
          await sleep(delay);
        }
      }
      await sleep(150); // ~15 sends/s in all: under the per-address request rate (one address here)
    }
  });
  await sleep(2000);
  try {
    await fault(tally);
    await sleep(afterMs);
  } finally {
    stop = true;
    await Promise.all(loops);
  }
  return { tally, recipient, senders };
}

/** Every acknowledged message is in the recipient's mailbox; reports duplicates (a send retried after it was stored). */
async function checkDelivered(label: string, { tally, recipient, senders }: { tally: Tally; recipient: Identity; senders: Identity[] }): Promise<void> {
  const box = Mailbox.create({ url: URL_, identity: recipient, guests: senders.map((s) => s.publicKey) });
  const got = (await box.receive()).map((m) => m.text);
  const present = new Set(got);
  const lost = tally.acked.filter((t) => !present.has(t));
  const extra = got.length - present.size;
  report(`${label}: delivered`, `${present.size} distinct messages in the mailbox for ${tally.acked.length} acknowledged sends; ${lost.length} lost, ${extra} duplicates (a send retried after the relay had stored it)`);
  expect(lost).toEqual([]);
  await box.deleteAll();
}

// ---- the checks --------------------------------------------------------------------------------

describe('clients through the TLS front', () => {
  it('glow.ts: connect, send, count, download, status and delete', async () => {
    const t = Date.now();
    const alice = await glow.Mailbox.new(`alice-${Math.random()}`);
    const bob = await glow.Mailbox.new(`bob-${Math.random()}`);
    glowOpen.push(alice, bob);
    await alice.keyRing.addGuest('Bob', bob.keyRing.getPubCommKey());
    await bob.keyRing.addGuest('Alice', alice.keyRing.getPubCommKey());
    expect(await alice.connectToRelay(URL_)).toBe(0);
    const token = await alice.upload(URL_, 'Bob', 'hello Bob, through Caddy ✓');
    await alice.upload(URL_, 'Bob', 'second');
    expect(await bob.count(URL_)).toBe(2);
    const msgs = await bob.download(URL_);
    expect(msgs.map((m) => m.data)).toEqual(['hello Bob, through Caddy ✓', 'second']);
    expect(msgs.every((m) => m.kind === 'message' && m.senderTag === 'Alice')).toBe(true);
    expect(await alice.messageStatus(URL_, token)).toBeGreaterThan(0);
    expect(await bob.delete(URL_, msgs.map((m) => m.nonce))).toBe(0);
    expect(await alice.messageStatus(URL_, token)).toBe(-2);
    report('glow.ts flow through the front', `passed (${Date.now() - t} ms)`);
  });

  it('@zax/client and glow.ts read each other', async () => {
    const t = Date.now();
    const g = await glow.Mailbox.new(`glow-${Math.random()}`);
    glowOpen.push(g);
    const z = generateIdentity();
    await g.keyRing.addGuest('zax', Buffer.from(z.publicKey).toString('base64'));
    const zm = Mailbox.create({ url: URL_, identity: z, guests: [g.keyRing.getPubCommKey()] });
    const { token } = await zm.send(g.keyRing.getPubCommKey(), 'to glow ✓');
    const [m] = await g.download(URL_);
    expect(m).toMatchObject({ kind: 'message', senderTag: 'zax', data: 'to glow ✓' });
    expect(await zm.messageStatus(token)).toBeGreaterThan(0);
    await g.upload(URL_, 'zax', 'to zax ✓');
    const [r] = await zm.receive();
    expect(r!.status).toBe('decrypted');
    expect(r!.text).toBe('to zax ✓');
    expect(await zm.delete([r!.nonce])).toBe(0);
    report('@zax/client <-> glow.ts through the front', `passed (${Date.now() - t} ms)`);
  });
});

describe('network isolation', () => {
  /** From a throwaway container on `network`: which of `targets` (host:port) accept a TCP connection. */
  async function probe(network: string, targets: string[]): Promise<Record<string, string>> {
    const script = `
      const net = require('node:net');
      const targets = ${JSON.stringify(targets)};
      Promise.all(targets.map((t) => new Promise((done) => {
        const i = t.lastIndexOf(':');
        require('node:dns').lookup(t.slice(0, i), (err, address) => {
          if (err) return done([t, 'no such name (' + err.code + ')']);
          const s = net.connect({ host: address, port: Number(t.slice(i + 1)), timeout: 2000 });
          s.on('connect', () => { s.destroy(); done([t, 'open']); });
          s.on('timeout', () => { s.destroy(); done([t, 'no answer (dropped)']); });
          s.on('error', (e) => done([t, e.code || e.message]));
        });
      }))).then((r) => console.log(JSON.stringify(Object.fromEntries(r))));`;
    return JSON.parse(await docker('run', '--rm', '--network', `${PROJECT}_${network}`, IMAGE, 'node', '-e', script)) as Record<string, string>;
  }
  /** "4× no answer (dropped), 4× no such name (ENOTFOUND)" */
  function outcomes(targets: string[], result: Record<string, string>): string {
    const n = new Map<string, number>();
    for (const t of targets) n.set(result[t]!, (n.get(result[t]!) ?? 0) + 1);
    return [...n].map(([k, c]) => `${c}× ${k}`).join(', ');
  }
  /** Every address of one service's containers, on every network they are on. */
  async function addresses(service: string): Promise<string[]> {
    const ips: string[] = [];
    for (const id of await containersOf(service)) {
      ips.push(...(await docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}', id)).split(' ').filter(Boolean));
    }
    return ips;
  }

  it('from the front network only the gatekeepers answer; the core and both Redis cannot be reached', async () => {
    const closed = [
      'core:8081',
      'core:9091',
      'redis-core:6379',
      'redis-edge:6379',
      ...(await addresses('core')).flatMap((ip) => [`${ip}:8081`, `${ip}:9091`]),
      ...(await addresses('redis-core')).map((ip) => `${ip}:6379`),
      ...(await addresses('redis-edge')).map((ip) => `${ip}:6379`),
      ...STORE_EXTRA.map(([name, port]) => `${name}:${port}`),
      ...(await Promise.all(STORE_EXTRA.map(async ([name, port]) => (await addresses(name)).map((ip) => `${ip}:${port}`)))).flat(),
    ];
    const result = await probe('front-net', ['gatekeeper:8080', ...closed]);
    expect(result['gatekeeper:8080']).toBe('open');
    const reached = closed.filter((t) => result[t] === 'open');
    expect(reached).toEqual([]);
    report('isolation: from front-net', `gatekeeper:8080 open; ${closed.length} core/Redis names and addresses all unreachable (${outcomes(closed, result)})`);
  });

  it('from the public network only the front answers', async () => {
    const closed = ['gatekeeper:8080', 'core:8081', ...(await addresses('gatekeeper')).map((ip) => `${ip}:8080`), ...(await addresses('core')).map((ip) => `${ip}:8081`)];
    const result = await probe('public', ['front:443', ...closed]);
    expect(result['front:443']).toBe('open');
    expect(closed.filter((t) => result[t] === 'open')).toEqual([]);
    report('isolation: from public', `front:443 open; ${closed.length} gatekeeper/core names and addresses all unreachable (${outcomes(closed, result)})`);
  });

  it('nothing but the front publishes a port (and Prometheus on loopback only)', async () => {
    const ids = (await docker('ps', '-q', '--filter', `label=com.docker.compose.project=${PROJECT}`)).split('\n').filter(Boolean);
    const published: string[] = [];
    for (const id of ids) {
      const [service, ports] = (await docker('inspect', '-f', '{{index .Config.Labels "com.docker.compose.service"}}|{{json .NetworkSettings.Ports}}', id)).split('|');
      const bindings = Object.entries((JSON.parse(ports!) ?? {}) as Record<string, Array<{ HostIp: string; HostPort: string }> | null>);
      for (const [port, hosts] of bindings) for (const h of hosts ?? []) published.push(`${service} ${port} -> ${h.HostIp}:${h.HostPort}`);
    }
    const others = published.filter((p) => !p.startsWith('front ') && !/^prometheus 9090\/tcp -> 127\.0\.0\.1:/.test(p));
    expect(others).toEqual([]);
    expect(published.some((p) => p.startsWith('front 443/tcp'))).toBe(true);
    report('published ports', published.join('; '));
  });
});

describe('Prometheus (the metrics profile)', () => {
  it('scrapes every gatekeeper and the core: up == 1 for each target', async () => {
    const t = Date.now();
    type Sample = { metric: Record<string, string>; value: [number, string] };
    const gatekeepers = (await containersOf('gatekeeper')).length;
    let last: Sample[] = [];
    const ok = await until(
      'Prometheus reports up == 1 for every relay target',
      async () => {
        const res = await fetch(`${PROMETHEUS}/api/v1/query?query=up`).catch(() => null);
        if (!res?.ok) return false;
        last = ((await res.json()) as { data: { result: Sample[] } }).data.result;
        const of = (job: string) => last.filter((s) => s.metric.job === job);
        const all = [...of('zax-gatekeeper'), ...of('zax-core')];
        return of('zax-gatekeeper').length === gatekeepers && of('zax-core').length === 1 && all.every((s) => s.value[1] === '1') && all;
      },
      120_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}; last answer: ${JSON.stringify(last.map((s) => [s.metric.job, s.metric.instance, s.value[1]]))}`);
    });
    report('prometheus: up == 1', `${ok.map((s) => `${s.metric.job} ${s.metric.instance}`).join(', ')} (after ${Math.round((Date.now() - t) / 1000)} s)`);
  });
});

describe('faults under traffic', () => {
  it('docker kill of one gatekeeper: nothing fails beyond retried requests', async () => {
    const [victim] = await containersOf('gatekeeper');
    const before = await stateOf(victim!);
    let restartedByPolicy = false;
    let backMs = 0;
    const run = await underTraffic('kill', async (tally) => {
      const t = Date.now();
      tally.mark('docker kill');
      await docker('kill', victim!);
      // Does the restart policy (unless-stopped) bring it back? Docker counts `docker kill` as a
      // deliberate stop, like `docker stop`: watch for a while, then start it as an operator would.
      restartedByPolicy = await until('killed gatekeeper restarted', async () => ((await stateOf(victim!)).running ? true : undefined), 15_000).catch(() => false);
      if (!restartedByPolicy) {
        tally.mark('docker start');
        await docker('start', victim!);
      }
      await until('killed gatekeeper healthy again', async () => (await stateOf(victim!)).health === 'healthy', 90_000);
      tally.mark('healthy');
      backMs = Date.now() - t;
    });
    const after = await stateOf(victim!);
    report('fault docker kill gatekeeper: traffic', run.tally.summary());
    report(
      'fault docker kill gatekeeper: back',
      `${restartedByPolicy ? 'restarted by the restart policy' : 'NOT restarted by the restart policy (docker kill counts as a manual stop); started with docker start'}, healthy ${(backMs / 1000).toFixed(1)} s after the kill (restart count ${before.restarts} -> ${after.restarts})`,
    );
    expect(run.tally.failures).toEqual([]);
    expect(run.tally.unexpected()).toEqual([]);
    await checkDelivered('fault docker kill gatekeeper', run);
  });

  it('a gatekeeper crashing (its process killed with SIGKILL): the restart policy brings it back', async () => {
    const [, victim] = await containersOf('gatekeeper');
    const before = await stateOf(victim!);
    let backMs = 0;
    const run = await underTraffic('crash', async (tally) => {
      const t = Date.now();
      tally.mark('SIGKILL');
      process.kill(before.pid, 'SIGKILL'); // the container's node process, from the host: a crash, not a stop
      await until('crashed gatekeeper restarted by its policy', async () => {
        const s = await stateOf(victim!);
        return s.running && s.restarts > before.restarts;
      }, 30_000);
      tally.mark('restarted');
      await until('crashed gatekeeper healthy again', async () => (await stateOf(victim!)).health === 'healthy', 90_000);
      tally.mark('healthy');
      backMs = Date.now() - t;
    });
    const after = await stateOf(victim!);
    report('fault crash gatekeeper: traffic', run.tally.summary());
    report('fault crash gatekeeper: back', `restarted by the restart policy (restart count ${before.restarts} -> ${after.restarts}), healthy ${(backMs / 1000).toFixed(1)} s after the crash`);
    expect(run.tally.failures).toEqual([]);
    expect(run.tally.unexpected()).toEqual([]);
    await checkDelivered('fault crash gatekeeper', run);
  });

  it('restarting the core: 503 + Retry-After at most, then recovery, and no acknowledged message lost', async () => {
    const [core] = await containersOf('core');
    const startedAt = () => docker('inspect', '-f', '{{.State.StartedAt}}', core!);
    const firstStart = await startedAt();
    let restartMs = 0;
    let healthyMs = 0;
    const run = await underTraffic('core', async (tally) => {
      const t = Date.now();
      tally.mark('docker restart');
      await docker('restart', core!);
      restartMs = Date.now() - t;
      tally.mark('restarted');
      await until('core healthy again', async () => (await stateOf(core!)).health === 'healthy', 90_000);
      tally.mark('healthy');
      healthyMs = Date.now() - t;
    });
    expect(await startedAt()).not.toBe(firstStart); // it did restart
    report('fault restart core: traffic', run.tally.summary());
    report('fault restart core: back', `docker restart took ${(restartMs / 1000).toFixed(1)} s, healthy ${(healthyMs / 1000).toFixed(1)} s after it began`);
    expect(run.tally.failures).toEqual([]);
    expect(run.tally.unexpected()).toEqual([]);
    await checkDelivered('fault restart core', run);
  });
});

describe.runIf(STORE === 'sentinel')('the core store replicated with Sentinel (deploy/compose/sentinel.yml)', () => {
  /** The primary's address as the sentinels name it (asked inside a sentinel container). */
  async function primaryAddress(): Promise<string> {
    const [sentinel] = await containersOf('redis-core-sentinel-1');
    const out = await docker('exec', sentinel!, 'redis-cli', '-p', '26379', 'SENTINEL', 'get-master-addr-by-name', 'zax-core');
    return out.split('\n')[0]!.trim();
  }
  /** The container of the store node that has `ip`. */
  async function nodeWith(ip: string): Promise<string> {
    for (const service of ['redis-core', 'redis-core-2', 'redis-core-3']) {
      for (const id of await containersOf(service)) {
        const ips = (await docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}', id)).split(' ');
        if (ips.includes(ip)) return id;
      }
    }
    throw new Error(`no store node has ${ip}`);
  }

  it('killing the primary (docker kill): a replica is promoted, clients see 200 or 503 + Retry-After, no acknowledged message lost', async () => {
    const before = await primaryAddress();
    const victim = await nodeWith(before);
    let promotedMs = 0;
    let after = '';
    const run = await underTraffic('store primary', async (tally) => {
      const t = Date.now();
      tally.mark('docker kill primary');
      await docker('kill', victim);
      after = await until('a replica promoted', async () => {
        const a = await primaryAddress().catch(() => before);
        return a !== before ? a : undefined;
      }, 60_000);
      promotedMs = Date.now() - t;
      tally.mark('promoted');
      // The operator starts it again: it comes back as a replica of the new primary.
      await docker('start', victim);
      await until('old primary healthy again', async () => (await stateOf(victim)).health === 'healthy', 90_000);
      tally.mark('back as replica');
    }, 5000);
    report('fault docker kill store primary: traffic', run.tally.summary());
    report('fault docker kill store primary: back', `a replica promoted ${(promotedMs / 1000).toFixed(1)} s after the kill (${before} -> ${after}); the old primary back as a replica`);
    expect(run.tally.failures).toEqual([]);
    expect(run.tally.unexpected()).toEqual([]);
    await checkDelivered('fault docker kill store primary', run);
  });
});
