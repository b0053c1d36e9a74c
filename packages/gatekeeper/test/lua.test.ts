/** The handshake Lua scripts on real Redis, with the clock passed in (lua/*.lua). */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { dropPrefix, freshPrefix } from '../../../test/support/prefix.js';
import { expectTtlGiven, timedWrite } from '../../../test/support/ttl.js';
import { KEY_TTL_MARGIN_MS, handshakeStore, type HandshakeStore } from '../src/handshake/store.js';
import { edgeKeys, type EdgeKeys } from '../src/keys.js';
import { connectRedis, redisReady, type EdgeRedis } from '../src/redis.js';

const T0 = 1_700_000_000_000;
const TTL_SEC = 300;
const ID = Buffer.alloc(32, 1).toString('base64');
const CT = Buffer.alloc(32, 2).toString('base64');
const RT1 = Buffer.alloc(32, 3).toString('base64');
const RT2 = Buffer.alloc(32, 4).toString('base64');
const PK = Buffer.alloc(32, 5).toString('base64');

let redis: EdgeRedis;
let prefix: string;
let keys: EdgeKeys;
let store: HandshakeStore;

beforeEach(async () => {
  prefix = freshPrefix('gk-lua');
  keys = edgeKeys(prefix);
  redis = connectRedis(inject('redisUrl'), { commandTimeoutMs: 1000 });
  await redisReady(redis);
  store = handshakeStore(redis, keys);
});

afterEach(async () => {
  await dropPrefix(inject('redisUrl'), prefix);
  redis.disconnect();
});

describe('start-session.lua', () => {
  it('creates a record with the candidate token, the absolute expiry and a key TTL of lifetime + margin', async () => {
    const w = await timedWrite(redis, () => store.start(ID, CT, RT1, T0, TTL_SEC));
    expect(w.result).toBe(RT1);
    expect(await redis.hgetall(keys.handshake(ID))).toEqual({ ct: CT, rt: RT1, exp: String(T0 + TTL_SEC * 1000) });
    await expectTtlGiven(redis, keys.handshake(ID), w, TTL_SEC * 1000 + KEY_TTL_MARGIN_MS);
  });

  it('reuses the live record: a repeat returns the first relay token', async () => {
    await store.start(ID, CT, RT1, T0, TTL_SEC);
    expect(await store.start(ID, CT, RT2, T0 + 1000, TTL_SEC)).toBe(RT1);
    expect(await redis.hget(keys.handshake(ID), 'rt')).toBe(RT1);
  });

  it('never extends the lifetime (D8): neither the expiry field nor the key TTL', async () => {
    await store.start(ID, CT, RT1, T0, TTL_SEC);
    const pttlBefore = await redis.pttl(keys.handshake(ID));
    expect(await store.start(ID, CT, RT2, T0 + 299_999, TTL_SEC)).toBe(RT1);
    expect(await redis.hget(keys.handshake(ID), 'exp')).toBe(String(T0 + TTL_SEC * 1000));
    expect(await redis.pttl(keys.handshake(ID))).toBeLessThanOrEqual(pttlBefore);
  });

  it('replaces an expired record (checked against the passed clock) with a fresh one, dropping its pk', async () => {
    await store.start(ID, CT, RT1, T0, TTL_SEC);
    expect(await store.setSessionPk(ID, RT1, PK, T0)).toBe(true);
    expect(await store.start(ID, CT, RT2, T0 + TTL_SEC * 1000, TTL_SEC)).toBe(RT2);
    expect(await redis.hgetall(keys.handshake(ID))).toEqual({ ct: CT, rt: RT2, exp: String(T0 + 2 * TTL_SEC * 1000) });
  });
});

describe('read-handshake.lua', () => {
  it('returns the record while now < expiry and nothing from the expiry on', async () => {
    await store.start(ID, CT, RT1, T0, TTL_SEC);
    const exp = T0 + TTL_SEC * 1000;
    expect(await store.read(ID, exp - 1)).toEqual({ clientToken: CT, relayToken: RT1, expiresAtMs: exp, sessionPk: null });
    expect(await store.read(ID, exp)).toBeNull();
    expect(await store.read(ID, exp + 1)).toBeNull();
  });

  it('returns nothing for an unknown id', async () => {
    expect(await store.read(ID, T0)).toBeNull();
  });

  it('returns the stored session pk', async () => {
    await store.start(ID, CT, RT1, T0, TTL_SEC);
    await store.setSessionPk(ID, RT1, PK, T0 + 10);
    expect((await store.read(ID, T0 + 20))?.sessionPk).toBe(PK);
  });
});

describe('set-session-pk.lua', () => {
  it('stores the pk on the live record with the same relay token, keeping the key TTL', async () => {
    await store.start(ID, CT, RT1, T0, TTL_SEC);
    const pttlBefore = await redis.pttl(keys.handshake(ID));
    expect(await store.setSessionPk(ID, RT1, PK, T0 + 1000)).toBe(true);
    expect(await redis.hget(keys.handshake(ID), 'pk')).toBe(PK);
    const pttl = await redis.pttl(keys.handshake(ID));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(pttlBefore);
  });

  it('refuses a record with another relay token', async () => {
    await store.start(ID, CT, RT1, T0, TTL_SEC);
    expect(await store.setSessionPk(ID, RT2, PK, T0 + 1000)).toBe(false);
    expect(await redis.hget(keys.handshake(ID), 'pk')).toBeNull();
  });

  it('refuses a missing record and creates nothing', async () => {
    expect(await store.setSessionPk(ID, RT1, PK, T0)).toBe(false);
    expect(await redis.exists(keys.handshake(ID))).toBe(0);
  });

  it('refuses an expired record', async () => {
    await store.start(ID, CT, RT1, T0, TTL_SEC);
    expect(await store.setSessionPk(ID, RT1, PK, T0 + TTL_SEC * 1000)).toBe(false);
    expect(await redis.hget(keys.handshake(ID), 'pk')).toBeNull();
  });
});

describe('keys', () => {
  it('puts every key under the edge prefix', async () => {
    await store.start(ID, CT, RT1, T0, TTL_SEC);
    expect(keys.handshake(ID).startsWith(prefix)).toBe(true);
    expect(await redis.keys(`${prefix}*`)).toEqual([keys.handshake(ID)]);
  });
});
