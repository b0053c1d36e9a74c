/**
 * The core's Prometheus metrics (metrics.ts): the documented `zax_core_*` names are on `/metrics`,
 * they move with traffic (requests, commands by name and status, mints, proofs, messages and file
 * bytes stored / deleted / expired, Redis latency by operation), no label holds an hpk, and
 * `/metrics` follows CORE_ADMIN_PORT: on the main port without a secret when it is unset, only on
 * the admin port when it is set — in-process and on the built process.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { INTERNAL_SECRET_HEADER, type CommandName } from '@zax/protocol';
import { dropPrefix, freshPrefix } from '../../../test/support/prefix.js';
import { freePort } from '../../../test/support/redis-server.js';
import { createMetrics } from '../src/metrics.js';
import { deleteFile, putChunkOk, rnd, startFile } from './files-fixture.js';
import { SECRET, command, commandJson, commandPlain, establishSession, mint, redisUrl, startCore, type Core } from './helpers.js';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

/** Every name documented in the core README ("Metrics"). */
export const CORE_METRIC_NAMES = [
  'zax_core_process_cpu_user_seconds_total',
  'zax_core_nodejs_eventloop_lag_seconds',
  'zax_core_http_request_duration_seconds',
  'zax_core_commands_total',
  'zax_core_handshakes_minted_total',
  'zax_core_proofs_total',
  'zax_core_messages_stored_total',
  'zax_core_messages_deleted_total',
  'zax_core_messages_expired_total',
  'zax_core_message_bytes_stored_total',
  'zax_core_message_bytes_deleted_total',
  'zax_core_message_bytes_expired_total',
  'zax_core_file_chunks_stored_total',
  'zax_core_file_bytes_stored_total',
  'zax_core_files_deleted_total',
  'zax_core_file_bytes_deleted_total',
  'zax_core_files_expired_total',
  'zax_core_file_bytes_expired_total',
  'zax_core_redis_command_duration_seconds',
  'zax_core_jobs_total',
  'zax_core_job_schedules_restored_total',
  'zax_core_job_last_run_timestamp_seconds',
  'zax_core_job_stale',
  'zax_core_event_loop_utilization',
  'zax_core_latency_p99_seconds',
  'zax_core_load_mints',
  'zax_core_load_commands',
  'zax_core_load_replicas',
  'zax_core_load_event_loop_utilization',
  'zax_core_load_latency_p99_seconds',
  'zax_core_load_period_end_seconds',
  'zax_core_redis_used_memory_bytes',
  'zax_core_redis_max_memory_bytes',
  'zax_core_store_high_water_ratio',
  'zax_core_file_bytes_stored',
  'zax_core_mailboxes',
  'zax_core_messages',
  'zax_core_files',
  'zax_core_census_timestamp_seconds',
  'zax_core_census_complete',
] as const;

let cores: Core[] = [];
let servers: Server[] = [];
afterEach(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
  servers = [];
  for (const c of cores) await c.close();
  cores = [];
});

async function core(env: Record<string, string> = {}): Promise<Core> {
  const c = await startCore({ env: { MESSAGE_TTL_SEC: '100', FILE_TTL_SEC: '100', ...env } });
  cores.push(c);
  return c;
}

/** The value of one sample line (`name{labels} value`), 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-z_:]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const have = (m[2] ?? '').split(',').filter((x) => x !== '');
    if (want.every((w) => have.includes(w))) return Number(m[3]);
  }
  return 0;
}

const scrape = async (url: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string; type: string | null }> => {
  const r = await fetch(`${url}/metrics`, { headers });
  return { status: r.status, text: await r.text(), type: r.headers.get('content-type') };
};

describe('metrics on the main port (no CORE_ADMIN_PORT)', () => {
  it('are served without the secret and list the documented names', async () => {
    const c = await core();
    const r = await scrape(c.url, { [INTERNAL_SECRET_HEADER]: '' });
    expect(r.status).toBe(200);
    expect(r.type).toContain('text/plain');
    // process metrics come from main.ts (collectDefault); everything else from any app
    for (const name of CORE_METRIC_NAMES.filter((n) => !n.includes('process_') && !n.includes('nodejs_'))) expect(r.text, name).toContain(`# TYPE ${name} `);
  });

  it('move with traffic: requests, mints, proofs, commands by name and status, messages, files, Redis latency', async () => {
    const c = await core();
    const alice = await establishSession(c);
    const bob = await establishSession(c);
    await mint(c);
    // a proof that fails (the handshake is already used) and one that cannot even be framed
    expect((await c.post('/prove', 'x')).status).toBe(400);

    await commandPlain(c, alice, { cmd: 'upload', to: bob.hpk, payload: 'hello' });
    await commandPlain(c, alice, { cmd: 'upload', to: bob.hpk, payload: 'world!' });
    const items = await commandJson<{ nonce: string }[]>(c, bob, { cmd: 'download' });
    expect(items).toHaveLength(2);
    expect(await commandPlain(c, bob, { cmd: 'delete', payload: [items[0]!.nonce] })).toBe('1');
    // a message that expires, compacted by the next count
    await commandPlain(c, bob, { cmd: 'upload', to: alice.hpk, payload: 'ephemeral' });
    c.clock.advanceSec(101);
    const alice2 = await establishSession(c, alice.identity);
    const bob2 = await establishSession(c, bob.identity);
    expect(await commandJson(c, alice2, { cmd: 'count' })).toBe(0);
    expect(await commandJson(c, bob2, { cmd: 'count' })).toBe(0); // its other message expired too
    // a command refused before its box is opened, and one refused after
    expect((await command(c, { ...alice2, hpk: bob2.hpk }, { cmd: 'count' })).status).toBe(401);
    expect((await command(c, alice2, { cmd: 'upload', to: 'nope', payload: 'x' })).status).toBe(400);
    // files: two chunks stored, the file deleted
    const f = await startFile(c, alice2, bob2, 1000);
    await putChunkOk(c, alice2, f.uploadID, 0, rnd(300));
    await putChunkOk(c, alice2, f.uploadID, 1, rnd(200), { last: true });
    expect(await deleteFile(c, bob2, f.uploadID)).toEqual({ status: 'OK' });

    await c.app.load.tick();
    const { text } = await scrape(c.url);
    const v = (name: string, labels: Record<string, string> = {}) => sample(text, name, labels);
    expect(v('zax_core_handshakes_minted_total', { outcome: 'ok' })).toBe(5);
    expect(v('zax_core_proofs_total', { outcome: 'ok' })).toBe(4);
    expect(v('zax_core_proofs_total', { outcome: 'failed' })).toBe(1);
    const cmd = (name: CommandName | 'unknown', status: number) => v('zax_core_commands_total', { cmd: name, status: String(status) });
    expect(cmd('upload', 200)).toBe(3);
    expect(cmd('download', 200)).toBe(1);
    expect(cmd('delete', 200)).toBe(1);
    expect(cmd('count', 200)).toBe(2);
    expect(cmd('unknown', 401)).toBe(1);
    expect(cmd('upload', 400)).toBe(1);
    expect(cmd('startFileUpload', 200)).toBe(1);
    expect(cmd('uploadFileChunk', 200)).toBe(2);
    expect(cmd('deleteFile', 200)).toBe(1);
    expect(v('zax_core_http_request_duration_seconds_count', { route: 'command', status: '200' })).toBe(11);
    expect(v('zax_core_http_request_duration_seconds_count', { route: 'command', status: '401' })).toBe(1);
    expect(v('zax_core_http_request_duration_seconds_count', { route: 'prove', status: '400' })).toBe(1);
    expect(v('zax_core_http_request_duration_seconds_count', { route: 'internal_sessions', status: '200' })).toBe(5);

    // messages: 'hello', 'world!', 'ephemeral' and the file message of startFileUpload
    expect(v('zax_core_messages_stored_total')).toBe(4);
    expect(v('zax_core_messages_deleted_total')).toBe(1);
    expect(v('zax_core_messages_expired_total')).toBe(2);
    const stored = v('zax_core_message_bytes_stored_total');
    expect(stored).toBeGreaterThan('helloworld!ephemeral'.length);
    expect(v('zax_core_message_bytes_deleted_total')).toBeGreaterThan(0);
    expect(v('zax_core_message_bytes_expired_total')).toBeGreaterThan(0);
    // what is left in bob's mailbox is what was stored minus deleted and expired (alice has the file message)
    expect(v('zax_core_message_bytes_deleted_total') + v('zax_core_message_bytes_expired_total')).toBeLessThan(stored);
    expect(v('zax_core_file_chunks_stored_total')).toBe(2);
    expect(v('zax_core_file_bytes_stored_total')).toBe(500);
    expect(v('zax_core_files_deleted_total')).toBe(1);
    expect(v('zax_core_file_bytes_deleted_total')).toBe(500);
    // Redis latency by store operation (names as labels, never keys)
    expect(v('zax_core_redis_command_duration_seconds_count', { op: 'session_open' })).toBeGreaterThanOrEqual(10);
    expect(v('zax_core_redis_command_duration_seconds_count', { op: 'mint' })).toBe(5);
    expect(v('zax_core_redis_command_duration_seconds_count', { op: 'load_flush' })).toBeGreaterThanOrEqual(1);
    // load gauges: this replica and the deployment (as /internal/load serves it)
    expect(v('zax_core_redis_used_memory_bytes')).toBeGreaterThan(0);
    expect(v('zax_core_load_period_end_seconds')).toBeGreaterThan(0);

    // no label value is an hpk, a token, an uploadID or a nonce
    for (const id of [alice.hpk, bob.hpk, f.uploadID, items[1]!.nonce]) {
      expect(text).not.toContain(id.slice(0, 8));
    }
    for (const line of text.split('\n').filter((l) => l.includes('{'))) {
      for (const [, value] of line.matchAll(/="([^"]*)"/g)) expect(value!.length, line).toBeLessThan(24);
    }
  });

  it('counts job outcomes by job name', async () => {
    const m = createMetrics();
    m.job('file-sweep', 'completed');
    m.job('load-aggregate', 'failed');
    const text = await m.registry.metrics();
    expect(sample(text, 'zax_core_jobs_total', { job: 'file-sweep', outcome: 'completed' })).toBe(1);
    expect(sample(text, 'zax_core_jobs_total', { job: 'load-aggregate', outcome: 'failed' })).toBe(1);
  });
});

describe('an aggregated exposition (worker group)', () => {
  it('a scrape that cannot be completed is 503 + Retry-After, not 500', async () => {
    const metrics = createMetrics({ exposition: () => Promise.reject(new Error('worker 2 did not answer')) });
    const c = await startCore({ metrics });
    cores.push(c);
    const r = await fetch(`${c.url}/metrics`);
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).not.toBeNull();
  });
});

describe('CORE_ADMIN_PORT', () => {
  it('in-process: /metrics only on the admin handler; health on both; nothing else there', async () => {
    const c = await core({ CORE_ADMIN_PORT: '9191' });
    const admin = createServer(c.app.adminHandler);
    servers.push(admin);
    await new Promise<void>((r) => admin.listen(0, '127.0.0.1', r));
    const adminUrl = `http://127.0.0.1:${(admin.address() as AddressInfo).port}`;

    expect((await scrape(c.url, { [INTERNAL_SECRET_HEADER]: '' })).status).toBe(403); // behind the secret gate, like any route
    expect((await scrape(c.url, { [INTERNAL_SECRET_HEADER]: SECRET })).status).toBe(404); // with the secret: not a route of the main port
    const m = await scrape(adminUrl);
    expect(m.status).toBe(200);
    expect(m.text).toContain('# TYPE zax_core_commands_total counter');
    // the admin port's own requests are counted, by route
    expect(sample((await scrape(adminUrl)).text, 'zax_core_http_request_duration_seconds_count', { route: 'metrics', status: '200' })).toBe(1);
    for (const p of ['/livez', '/readyz']) {
      expect((await fetch(adminUrl + p)).status).toBe(200);
      expect((await fetch(c.url + p)).status).toBe(200);
    }
    const other = await fetch(`${adminUrl}/command`, { method: 'POST', body: 'x', headers: { [INTERNAL_SECRET_HEADER]: SECRET } });
    expect(other.status).toBe(404);
    expect((await fetch(`${adminUrl}/internal/load`, { headers: { [INTERNAL_SECRET_HEADER]: SECRET } })).status).toBe(404);
  });

  it('the built process serves /livez, /readyz and /metrics (process metrics included) on CORE_ADMIN_PORT', async () => {
    const [port, adminPort] = [await freePort(), await freePort()];
    const prefix = freshPrefix('admin');
    const child = spawn(process.execPath, [MAIN], {
      env: {
        PATH: process.env.PATH ?? '',
        REDIS_URL: redisUrl(),
        INTERNAL_SECRET: SECRET,
        REDIS_PREFIX: prefix,
        CORE_PORT: String(port),
        CORE_ADMIN_PORT: String(adminPort),
        LOAD_PERIOD_SEC: '1',
        CENSUS_INTERVAL_SEC: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 10_000;
      while (!out.includes('"msg":"listening"') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(out).toContain('"msg":"admin listening"');
      expect(out).toContain('"metricsOn":"adminPort"');
      expect((await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(403);
      // the load job runs once per period (1 s here); the first period this replica has figures
      // for is the one it started in; the census runs every CENSUS_INTERVAL_SEC (1 s here) and its
      // figures reach the gauges
      // (waited for as long as it takes: the test's own timeout is the bound)
      let text = '';
      for (;;) {
        text = (await scrape(`http://127.0.0.1:${adminPort}`)).text;
        const loaded = sample(text, 'zax_core_jobs_total', { job: 'load-aggregate', outcome: 'completed' }) > 0 && sample(text, 'zax_core_load_replicas') > 0;
        if (loaded && sample(text, 'zax_core_census_timestamp_seconds') > 0) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      for (const name of CORE_METRIC_NAMES) expect(text, name).toContain(name);
      expect(sample(text, 'zax_core_jobs_total', { job: 'load-aggregate', outcome: 'completed' })).toBeGreaterThan(0);
      expect(sample(text, 'zax_core_load_replicas')).toBe(1);
      expect(sample(text, 'zax_core_jobs_total', { job: 'census', outcome: 'completed' })).toBeGreaterThan(0);
      expect(sample(text, 'zax_core_census_complete')).toBe(1);
      expect(sample(text, 'zax_core_mailboxes')).toBe(0); // a fresh prefix: nothing stored
    } finally {
      child.kill('SIGTERM');
      expect(await exit).toBe(0);
      await dropPrefix(redisUrl(), prefix);
    }
  });
});
