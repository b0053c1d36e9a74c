/**
 * §8.47 §8.48 §8.56 §8.57 through both tiers in-process: the gatekeeper and the core are built with
 * createApp on real HTTP servers and real Redis, with the vector relay token, relay session key
 * pair and clock injected, so `vectors/prove.json` and `vectors/command_count.json` can be replayed
 * byte for byte from /start_session to /command.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { tweetnaclCrypto, type Clock, type Crypto } from '@zax/protocol';
import * as core from '@zax/core';
import * as gk from '@zax/gatekeeper';
import { post } from '../support/relay.js';
import { dropPrefix, freshPrefix } from '../support/prefix.js';
import { storeEnv, storeTopology } from '../support/store.js';
import { hex, loadVector, unb64 } from '../support/vectors.js';

const prove = loadVector('prove.json');
const count = loadVector('command_count.json');
const SECRET = 'vectors-test-secret-0123456789';
const clock: Clock = { nowMs: () => prove.relay_clock * 1000 };

interface Stack {
  url: string;
  close(): Promise<void>;
}

async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

const stacks: Stack[] = [];
afterEach(async () => {
  for (const s of stacks.splice(0)) await s.close();
});

/** A gatekeeper in front of a core, both on `redisUrl` under one fresh prefix, vectors injected. */
async function startStack(): Promise<Stack> {
  const redisUrl = inject('redisUrl');
  const prefix = freshPrefix('vec');
  const rSess = tweetnaclCrypto.keyPairFromSecretKey(hex(prove.keys.r_sess_sk_hex));
  const crypto: Crypto = { ...tweetnaclCrypto, keyPair: () => rSess };
  const coreConfig = core.loadConfig({ ...storeEnv(redisUrl), REDIS_PREFIX: prefix, INTERNAL_SECRET: SECRET, LOG_LEVEL: 'silent' });
  const coreRedis = await core.connectRedis(storeTopology(redisUrl), { commandTimeoutMs: 2000 });
  const coreApp = core.createApp({ config: coreConfig, redis: coreRedis, clock, crypto, log: core.createLogger('silent') });
  const c = await listen(coreApp.handler);

  const gkConfig = gk.loadConfig({
    ...storeEnv(redisUrl),
    REDIS_PREFIX: prefix,
    INTERNAL_SECRET: SECRET,
    CORE_URL: `http://127.0.0.1:${c.port}`,
    LOG_LEVEL: 'silent',
  });
  const gkRedis = gk.connectRedis(storeTopology(redisUrl), { commandTimeoutMs: 2000 });
  await gk.redisReady(gkRedis);
  const gkApp = gk.createApp({
    config: gkConfig,
    redis: gkRedis,
    clock,
    random: (n) => (n === 32 ? unb64(prove.relay_token_b64) : tweetnaclCrypto.randomBytes(n)),
    log: gk.createLogger('silent'),
  });
  const g = await listen(gkApp.handler);
  const stack = {
    url: `http://127.0.0.1:${g.port}`,
    async close() {
      for (const s of [g.server, c.server]) {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
      await gkApp.close();
      await coreApp.close();
      gkRedis.disconnect();
      coreRedis.disconnect();
      await dropPrefix(redisUrl, prefix);
    },
  };
  stacks.push(stack);
  return stack;
}

/** start_session and verify_session of prove.json, checked byte for byte. */
async function handshake(url: string): Promise<void> {
  const s = await post(`${url}/start_session`, prove.start_session.request_body);
  expect([s.status, s.text]).toEqual([200, prove.start_session.response_body]);
  const v = await post(`${url}/verify_session`, prove.verify_session.request_body);
  expect([v.status, v.text]).toEqual([200, prove.verify_session.response_body]);
}

describe('vectors through gatekeeper and core', () => {
  it('§8.47 the prove.json handshake: every response byte for byte', async () => {
    const { url } = await startStack();
    await handshake(url);
    const p = await post(`${url}/prove`, prove.prove.request_body);
    expect([p.status, p.text]).toEqual([200, prove.prove.response_body]);
    expect(p.headers.get('x-zax-consumed-handshake')).toBeNull();
    // the handshake is consumed: verify is 401, and the client token starts afresh
    expect((await post(`${url}/verify_session`, prove.verify_session.request_body)).status).toBe(401);
    expect((await post(`${url}/start_session`, prove.start_session.request_body)).status).toBe(200);
  });

  for (const v of prove.prove_variants) {
    it(`§8.48 prove variant: ${v.name} → ${v.expected_status}`, async () => {
      const { url } = await startStack();
      await handshake(url);
      const r = await post(`${url}/prove`, v.body);
      expect(r.status).toBe(v.expected_status);
      expect(r.headers.get('x-error-details')).toBe(v.expected_x_error_details);
      if (v.expected_body !== undefined) expect(r.text).toBe(v.expected_body);
    });
  }

  it('§8.56 §8.57 command_count.json: the count round trip, then every variant in order', async () => {
    const { url } = await startStack();
    await handshake(url);
    expect((await post(`${url}/prove`, prove.prove.request_body)).status).toBe(200);
    const r = await post(`${url}/command`, count.request.body);
    expect(r.status).toBe(200);
    const [n, box] = r.text.split('\r\n');
    const key = tweetnaclCrypto.before(unb64(count.session.r_sess_pk_b64), hex(count.session.a_sess_sk_hex))!;
    expect(Buffer.from(tweetnaclCrypto.boxOpenAfter(unb64(box!), unb64(n!), key)!).toString()).toBe(count.response.plaintext_json);
    for (const v of count.variants_in_order) {
      const res = await post(`${url}/command`, v.body);
      expect(res.status, v.name).toBe(v.expected_status);
      expect(res.headers.get('x-error-details'), v.name).toBe(v.expected_x_error_details);
      if (v.expected_plaintext !== undefined) {
        const [rn, rb] = res.text.split('\r\n');
        expect(Buffer.from(tweetnaclCrypto.boxOpenAfter(unb64(rb!), unb64(rn!), key)!).toString()).toBe(v.expected_plaintext);
      }
    }
  });
});
