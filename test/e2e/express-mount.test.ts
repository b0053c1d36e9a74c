/**
 * The gatekeeper mounted into an existing express 5 application at /zax (createGatekeeper from
 * @zax/gatekeeper), in front of a real core process: glow.ts and @zax/client exchange messages
 * through `http://127.0.0.1:PORT/zax`, and the host's own routes keep working beside it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Mailbox, generateIdentity } from '@zax/client';
import { createGatekeeper, type Gatekeeper } from '@zax/gatekeeper';
import { loadGlow } from '../support/glow.js';
import { dropPrefix, freshPrefix } from '../support/prefix.js';
import { CORE_MAIN, ServiceProcess } from '../support/relay.js';
import { freePort } from '../support/redis-server.js';
import { storeEnv } from '../support/store.js';

const glow = loadGlow();

let redisUrl: string;
let prefix: string;
let core: ServiceProcess;
let gatekeeper: Gatekeeper;
let server: http.Server;
let base: string;
let zax: string;
const glowOpen: Array<{ clearSession(u: string): void }> = [];

beforeAll(async () => {
  redisUrl = inject('redisUrl');
  prefix = freshPrefix('mount');
  const corePort = await freePort();
  const shared = { ...storeEnv(redisUrl), REDIS_PREFIX: prefix, INTERNAL_SECRET: randomBytes(24).toString('hex'), LOG_LEVEL: 'info' };
  core = new ServiceProcess('core', CORE_MAIN, { ...shared, CORE_PORT: String(corePort), CORE_HOST: '127.0.0.1' }, corePort);
  await core.start();
  gatekeeper = await createGatekeeper({
    ...shared,
    CORE_URL: `http://127.0.0.1:${corePort}`,
    HANDSHAKE_BURST_PER_IP: '0',
    REQUEST_BURST_PER_IP: '0',
    METRICS_ON_PUBLIC_PORT: 'true',
    LOG_LEVEL: 'silent',
  });

  const app = express();
  app.get('/hello', (_req, res) => {
    res.type('text/plain').send('host app');
  });
  app.use('/zax', gatekeeper.handler);
  // The host's body parsers come after the mount (or on its own paths): they must not read the
  // gatekeeper's bodies. This one does, on purpose, to show what a misplaced parser gets.
  app.use('/parsed', express.text(), gatekeeper.handler);
  app.post('/echo', express.json(), (req, res) => {
    res.json({ got: (req.body as { n: number }).n });
  });
  server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  zax = `${base}/zax`;
  // The edge Redis connects in the background (as in the process): ready once /readyz says so.
  const deadline = Date.now() + 10_000;
  while ((await fetch(`${zax}/readyz`)).status !== 200) {
    if (Date.now() > deadline) throw new Error('the mounted gatekeeper never became ready');
    await new Promise((r) => setTimeout(r, 50));
  }
});

afterAll(async () => {
  for (const m of glowOpen) m.clearSession(zax);
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server?.closeAllConnections();
  await gatekeeper?.close();
  await core?.stop();
  if (prefix !== undefined) await dropPrefix(redisUrl, prefix);
});

/** A request with an absolute-form target (`POST http://host/zax/start_session`). */
function absoluteForm(path: string, body: string): Promise<{ status: number; text: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method: 'POST', path: `${base}${path}`, headers: { 'content-type': 'text/plain' } }, (res) => {
      let text = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('the gatekeeper mounted in an express app at /zax', () => {
  it('glow.ts exchanges a message through the prefixed URL', async () => {
    const alice = await glow.Mailbox.new(`alice-${Math.random().toString(36).slice(2)}`);
    const bob = await glow.Mailbox.new(`bob-${Math.random().toString(36).slice(2)}`);
    glowOpen.push(alice, bob);
    await alice.keyRing.addGuest('Bob', bob.keyRing.getPubCommKey());
    await bob.keyRing.addGuest('Alice', alice.keyRing.getPubCommKey());
    expect(await alice.connectToRelay(zax)).toBe(0);
    await alice.upload(zax, 'Bob', 'hello through a mount');
    expect(await bob.count(zax)).toBe(1);
    const msgs = await bob.download(zax);
    expect(msgs.map((m) => m.data)).toEqual(['hello through a mount']);
    expect(msgs[0]!.senderTag).toBe('Alice');
    // delete answers the number of messages left in the mailbox.
    expect(await bob.delete(zax, [msgs[0]!.nonce])).toBe(0);
    expect(await bob.download(zax)).toEqual([]);
  });

  it('@zax/client exchanges a message through the prefixed URL', async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const a = Mailbox.create({ url: zax, identity: alice, guests: [bob.publicKey] });
    const b = Mailbox.create({ url: `${zax}/`, identity: bob, guests: [alice.publicKey] });
    await a.send(bob.publicKey, 'hello from @zax/client');
    const got = await b.receive();
    expect(got.map((m) => m.text)).toEqual(['hello from @zax/client']);
  });

  it('leaves the host routes working', async () => {
    const hello = await fetch(`${base}/hello`);
    expect(hello.status).toBe(200);
    expect(await hello.text()).toBe('host app');
    const echo = await fetch(`${base}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":7}' });
    expect(await echo.json()).toEqual({ got: 7 });
  });

  it('answers health, preflight, unknown paths and wrong methods under the prefix', async () => {
    expect((await fetch(`${zax}/livez`)).status).toBe(200);
    expect((await fetch(`${zax}/readyz`)).status).toBe(200);
    const pre = await fetch(`${zax}/command`, { method: 'OPTIONS' });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-methods')).toBe('POST, OPTIONS');
    expect((await fetch(`${zax}/nope`, { method: 'POST', body: 'x' })).status).toBe(404);
    expect((await fetch(`${zax}/command`)).status).toBe(405);
    // Nothing of the gatekeeper answers outside its prefix.
    expect((await fetch(`${base}/start_session`, { method: 'POST', body: 'x' })).status).toBe(404);
  });

  it('takes an absolute-form target with the prefix', async () => {
    const token = randomBytes(32).toString('base64');
    const r = await absoluteForm('/zax/start_session', token);
    expect(r.status).toBe(200);
    expect(r.text.split('\r\n')).toHaveLength(2);
  });

  it('labels its metrics by route without the prefix', async () => {
    const text = await (await fetch(`${zax}/metrics`)).text();
    expect(text).toMatch(/zax_gatekeeper_http_request_duration_seconds_count\{[^}]*route="start_session"[^}]*\} [1-9]/);
    expect(text).toMatch(/zax_gatekeeper_http_request_duration_seconds_count\{[^}]*route="command"[^}]*\} [1-9]/);
  });

  it('refuses at once (503) a body a host body parser has already read', async () => {
    const r = await fetch(`${base}/parsed/start_session`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: randomBytes(32).toString('base64') });
    expect(r.status).toBe(503);
  });
});
