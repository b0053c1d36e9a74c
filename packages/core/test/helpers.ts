/**
 * Test helpers for the core: a real Redis under a fresh prefix (the run's store in whichever
 * topology it was started with, test/support/store.ts), the app mounted on a real
 * http.Server on port 0 with an injected clock, and a small client that mints handshakes, proves,
 * builds encrypted `/command` bodies and opens encrypted responses.
 *
 * The core runs on sodium-native by default, the backend the services pick (`bestCrypto`); the
 * files where the backend matters (envelope, /prove vectors, commands) run once on each of
 * `CORE_BACKENDS`. The client side of these helpers always uses tweetnacl, so a core backend that
 * disagrees with the reference fails.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, inject } from 'vitest';
import {
  CONSUMED_HANDSHAKE_HEADER,
  INTERNAL_SECRET_HEADER,
  b64,
  h2,
  makeNonce,
  randomBytes,
  tweetnaclCrypto,
  type Clock,
  type Crypto,
  type KeyPair,
} from '@zax/protocol';
import { sodiumCrypto } from '@zax/service';
import { createApp, type App } from '../src/app.js';
import { loadConfig, type Config } from '../src/config.js';
import { FILE_BUCKETS, createKeys, fileBucket, type Keys } from '../src/keys.js';
import { createLogger, type Logger } from '@zax/service';
import type { CoreMetrics } from '../src/metrics.js';
import { connectRedis, type CoreRedis } from '../src/redis.js';
import { createStores, type Stores } from '../src/store/index.js';
import { dropPrefix, freshPrefix } from '../../../test/support/prefix.js';
import { storeEnv, storeTopology } from '../../../test/support/store.js';

export const SECRET = 'core-test-secret-0123456789';
export const T0 = 1_700_000_000;

export const redisUrl = (): string => inject('redisUrl');

/** sodium-native, which the services run; a test run where its binding does not load fails. */
function sodiumBackend(): Crypto {
  const sodium = sodiumCrypto();
  if (sodium === null) throw new Error('sodium-native does not load: the core tests need the backend the services run');
  return sodium;
}

/** The core's default backend in tests: the one the services run. */
export const CORE_CRYPTO: Crypto = sodiumBackend();

/** Both Crypto backends, for the test files that run once on each. */
export const CORE_BACKENDS: readonly Crypto[] = [CORE_CRYPTO, tweetnaclCrypto];

/** A settable clock (ms). */
export class FakeClock implements Clock {
  constructor(public ms: number = T0 * 1000) {}
  nowMs(): number {
    return this.ms;
  }
  nowSec(): number {
    return Math.floor(this.ms / 1000);
  }
  advanceSec(s: number): void {
    this.ms += s * 1000;
  }
}

export function testConfig(prefix: string, env: Record<string, string> = {}, url = redisUrl()): Config {
  return loadConfig({ ...storeEnv(url), INTERNAL_SECRET: SECRET, REDIS_PREFIX: prefix, LOG_LEVEL: 'silent', ...env });
}

/** Direct store access (no HTTP) under a fresh prefix. */
export interface StoreFixture {
  readonly prefix: string;
  readonly redis: CoreRedis;
  readonly keys: Keys;
  readonly stores: Stores;
  close(): Promise<void>;
}

export async function openStores(tag = 'core', nonceCacheSec = 600): Promise<StoreFixture> {
  const prefix = freshPrefix(tag);
  const redis = await connectRedis(storeTopology(redisUrl()), { commandTimeoutMs: 2000 });
  const keys = createKeys(prefix);
  return {
    prefix,
    redis,
    keys,
    stores: createStores(redis, keys, { nonceCacheSec }),
    async close() {
      await dropPrefix(redisUrl(), prefix);
      redis.disconnect();
    },
  };
}

export interface HttpReply {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
}

export interface Core {
  readonly url: string;
  readonly prefix: string;
  readonly config: Config;
  readonly clock: FakeClock;
  readonly redis: CoreRedis;
  readonly app: App;
  /** POST with the internal secret (unless `headers` overrides it). */
  post(path: string, body: string | Uint8Array, headers?: Record<string, string>): Promise<HttpReply>;
  request(method: string, path: string, body?: string, headers?: Record<string, string>): Promise<HttpReply>;
  close(): Promise<void>;
}

export interface CoreOptions {
  env?: Record<string, string>;
  clock?: FakeClock;
  crypto?: Crypto;
  prefix?: string;
  /** Redis to use instead of the shared test server (e.g. a private one that a test stops). */
  redis?: CoreRedis;
  redisUrl?: string;
  /** Logger for the app (silent by default). */
  log?: Logger;
  /** The app's metrics (a fresh set by default). */
  metrics?: CoreMetrics;
  /** The jobs' health that /readyz reports (none by default). */
  jobHealth?: () => readonly { job: string; stale: boolean }[];
}

export async function startCore(opts: CoreOptions = {}): Promise<Core> {
  const prefix = opts.prefix ?? freshPrefix('core');
  const url = opts.redisUrl ?? redisUrl();
  const config = testConfig(prefix, opts.env, url);
  const ownRedis = opts.redis === undefined;
  const redis = opts.redis ?? (await connectRedis(storeTopology(url), { commandTimeoutMs: config.redisCommandTimeoutMs }));
  const clock = opts.clock ?? new FakeClock();
  const app = createApp({ config, redis, clock, crypto: opts.crypto ?? CORE_CRYPTO, log: opts.log ?? createLogger('silent'), ...(opts.metrics !== undefined ? { metrics: opts.metrics } : {}), ...(opts.jobHealth !== undefined ? { jobHealth: opts.jobHealth } : {}) });
  const server: Server = createServer(app.handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  async function request(method: string, path: string, body?: string | Uint8Array, headers: Record<string, string> = {}): Promise<HttpReply> {
    const res = await fetch(base + path, {
      method,
      headers: { [INTERNAL_SECRET_HEADER]: SECRET, ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : Buffer.from(body),
    });
    return { status: res.status, headers: res.headers, body: await res.text() };
  }

  return {
    url: base,
    prefix,
    config,
    clock,
    redis,
    app,
    post: (path, body, headers) => request('POST', path, body, headers),
    request,
    async close() {
      await app.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (ownRedis) {
        await dropPrefix(url, prefix).catch(() => undefined);
        redis.disconnect();
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Client side

const C = tweetnaclCrypto;

export const nonceAt = (sec: number): Uint8Array => makeNonce(sec, randomBytes);

export interface Handshake {
  readonly clientToken: Uint8Array;
  readonly relayToken: Uint8Array;
  readonly handshakeId: string;
  readonly relaySessionPk: Buffer;
}

/** Mints a handshake via `/internal/sessions` (what the gatekeeper does on `/verify_session`). */
export async function mint(
  core: Core,
  opts: { clientToken?: Uint8Array; relayToken?: Uint8Array; expiresAtMs?: number } = {},
): Promise<{ reply: HttpReply; handshake: Handshake }> {
  const clientToken = opts.clientToken ?? randomBytes(32);
  const relayToken = opts.relayToken ?? randomBytes(32);
  const handshakeId = b64(h2(clientToken));
  const reply = await core.post(
    '/internal/sessions',
    JSON.stringify({
      v: 1,
      handshakeId,
      clientToken: b64(clientToken),
      relayToken: b64(relayToken),
      expiresAtMs: opts.expiresAtMs ?? core.clock.nowMs() + 300_000,
    }),
    { 'content-type': 'application/json' },
  );
  const pk = reply.status === 200 ? (JSON.parse(reply.body) as { relaySessionPk: string }).relaySessionPk : '';
  return { reply, handshake: { clientToken, relayToken, handshakeId, relaySessionPk: Buffer.from(pk, 'base64') } };
}

export interface ProveParts {
  handshake: Handshake;
  identity: KeyPair;
  aSess: KeyPair;
  outerNonce: Uint8Array;
  innerNonce: Uint8Array;
  /** Replace the session signature (wrong proof). */
  sign?: Uint8Array;
  /** Replace the inner JSON object. */
  innerJson?: (fields: { pub_key: string; nonce: string; ctext: string }) => unknown;
  sep?: string;
  /** Seal the outer box under this key instead of box.before(r_sess_pk, a_sess_sk) (a forged box). */
  outerKey?: Uint8Array;
  /** Seal the inner box under this key instead of box.before(r_sess_pk, identity sk) (a forged box). */
  innerKey?: Uint8Array;
}

/** The 4-line `/prove` body of docs/PROTOCOL.md §4.3. */
export function proveBody(p: ProveParts): string {
  const h = p.handshake;
  const sign = p.sign ?? h2(p.aSess.publicKey, h.relayToken, h.clientToken);
  const inner =
    p.innerKey !== undefined ? C.boxAfter(sign, p.innerNonce, p.innerKey) : C.box(sign, p.innerNonce, h.relaySessionPk, p.identity.secretKey);
  const fields = { pub_key: b64(p.identity.publicKey), nonce: b64(p.innerNonce), ctext: b64(inner) };
  const json = Buffer.from(JSON.stringify(p.innerJson ? p.innerJson(fields) : fields), 'utf8');
  const outer =
    p.outerKey !== undefined ? C.boxAfter(json, p.outerNonce, p.outerKey) : C.box(json, p.outerNonce, h.relaySessionPk, p.aSess.secretKey);
  return [h.handshakeId, b64(p.aSess.publicKey), b64(p.outerNonce), b64(outer)].join(p.sep ?? '\r\n');
}

export interface Session {
  readonly hpk: string;
  readonly identity: KeyPair;
  readonly aSess: KeyPair;
  readonly relaySessionPk: Buffer;
  /** box.before(r_sess_pk, a_sess_sk): the same key the relay holds. */
  readonly sharedKey: Uint8Array;
  readonly proveReply: HttpReply;
}

export const hpkOf = (identity: KeyPair): string => b64(h2(identity.publicKey));

/** Mint + `/prove` for an identity (fresh one by default); throws unless /prove answers 200. */
export async function establishSession(core: Core, identity: KeyPair = C.keyPair()): Promise<Session> {
  const { handshake } = await mint(core);
  const aSess = C.keyPair();
  const now = core.clock.nowSec();
  const body = proveBody({ handshake, identity, aSess, outerNonce: nonceAt(now), innerNonce: nonceAt(now) });
  const proveReply = await core.post('/prove', body);
  if (proveReply.status !== 200) throw new Error(`prove failed: ${proveReply.status}`);
  return {
    hpk: hpkOf(identity),
    identity,
    aSess,
    relaySessionPk: handshake.relaySessionPk,
    sharedKey: C.before(handshake.relaySessionPk, aSess.secretKey)!,
    proveReply,
  };
}

/** A `/command` body under a session: [hpk, nonce, box(json)] (+ line 4). */
export function commandBody(
  s: Pick<Session, 'hpk' | 'sharedKey'>,
  cmd: unknown,
  opts: { nonce?: Uint8Array; nowSec?: number; line4?: string; sep?: string; hpk?: string } = {},
): string {
  const nonce = opts.nonce ?? nonceAt(opts.nowSec ?? T0);
  const plaintext = typeof cmd === 'string' ? cmd : JSON.stringify(cmd);
  const box = C.boxAfter(Buffer.from(plaintext, 'utf8'), nonce, s.sharedKey);
  const lines = [opts.hpk ?? s.hpk, b64(nonce), b64(box)];
  if (opts.line4 !== undefined) lines.push(opts.line4);
  return lines.join(opts.sep ?? '\r\n');
}

/** Opens a 2-line encrypted response; returns the plaintext text. */
export function openResponse(s: Pick<Session, 'sharedKey'>, body: string): string {
  const lines = body.split('\r\n');
  if (lines.length !== 2) throw new Error(`expected 2 lines, got ${lines.length}`);
  const opened = C.boxOpenAfter(Buffer.from(lines[1]!, 'base64'), Buffer.from(lines[0]!, 'base64'), s.sharedKey);
  if (opened === null) throw new Error('response box does not open');
  return Buffer.from(opened).toString('utf8');
}

/** Sends a command under the session at the core's current clock. */
export async function command(core: Core, s: Session, cmd: unknown, opts: { line4?: string } = {}): Promise<HttpReply> {
  return core.post('/command', commandBody(s, cmd, { nowSec: core.clock.nowSec(), ...opts }));
}

/** Sends a command that must succeed with an encrypted answer; returns the parsed JSON. */
export async function commandJson<T = unknown>(core: Core, s: Session, cmd: unknown): Promise<T> {
  const r = await command(core, s, cmd);
  if (r.status !== 200) throw new Error(`command ${JSON.stringify(cmd)} failed: ${r.status}`);
  return JSON.parse(openResponse(s, r.body)) as T;
}

/** Sends a command that must succeed with a plain line; returns it. */
export async function commandPlain(core: Core, s: Session, cmd: unknown): Promise<string> {
  const r = await command(core, s, cmd);
  if (r.status !== 200) throw new Error(`command ${JSON.stringify(cmd)} failed: ${r.status}`);
  return r.body;
}

/**
 * Every key under the core's prefix with its dumped value, but for the load counters and the job
 * queue (the relay's own bookkeeping) and the keys `skip` names: to show that requests changed nothing.
 */
export async function keySnapshot(core: Core, skip: (key: string) => boolean = () => false): Promise<Record<string, string>> {
  const own = [`${core.prefix}{load}`, `${core.prefix}{jobs}`];
  const keys = (await core.redis.keys(`${core.prefix}*`)).filter((k) => !own.some((p) => k.startsWith(p)) && !skip(k)).sort();
  const out: Record<string, string> = {};
  for (const k of keys) out[k] = (await core.redis.dumpBuffer(k))?.toString('hex') ?? '';
  return out;
}

export const CONSUMED = CONSUMED_HANDSHAKE_HEADER;
export const randomHpk = (): string => b64(randomBytes(32));
export const randomNonceB64 = (sec = T0): string => b64(nonceAt(sec));

/**
 * For a test file whose tests each want a fresh core and three sessions on it: `setup` starts one
 * (on `crypto`), `track` adds a core started otherwise, and an afterEach closes every core of the test.
 */
export function coresWithThreeSessions(crypto: Crypto = CORE_CRYPTO): {
  setup: (env?: Record<string, string>) => Promise<{ core: Core; alice: Session; bob: Session; carol: Session }>;
  track: (core: Core) => Core;
} {
  let cores: Core[] = [];
  afterEach(async () => {
    await Promise.all(cores.map((c) => c.close()));
    cores = [];
  });
  const track = (core: Core): Core => {
    cores.push(core);
    return core;
  };
  return {
    track,
    async setup(env = {}) {
      const core = track(await startCore({ env, crypto }));
      return { core, alice: await establishSession(core), bob: await establishSession(core), carol: await establishSession(core) };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// File keys (bucketed by uploadID, src/keys.ts)

/** One of a file's keys (`rec`, `parts`, `chunks`). */
export const fileKey = (core: Pick<Core, 'prefix'>, uploadID: string, part: 'rec' | 'parts' | 'chunks'): string => createKeys(core.prefix).file(uploadID)[part];

/** A file bucket's registry keys, for the bucket of `uploadID`. */
export const fileRegistryOf = (core: Pick<Core, 'prefix'>, uploadID: string): { exp: string; bytes: string; total: string } =>
  createKeys(core.prefix).fileRegistry(fileBucket(uploadID));

/** Every bucket's registry keys. */
export const allFileRegistries = (core: Pick<Core, 'prefix'>): { exp: string; bytes: string; total: string }[] =>
  Array.from({ length: FILE_BUCKETS }, (_, b) => createKeys(core.prefix).fileRegistry(b));

/** The relay-wide total of stored chunk bytes: the sum of the buckets' totals. */
export async function fileBytesTotal(core: Pick<Core, 'prefix' | 'redis'>): Promise<number> {
  const values = await Promise.all(allFileRegistries(core).map((r) => core.redis.get(r.total)));
  return values.reduce((a, v) => a + Number(v ?? 0), 0);
}

/** Registry entries (expiry index) over every bucket. */
export async function fileRegistrySize(core: Pick<Core, 'prefix' | 'redis'>): Promise<{ exp: number; bytes: number }> {
  let exp = 0;
  let bytes = 0;
  for (const r of allFileRegistries(core)) {
    exp += await core.redis.zcard(r.exp);
    bytes += await core.redis.hlen(r.bytes);
  }
  return { exp, bytes };
}
