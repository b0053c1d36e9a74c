/** session-set.lua and session-open.lua through the session store, on real Redis. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { b64, randomBytes } from '@zax/protocol';
import { KEY_TTL_MARGIN_MS } from '../src/keys.js';
import { openStores, randomHpk, randomNonceB64, type StoreFixture } from './helpers.js';
import { expectTtlGiven, timedWrite } from '../../../test/support/ttl.js';

const NOW = 1_700_000_000_000;
const EXP = NOW + 1_200_000;

let f: StoreFixture;
beforeEach(async () => {
  f = await openStores('sess');
});
afterEach(async () => {
  await f.close();
});

describe('sessions', () => {
  it('stores the shared key and a_sess_pk, readable until the expiry', async () => {
    const hpk = randomHpk();
    const sharedKey = randomBytes(32);
    const aSessPk = b64(randomBytes(32));
    await f.stores.sessions.set(hpk, { sharedKey, aSessPk, expiresAtMs: EXP }, NOW, proveNonces());
    const { session: s } = await f.stores.sessions.open(hpk, randomNonceB64(), EXP - 1);
    expect(s?.aSessPk).toBe(aSessPk);
    expect(Buffer.compare(s!.sharedKey, sharedKey)).toBe(0);
    expect((await f.stores.sessions.open(hpk, randomNonceB64(), EXP)).session).toBeNull();
    expect((await f.stores.sessions.open(randomHpk(), randomNonceB64(), NOW)).session).toBeNull();
  });

  it('a new session replaces the previous one at once', async () => {
    const hpk = randomHpk();
    await f.stores.sessions.set(hpk, { sharedKey: randomBytes(32), aSessPk: 'a', expiresAtMs: EXP }, NOW, proveNonces());
    const k2 = randomBytes(32);
    await f.stores.sessions.set(hpk, { sharedKey: k2, aSessPk: 'b', expiresAtMs: EXP + 5000 }, NOW + 5000, proveNonces());
    const { session: s } = await f.stores.sessions.open(hpk, randomNonceB64(), EXP + 1000);
    expect(s?.aSessPk).toBe('b');
    expect(Buffer.compare(s!.sharedKey, k2)).toBe(0);
  });

  it('keys the session in the mailbox slot with a TTL of lifetime + margin', async () => {
    const hpk = randomHpk();
    const nonces = proveNonces();
    const w = await timedWrite(f.redis, () => f.stores.sessions.set(hpk, { sharedKey: randomBytes(32), aSessPk: 'a', expiresAtMs: EXP }, NOW, nonces));
    const key = f.keys.session(hpk);
    expect(key).toContain(`{${hpk}}`);
    await expectTtlGiven(f.redis, key, w, 1_200_000 + KEY_TTL_MARGIN_MS);
    // The /prove nonces, in the hpk's replay cache for nonceCacheSec: neither opens a command.
    for (const n of nonces) {
      expect(f.keys.commandNonce(hpk, n)).toContain(`{${hpk}}`);
      await expectTtlGiven(f.redis, f.keys.commandNonce(hpk, n), w, 600_000);
      expect((await f.stores.sessions.open(hpk, n, NOW)).replayed).toBe(true);
    }
  });
});

describe('the command nonce, looked up with the session', () => {
  it('is recorded once under a live session: the next use is a replay', async () => {
    const hpk = await withSession();
    const n = randomNonceB64();
    const w = await timedWrite(f.redis, async () => expect((await f.stores.sessions.open(hpk, n, NOW)).replayed).toBe(false));
    await expectTtlGiven(f.redis, f.keys.commandNonce(hpk, n), w, 600_000);
    const again = await f.stores.sessions.open(hpk, n, NOW);
    expect(again.replayed).toBe(true);
    expect(again.session).not.toBeNull(); // the caller wipes its key
  });

  it('is scoped to its hpk: the same nonce is new under another hpk', async () => {
    const [a, b] = [await withSession(), await withSession()];
    const n = randomNonceB64();
    expect((await f.stores.sessions.open(a, n, NOW)).replayed).toBe(false);
    expect((await f.stores.sessions.open(b, n, NOW)).replayed).toBe(false);
  });

  it('writes nothing without a live session, and reports a replay all the same', async () => {
    const hpk = randomHpk();
    const n = randomNonceB64();
    expect(await f.stores.sessions.open(hpk, n, NOW)).toEqual({ session: null, replayed: false });
    expect(await f.redis.exists(f.keys.commandNonce(hpk, n))).toBe(0);
    // An expired session: its nonces are still in the cache.
    const old = await withSession();
    await f.stores.sessions.open(old, n, NOW);
    expect(await f.stores.sessions.open(old, n, EXP)).toEqual({ session: null, replayed: true });
  });

  it('of 25 concurrent uses of one nonce exactly one is new', async () => {
    const hpk = await withSession();
    const n = randomNonceB64();
    const results = await Promise.all(Array.from({ length: 25 }, () => f.stores.sessions.open(hpk, n, NOW)));
    expect(results.filter((r) => !r.replayed)).toHaveLength(1);
  });

  it('forgetNonce removes the record (a request that then failed authentication)', async () => {
    const hpk = await withSession();
    const n = randomNonceB64();
    await f.stores.sessions.open(hpk, n, NOW);
    await f.stores.sessions.forgetNonce(hpk, n);
    expect(await f.redis.exists(f.keys.commandNonce(hpk, n))).toBe(0);
    expect((await f.stores.sessions.open(hpk, n, NOW)).replayed).toBe(false);
  });
});

function proveNonces(): [string, string] {
  return [randomNonceB64(), randomNonceB64()];
}

async function withSession(): Promise<string> {
  const hpk = randomHpk();
  await f.stores.sessions.set(hpk, { sharedKey: randomBytes(32), aSessPk: 'a', expiresAtMs: EXP }, NOW, proveNonces());
  return hpk;
}
