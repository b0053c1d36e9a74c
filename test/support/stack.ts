/**
 * A whole relay in-process for tests whose subject is time: the gatekeeper(s) and the core built
 * with createApp on real HTTP servers and real Redis under one fresh prefix, all reading one
 * settable clock. The test moves time with `clock.advanceMs`; nothing sleeps. (test/support/relay.ts
 * runs the same services as processes, on the system clock.)
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { makeNonce, randomBytes, tweetnaclCrypto, type Clock } from '@zax/protocol';
import * as core from '@zax/core';
import * as gk from '@zax/gatekeeper';
import { dropPrefix, freshPrefix } from './prefix.js';
import { storeEnv, storeTopology } from './store.js';

/** A clock the test moves by hand (ms since the epoch). */
export class SettableClock implements Clock {
  constructor(public ms: number = 1_700_000_000_000) {}
  nowMs(): number {
    return this.ms;
  }
  nowSec(): number {
    return Math.floor(this.ms / 1000);
  }
  advanceMs(ms: number): void {
    this.ms += ms;
  }
  /** A fresh request nonce stamped with this clock's time (docs/PROTOCOL.md §4.1). */
  nonce(): Uint8Array {
    return makeNonce(this.nowSec(), randomBytes);
  }
}

export interface StackOptions {
  redisUrl: string;
  /** Environment of both tiers (lifetimes, budgets…). Per-client budgets are off unless set here. */
  env?: Record<string, string>;
  clock?: SettableClock;
  /** Gatekeepers sharing the edge Redis and the core. @default 1 */
  gatekeepers?: number;
}

export interface Stack {
  readonly clock: SettableClock;
  /** The first gatekeeper's URL. */
  readonly url: string;
  readonly urls: string[];
  readonly prefix: string;
  close(): Promise<void>;
}

async function listen(handler: RequestListener): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  const { redisUrl } = opts;
  const clock = opts.clock ?? new SettableClock();
  const prefix = freshPrefix('stack');
  const secret = Buffer.from(randomBytes(24)).toString('hex');
  const env = { HANDSHAKE_BURST_PER_IP: '0', REQUEST_BURST_PER_IP: '0', ...opts.env };
  const servers: Server[] = [];
  const closers: (() => Promise<void> | void)[] = [];

  const coreConfig = core.loadConfig({ ...storeEnv(redisUrl), REDIS_PREFIX: prefix, INTERNAL_SECRET: secret, LOG_LEVEL: 'silent', ...env });
  const coreRedis = await core.connectRedis(storeTopology(redisUrl), { commandTimeoutMs: coreConfig.redisCommandTimeoutMs });
  const coreApp = core.createApp({ config: coreConfig, redis: coreRedis, clock, crypto: tweetnaclCrypto, log: core.createLogger('silent') });
  const c = await listen(coreApp.handler);
  servers.push(c.server);
  closers.push(() => coreApp.close(), () => coreRedis.disconnect());

  const urls: string[] = [];
  for (let i = 0; i < (opts.gatekeepers ?? 1); i++) {
    const config = gk.loadConfig({ ...storeEnv(redisUrl), REDIS_PREFIX: prefix, INTERNAL_SECRET: secret, CORE_URL: `http://127.0.0.1:${c.port}`, LOG_LEVEL: 'silent', ...env });
    const redis = gk.connectRedis(storeTopology(redisUrl), { commandTimeoutMs: config.redisCommandTimeoutMs });
    await gk.redisReady(redis);
    const app = gk.createApp({ config, redis, clock, random: randomBytes, log: gk.createLogger('silent') });
    const g = await listen(app.handler);
    servers.unshift(g.server);
    closers.unshift(() => app.close(), () => redis.disconnect());
    urls.push(`http://127.0.0.1:${g.port}`);
  }

  return {
    clock,
    url: urls[0]!,
    urls,
    prefix,
    async close() {
      for (const s of servers) {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
      for (const close of closers) await close();
      await dropPrefix(redisUrl, prefix);
    },
  };
}
