/** mailbox-count.lua: live counts against the clock, and bounded compaction of expired messages. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { COMPACT_LIMIT } from '../src/keys.js';
import { BYTES_FIELD } from '../src/store/mailbox.js';
import { openStores, randomHpk, type StoreFixture } from './helpers.js';
import { NOW, QUOTAS, message } from './mailbox-fixture.js';

let f: StoreFixture;
beforeEach(async () => {
  f = await openStores('count');
});
afterEach(async () => {
  await f.close();
});

describe('count', () => {
  it('counts live messages only: a message is live while now < expiry', async () => {
    const to = randomHpk();
    await f.stores.mailboxes.upload(message(to, { expiresAtMs: NOW + 1000 }), QUOTAS);
    await f.stores.mailboxes.upload(message(to, { expiresAtMs: NOW + 2000 }), QUOTAS);
    expect(await f.stores.mailboxes.count(to, NOW)).toBe(2);
    expect(await f.stores.mailboxes.count(to, NOW + 999)).toBe(2);
    expect(await f.stores.mailboxes.count(to, NOW + 1000)).toBe(1);
    expect(await f.stores.mailboxes.count(to, NOW + 2000)).toBe(0);
    expect(await f.stores.mailboxes.count(randomHpk(), NOW)).toBe(0);
  });

  it('compacts at most COMPACT_LIMIT expired messages per call, and their bytes', async () => {
    const to = randomHpk();
    const n = COMPACT_LIMIT + 30;
    const pipe = [];
    for (let i = 0; i < n; i++) pipe.push(f.stores.mailboxes.upload(message(to, { data: 'ab', expiresAtMs: NOW + 1000 }), QUOTAS));
    await Promise.all(pipe);
    await f.stores.mailboxes.upload(message(to, { data: 'live', expiresAtMs: NOW + 10_000 }), QUOTAS);
    const k = f.keys.mailbox(to);
    expect(await f.redis.zcard(k.order)).toBe(n + 1);
    expect(await f.stores.mailboxes.count(to, NOW + 1000)).toBe(1);
    expect(await f.redis.zcard(k.order)).toBe(n + 1 - COMPACT_LIMIT);
    expect(await f.stores.mailboxes.count(to, NOW + 1000)).toBe(1);
    expect(await f.redis.zcard(k.order)).toBe(1);
    // The live message's record and the byte total.
    expect(await f.redis.hlen(k.msgs)).toBe(2);
    expect(await f.redis.hget(k.msgs, BYTES_FIELD)).toBe('4');
  });
});
