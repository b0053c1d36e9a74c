/** session_set.lua and session_get.lua through the session store, on real Redis. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { b64, randomBytes } from '@zax/protocol';
import { KEY_TTL_MARGIN_MS } from '../src/keys.js';
import { openStores, randomHpk, type StoreFixture } from './helpers.js';
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
    await f.stores.sessions.set(hpk, { sharedKey, aSessPk, expiresAtMs: EXP }, NOW);
    const s = await f.stores.sessions.get(hpk, EXP - 1);
    expect(s?.aSessPk).toBe(aSessPk);
    expect(Buffer.compare(s!.sharedKey, sharedKey)).toBe(0);
    expect(await f.stores.sessions.get(hpk, EXP)).toBeNull();
    expect(await f.stores.sessions.get(randomHpk(), NOW)).toBeNull();
  });

  it('a new session replaces the previous one at once', async () => {
    const hpk = randomHpk();
    await f.stores.sessions.set(hpk, { sharedKey: randomBytes(32), aSessPk: 'a', expiresAtMs: EXP }, NOW);
    const k2 = randomBytes(32);
    await f.stores.sessions.set(hpk, { sharedKey: k2, aSessPk: 'b', expiresAtMs: EXP + 5000 }, NOW + 5000);
    const s = await f.stores.sessions.get(hpk, EXP + 1000);
    expect(s?.aSessPk).toBe('b');
    expect(Buffer.compare(s!.sharedKey, k2)).toBe(0);
  });

  it('keys the session in the mailbox slot with a TTL of lifetime + margin', async () => {
    const hpk = randomHpk();
    const w = await timedWrite(f.redis, () => f.stores.sessions.set(hpk, { sharedKey: randomBytes(32), aSessPk: 'a', expiresAtMs: EXP }, NOW));
    const key = f.keys.session(hpk);
    expect(key).toContain(`{${hpk}}`);
    await expectTtlGiven(f.redis, key, w, 1_200_000 + KEY_TTL_MARGIN_MS);
  });
});
