/**
 * Observability: the documented `zax_gatekeeper_*` metrics appear on /metrics and move with
 * traffic, labels never hold an address or a token, /metrics moves to ADMIN_PORT when one is set,
 * and the logger drops secrets and (by default) client addresses.
 */
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { b64, h2 } from '@zax/protocol';
import { createApp } from '../src/app.js';
import { createLogger } from '@zax/service';
import { createMetrics } from '../src/metrics.js';
import { closeServer, listen, post, request, startFakeCore, startGatekeeper, type FakeCore, type Gatekeeper } from './helpers.js';

const CT = Buffer.alloc(32, 0x51);
const RT = Buffer.alloc(32, 0x61);
const ID = b64(h2(CT));

let core: FakeCore;
let gk: Gatekeeper;
beforeEach(async () => {
  core = await startFakeCore();
});
afterEach(async () => {
  await gk.close();
  await core.close();
});

/** The value of one sample line (`name{labels} value`), 0 if absent. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

const scrape = async (port: number): Promise<string> => {
  const r = await request(port, { method: 'GET', path: '/metrics' });
  expect(r.status).toBe(200);
  expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return r.body;
};

/** Scrapes /metrics where it is served by default: the admin handler (ADMIN_PORT). */
const scrapeAdmin = async (g: Gatekeeper): Promise<string> => {
  const admin = await listen(g.app.adminHandler);
  try {
    return await scrape(admin.port);
  } finally {
    await closeServer(admin.server);
  }
};

describe('/metrics', () => {
  it('lists the documented names, and they move when traffic flows', async () => {
    gk = await startGatekeeper({
      coreUrl: core.url,
      random: (n) => RT.subarray(0, n),
      metrics: createMetrics({ collectDefault: true }),
      env: { REQUEST_BURST_PER_IP: '2', REQUEST_RATE_PER_IP_PER_MIN: '1' },
    });
    const before = await scrapeAdmin(gk);
    for (const name of [
      'zax_gatekeeper_http_request_duration_seconds',
      'zax_gatekeeper_handshakes_started_total',
      'zax_gatekeeper_handshakes_verified_total',
      'zax_gatekeeper_handshakes_failed_total',
      'zax_gatekeeper_pow_failures_total',
      'zax_gatekeeper_sessions_minted_total',
      'zax_gatekeeper_throttled_requests_total',
      'zax_gatekeeper_overloaded_requests_total',
      'zax_gatekeeper_proxied_requests_total',
      'zax_gatekeeper_redis_command_duration_seconds',
      'zax_gatekeeper_in_flight_requests',
      'zax_gatekeeper_difficulty',
      'zax_gatekeeper_difficulty_leader',
      'zax_gatekeeper_core_load_polls_total',
      'zax_gatekeeper_insecure_requests_refused_total',
      'zax_gatekeeper_tls_certificate_loads_total',
      'zax_gatekeeper_tls_certificate_not_after_seconds',
      // default process metrics, under the same prefix
      'zax_gatekeeper_process_cpu_user_seconds_total',
      'zax_gatekeeper_process_resident_memory_bytes',
      'zax_gatekeeper_nodejs_eventloop_lag_seconds',
      'zax_gatekeeper_nodejs_heap_size_used_bytes',
    ]) {
      expect(before, name).toContain(`# TYPE ${name} `);
    }
    // every metric is ours
    for (const line of before.split('\n').filter((l) => l.startsWith('# TYPE '))) expect(line).toMatch(/^# TYPE zax_gatekeeper_/);

    await post(gk.port, '/start_session', b64(CT));
    await post(gk.port, '/verify_session', `${ID}\r\n${b64(h2(CT))}`); // wrong answer
    await post(gk.port, '/verify_session', `${ID}\r\n${b64(h2(CT, RT))}`);
    await post(gk.port, '/verify_session', `${ID}\r\nshort`); // malformed
    await post(gk.port, '/command', 'x');
    await post(gk.port, '/prove', 'x');
    await post(gk.port, '/command', 'x'); // throttled: burst 2

    const after = await scrapeAdmin(gk);
    expect(sample(after, 'zax_gatekeeper_handshakes_started_total')).toBe(1);
    expect(sample(after, 'zax_gatekeeper_handshakes_verified_total')).toBe(1);
    expect(sample(after, 'zax_gatekeeper_handshakes_failed_total{reason="wrong_answer"}')).toBe(1);
    expect(sample(after, 'zax_gatekeeper_handshakes_failed_total{reason="malformed"}')).toBe(1);
    expect(sample(after, 'zax_gatekeeper_pow_failures_total')).toBe(1);
    expect(sample(after, 'zax_gatekeeper_sessions_minted_total')).toBe(1);
    expect(sample(after, 'zax_gatekeeper_throttled_requests_total{budget="request"}')).toBe(1);
    expect(sample(after, 'zax_gatekeeper_throttled_requests_total{budget="handshake"}')).toBe(0);
    expect(sample(after, 'zax_gatekeeper_proxied_requests_total{route="command",status="200"}')).toBe(1);
    expect(sample(after, 'zax_gatekeeper_proxied_requests_total{route="prove",status="200"}')).toBe(1);
    expect(sample(after, 'zax_gatekeeper_http_request_duration_seconds_count{route="start_session",status="200"}')).toBe(1);
    expect(sample(after, 'zax_gatekeeper_http_request_duration_seconds_count{route="verify_session",status="401"}')).toBe(1);
    expect(sample(after, 'zax_gatekeeper_http_request_duration_seconds_count{route="command",status="429"}')).toBe(1);
    expect(sample(after, 'zax_gatekeeper_http_request_duration_seconds_count{route="metrics",status="200"}')).toBeGreaterThanOrEqual(1);
    expect(sample(after, 'zax_gatekeeper_body_refused_total{reason="slow"}')).toBe(0);
    expect(sample(after, 'zax_gatekeeper_body_bytes_in_flight')).toBe(0);
    expect(sample(after, 'zax_gatekeeper_redis_command_duration_seconds_count{op="throttle"}')).toBe(7);
    expect(sample(after, 'zax_gatekeeper_redis_command_duration_seconds_count{op="start_session"}')).toBe(1);
    expect(sample(after, 'zax_gatekeeper_redis_command_duration_seconds_count{op="read_handshake"}')).toBe(2);
    expect(sample(after, 'zax_gatekeeper_difficulty')).toBe(0);

    // labels never hold an address, a token or an hpk
    for (const secret of ['127.0.0.1', b64(CT), ID, b64(RT)]) expect(after).not.toContain(secret);
  });

  it('shows the static difficulty', async () => {
    gk = await startGatekeeper({ coreUrl: core.url, env: { DIFFICULTY: '6' } });
    expect(sample(await scrapeAdmin(gk), 'zax_gatekeeper_difficulty')).toBe(6);
  });

  it('is not on the public port by default (404), with or without a path in absolute form', async () => {
    gk = await startGatekeeper({ coreUrl: core.url });
    expect((await request(gk.port, { method: 'GET', path: '/metrics' })).status).toBe(404);
    expect((await request(gk.port, { method: 'GET', path: `http://127.0.0.1:${gk.port}/metrics` })).status).toBe(404);
    expect((await request(gk.port, { method: 'GET', path: '/livez' })).status).toBe(200);
  });

  it('METRICS_ON_PUBLIC_PORT=true serves it on the public port, throttled like a request', async () => {
    gk = await startGatekeeper({
      coreUrl: core.url,
      env: { METRICS_ON_PUBLIC_PORT: 'true', REQUEST_BURST_PER_IP: '2', REQUEST_RATE_PER_IP_PER_MIN: '1' },
    });
    expect(await scrape(gk.port)).toContain('zax_gatekeeper_in_flight_requests');
    expect((await request(gk.port, { method: 'GET', path: '/metrics' })).status).toBe(200);
    const third = await request(gk.port, { method: 'GET', path: '/metrics' });
    expect(third.status).toBe(429);
    expect(Number(third.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // health stays unthrottled
    expect((await request(gk.port, { method: 'GET', path: '/livez' })).status).toBe(200);
  });
});

describe('ADMIN_PORT', () => {
  it('moves /metrics off the public port; /livez and /readyz answer on both; nothing else on the admin port', async () => {
    gk = await startGatekeeper({ coreUrl: core.url, env: { ADMIN_PORT: '0' } });
    const admin = await listen(gk.app.adminHandler);
    try {
      expect((await request(gk.port, { method: 'GET', path: '/metrics' })).status).toBe(404);
      expect(await scrape(admin.port)).toContain('zax_gatekeeper_http_request_duration_seconds');
      for (const port of [gk.port, admin.port]) {
        expect((await request(port, { method: 'GET', path: '/livez' })).status).toBe(200);
        expect((await request(port, { method: 'GET', path: '/readyz' })).status).toBe(200);
      }
      expect((await post(admin.port, '/start_session', b64(CT))).status).toBe(404);
      expect((await request(admin.port, { method: 'GET', path: '/other' })).status).toBe(404);
    } finally {
      await closeServer(admin.server);
    }
  });
});

describe('logs', () => {
  it('redacts secret fields and drops client addresses unless LOG_CLIENT_IPS', async () => {
    const out: string[] = [];
    const sink = new Writable({
      write(c: Buffer, _e, cb) {
        out.push(c.toString());
        cb();
      },
    });
    const entry = { clientToken: 'CT', relayToken: 'RT', body: 'B', nested: { key: 'K', nonce: 'N' }, client: '198.51.100.1', budget: 'handshake' };
    createLogger('info', {}, sink).info(entry, 'x');
    createLogger('info', { logClientIps: true }, sink).info(entry, 'y');
    const [off, on] = out.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(off).toMatchObject({ budget: 'handshake', nested: {} });
    for (const f of ['clientToken', 'relayToken', 'body', 'client']) expect(off).not.toHaveProperty(f);
    expect(off!.nested).toEqual({});
    expect(on).toMatchObject({ client: '198.51.100.1' });
    expect(on).not.toHaveProperty('clientToken');
  });

  it('an app built with LOG_CLIENT_IPS=false never logs the throttled address', async () => {
    const out: string[] = [];
    const sink = new Writable({
      write(c: Buffer, _e, cb) {
        out.push(c.toString());
        cb();
      },
    });
    gk = await startGatekeeper({ coreUrl: core.url, env: { HANDSHAKE_BURST_PER_IP: '1', HANDSHAKE_RATE_PER_IP_PER_MIN: '1' } });
    const app = createApp({ config: gk.config, redis: gk.redis, clock: gk.clock, random: (n) => RT.subarray(0, n), log: createLogger('debug', {}, sink) });
    const s = await listen(app.handler);
    try {
      await post(s.port, '/start_session', b64(CT));
      expect((await post(s.port, '/start_session', b64(CT))).status).toBe(429);
      expect(out.join('')).toContain('"msg":"throttled"');
      expect(out.join('')).not.toContain('127.0.0.1');
    } finally {
      await closeServer(s.server);
      await app.close();
    }
  });
});
