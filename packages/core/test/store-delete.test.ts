/** mailbox-delete.lua: own mailbox only, storage tokens removed, unknown/duplicates ignored. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { storageToken } from '../src/store/index.js';
import { BYTES_FIELD } from '../src/store/mailbox.js';
import { openStores, randomHpk, randomNonceB64, type StoreFixture } from './helpers.js';
import { NOW, QUOTAS, message } from './mailbox-fixture.js';

let f: StoreFixture;
beforeEach(async () => {
  f = await openStores('delete');
});
afterEach(async () => {
  await f.close();
});

describe('delete', () => {
  it('removes messages by nonce with their storage tokens and returns the live count', async () => {
    const to = randomHpk();
    const ms = [message(to), message(to), message(to)];
    for (const m of ms) await f.stores.mailboxes.upload(m, QUOTAS);
    expect(await f.stores.mailboxes.delete(to, [ms[0]!.nonce, ms[0]!.nonce, randomNonceB64(), ms[2]!.nonce], NOW)).toBe(1);
    expect(await f.stores.mailboxes.tokenExpiry(storageToken(to, ms[0]!.nonce))).toBeNull();
    expect(await f.stores.mailboxes.tokenExpiry(storageToken(to, ms[1]!.nonce))).not.toBeNull();
    expect(await f.redis.hget(f.keys.mailbox(to).msgs, BYTES_FIELD)).toBe(String(ms[1]!.dataBytes));
  });

  it('an empty list changes nothing', async () => {
    const to = randomHpk();
    await f.stores.mailboxes.upload(message(to), QUOTAS);
    expect(await f.stores.mailboxes.delete(to, [], NOW)).toBe(1);
  });

  it('never touches another mailbox', async () => {
    const alice = randomHpk();
    const bob = randomHpk();
    const m = message(bob);
    await f.stores.mailboxes.upload(m, QUOTAS);
    expect(await f.stores.mailboxes.delete(alice, [m.nonce], NOW)).toBe(0);
    expect(await f.stores.mailboxes.count(bob, NOW)).toBe(1);
    expect(await f.stores.mailboxes.tokenExpiry(storageToken(bob, m.nonce))).toBe(m.expiresAtMs);
  });

  it('deleting the last message leaves no mailbox keys behind', async () => {
    const to = randomHpk();
    const m = message(to);
    await f.stores.mailboxes.upload(m, QUOTAS);
    expect(await f.stores.mailboxes.delete(to, [m.nonce], NOW)).toBe(0);
    const k = f.keys.mailbox(to);
    expect(await f.redis.exists(k.msgs, k.order, k.exp)).toBe(0);
  });
});
