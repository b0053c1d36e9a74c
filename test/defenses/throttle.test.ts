/**
 * Throttling on real processes (docs/DESIGN.md "The gatekeeper"): two gatekeeper replicas sharing one edge Redis enforce one
 * budget per client; spoofed X-Forwarded-For from an untrusted peer buys nothing; behind a trusted
 * proxy, clients are told apart by address (IPv6 by /64); 429 carries Retry-After; health routes
 * are never throttled; /metrics lives on the admin port and counts the 429s. The processes run on the
 * system clock: a Retry-After is checked against the time the test measured since the budget's first
 * request (whatever the machine's speed), and exactly, on an injected clock, by two in-process
 * gatekeepers at the end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { TEXT_TOO_MANY, b64 } from '@zax/protocol';
import { Relay, post } from '../support/relay.js';
import * as raw from '../support/raw.js';
import { startStack, type Stack } from '../support/stack.js';

const token = (): string => b64(raw.rnd(32));

function expectThrottled(r: { status: number; headers: Headers; text: string }): void {
  expect(r.status).toBe(429);
  expect(r.text).toBe('');
  expect(r.headers.get('x-error-details')).toBe(TEXT_TOO_MANY);
  const ra = Number(r.headers.get('retry-after'));
  expect(Number.isInteger(ra) && ra >= 1).toBe(true);
}

describe('two replicas, no trusted proxy', () => {
  let relay: Relay;
  beforeAll(async () => {
    relay = await Relay.start({
      redisUrl: inject('redisUrl'),
      gatekeepers: 2,
      adminPorts: true,
      throttling: true,
      env: {
        HANDSHAKE_BURST_PER_IP: '4',
        HANDSHAKE_RATE_PER_IP_PER_MIN: '1',
        REQUEST_BURST_PER_IP: '3',
        REQUEST_RATE_PER_IP_PER_MIN: '1',
      },
    });
  });
  afterAll(async () => relay?.stop());

  it('the handshake budget holds across both processes, spoofed X-Forwarded-For notwithstanding', async () => {
    const statuses: number[] = [];
    const started = Date.now();
    for (let i = 0; i < 8; i++) {
      // every request claims another address: from an untrusted peer the header is ignored
      const r = await post(`${relay.urls[i % 2]}/start_session`, token(), { 'x-forwarded-for': `198.51.100.${i}` });
      statuses.push(r.status);
      if (r.status === 429) {
        expectThrottled(r);
        // A token per minute: the next one is due a minute after the first request, less at most
        // the time gone since then (measured here, so the bound holds at any speed).
        const sinceFirstSec = (Date.now() - started) / 1000;
        const ra = Number(r.headers.get('retry-after'));
        expect(ra).toBeLessThanOrEqual(60);
        expect(ra).toBeGreaterThanOrEqual(Math.ceil(60 - sinceFirstSec));
      }
    }
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429, 429, 429]);
  });

  it('the request budget holds across both processes and is separate from the handshake budget', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await post(`${relay.urls[i % 2]}/command`, 'x')).status);
    // 400: the core's answer to a malformed body; 429 never reaches the core
    expect(statuses).toEqual([400, 400, 400, 429, 429, 429]);
  });

  it('never throttles /livez and /readyz (main and admin ports) or /metrics', async () => {
    for (let i = 0; i < 10; i++) {
      for (const base of [...relay.urls, ...relay.adminUrls]) {
        expect((await fetch(`${base}/livez`)).status).toBe(200);
        expect((await fetch(`${base}/readyz`)).status).toBe(200);
      }
      for (const base of relay.adminUrls) expect((await fetch(`${base}/metrics`)).status).toBe(200);
    }
  });

  it('serves /metrics on the admin port only, counting the 429s of each replica', async () => {
    let handshake = 0;
    let request = 0;
    for (let i = 0; i < 2; i++) {
      expect((await fetch(`${relay.urls[i]}/metrics`)).status).toBe(404);
      const text = await (await fetch(`${relay.adminUrls[i]}/metrics`)).text();
      const value = (series: string): number => Number(text.split('\n').find((l) => l.startsWith(`${series} `))?.split(' ')[1] ?? 0);
      handshake += value('zax_gatekeeper_throttled_requests_total{budget="handshake"}');
      request += value('zax_gatekeeper_throttled_requests_total{budget="request"}');
      expect(text).toContain('zax_gatekeeper_process_cpu_user_seconds_total');
      expect(text).not.toContain('127.0.0.1');
    }
    expect([handshake, request]).toEqual([4, 3]);
  });

  it('logs no client address (LOG_CLIENT_IPS is off by default)', () => {
    for (const g of relay.gatekeepers) expect(g.logs.join('\n')).not.toContain('198.51.100.');
  });
});

describe('behind a trusted proxy', () => {
  let relay: Relay;
  beforeAll(async () => {
    relay = await Relay.start({
      redisUrl: inject('redisUrl'),
      gatekeepers: 2,
      throttling: true,
      env: { TRUSTED_PROXIES: '127.0.0.1/32,::1', HANDSHAKE_BURST_PER_IP: '2', HANDSHAKE_RATE_PER_IP_PER_MIN: '1' },
    });
  });
  afterAll(async () => relay?.stop());

  const from = (url: string, xff: string) => post(`${url}/start_session`, token(), { 'x-forwarded-for': xff });

  it('throttles a flood from a few addresses, each on its own budget, across both replicas', async () => {
    const byClient = new Map<string, number[]>();
    for (let i = 0; i < 12; i++) {
      const client = `203.0.113.${i % 3}`;
      const r = await from(relay.urls[i % 2]!, client);
      byClient.set(client, [...(byClient.get(client) ?? []), r.status]);
    }
    for (const statuses of byClient.values()) expect(statuses).toEqual([200, 200, 429, 429]);
  });

  it('lets a flood from many addresses through (that is the difficulty’s job, not the throttle’s)', async () => {
    const statuses = await Promise.all(Array.from({ length: 40 }, (_, i) => from(relay.urls[i % 2]!, `10.1.${i}.7`).then((r) => r.status)));
    expect(statuses.every((s) => s === 200)).toBe(true);
  });

  it('groups IPv6 clients by /64; a client-written entry left of the real one is ignored', async () => {
    const a = ['2001:db8:aa:1::1', '2001:db8:aa:1::2', '2001:db8:aa:1:ffff::9'];
    const statuses = [];
    for (const [i, addr] of a.entries()) statuses.push((await from(relay.urls[i % 2]!, addr)).status);
    expect(statuses).toEqual([200, 200, 429]);
    expect((await from(relay.url, '2001:db8:aa:2::1')).status).toBe(200);
    expectThrottled(await from(relay.url, `198.51.100.200, 2001:db8:aa:1::77`));
  });
});

describe('two replicas on one injected clock', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      redisUrl: inject('redisUrl'),
      gatekeepers: 2,
      env: { HANDSHAKE_BURST_PER_IP: '4', HANDSHAKE_RATE_PER_IP_PER_MIN: '1' },
    });
  });
  afterAll(async () => stack?.close());

  const start = (i: number) => post(`${stack.urls[i % 2]}/start_session`, token());
  const retryAfter = (r: { headers: Headers }): number => Number(r.headers.get('retry-after'));

  it('one token per minute for both: Retry-After counts down to it, and either replica grants it then', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await start(i)).status);
    expect(statuses).toEqual([200, 200, 200, 200]);
    for (let i = 0; i < 2; i++) {
      const r = await start(i);
      expectThrottled(r);
      expect(retryAfter(r)).toBe(60);
    }
    stack.clock.advanceMs(45_000);
    expect(retryAfter(await start(1))).toBe(15);
    stack.clock.advanceMs(14_999);
    expect(retryAfter(await start(0))).toBe(1);
    stack.clock.advanceMs(1);
    expect((await start(1)).status).toBe(200);
    const after = await start(0);
    expectThrottled(after);
    expect(retryAfter(after)).toBe(60);
  });
});
