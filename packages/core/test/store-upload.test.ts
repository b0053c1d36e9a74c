/** mailbox-upload.lua: insert, replacement, quotas, storage token, key TTLs. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KEY_TTL_MARGIN_MS } from '../src/keys.js';
import { storageToken } from '../src/store/index.js';
import { BYTES_FIELD } from '../src/store/mailbox.js';
import { openStores, randomHpk, type StoreFixture } from './helpers.js';
import { NOW, QUOTAS, TTL_MS, message, parseItems } from './mailbox-fixture.js';
import { expectTtlGiven, timedWrite } from '../../../test/support/ttl.js';

let f: StoreFixture;
beforeEach(async () => {
  f = await openStores('upload');
});
afterEach(async () => {
  await f.close();
});

const bytesOf = async (hpk: string): Promise<number> => Number((await f.redis.hget(f.keys.mailbox(hpk).msgs, BYTES_FIELD)) ?? 0);

describe('upload', () => {
  it('stores a new message with its rendered item and storage token', async () => {
    const to = randomHpk();
    const m = message(to, { data: 'héllo', nowMs: NOW + 123 });
    expect(await f.stores.mailboxes.upload(m, QUOTAS)).toBe('stored');
    const [item] = parseItems(await f.stores.mailboxes.download(to, { start: 0, count: 100, from: null }, NOW + 200));
    expect(item).toEqual({ data: 'héllo', time: (NOW + 123) / 1000, from: m.from, nonce: m.nonce, kind: 'message' });
    expect(await f.stores.mailboxes.tokenExpiry(storageToken(to, m.nonce))).toBe(m.expiresAtMs);
    expect(await bytesOf(to)).toBe(6);
  });

  it('replaces a live message with the same nonce: same place, new content, bytes new − old', async () => {
    const to = randomHpk();
    const a = message(to, { data: 'aaaa' });
    const b = message(to, { data: 'bb' });
    await f.stores.mailboxes.upload(a, QUOTAS);
    await f.stores.mailboxes.upload(b, QUOTAS);
    const a2 = message(to, { nonce: a.nonce, data: 'replaced!', nowMs: NOW + 5000, expiresAtMs: NOW + 5000 + TTL_MS });
    expect(await f.stores.mailboxes.upload(a2, QUOTAS)).toBe('replaced');
    const items = parseItems(await f.stores.mailboxes.download(to, { start: 0, count: 100, from: null }, NOW + 6000));
    expect(items.map((i) => i.data)).toEqual(['replaced!', 'bb']);
    expect(items[0]!.time).toBe((NOW + 5000) / 1000);
    expect(await bytesOf(to)).toBe(9 + 2);
    expect(await f.stores.mailboxes.count(to, NOW + 6000)).toBe(2);
    expect(await f.stores.mailboxes.tokenExpiry(storageToken(to, a.nonce))).toBe(NOW + 5000 + TTL_MS);
  });

  it('refuses a new message at the count quota, but still replaces an existing one', async () => {
    const to = randomHpk();
    const q = { mailboxQuota: 3, mailboxQuotaBytes: 1_000_000 };
    const ms = [message(to), message(to), message(to)];
    for (const m of ms) expect(await f.stores.mailboxes.upload(m, q)).toBe('stored');
    expect(await f.stores.mailboxes.upload(message(to), q)).toBe('fullCount');
    expect(await f.stores.mailboxes.count(to, NOW)).toBe(3);
    expect(await f.stores.mailboxes.upload(message(to, { nonce: ms[1]!.nonce, data: 'again' }), q)).toBe('replaced');
    // Another mailbox is not affected.
    expect(await f.stores.mailboxes.upload(message(randomHpk()), q)).toBe('stored');
  });

  it('refuses what would exceed the byte quota; a replacement counts new − old', async () => {
    const to = randomHpk();
    const q = { mailboxQuota: 100, mailboxQuotaBytes: 10 };
    const a = message(to, { data: '123456' });
    expect(await f.stores.mailboxes.upload(a, q)).toBe('stored');
    expect(await f.stores.mailboxes.upload(message(to, { data: '12345' }), q)).toBe('fullBytes');
    expect(await f.stores.mailboxes.upload(message(to, { data: '1234' }), q)).toBe('stored');
    expect(await bytesOf(to)).toBe(10);
    // Replacing 6 bytes by 6 fits exactly; by 7 does not; by 1 frees space.
    expect(await f.stores.mailboxes.upload(message(to, { nonce: a.nonce, data: 'abcdef' }), q)).toBe('replaced');
    expect(await f.stores.mailboxes.upload(message(to, { nonce: a.nonce, data: 'abcdefg' }), q)).toBe('fullBytes');
    expect(await f.stores.mailboxes.upload(message(to, { nonce: a.nonce, data: 'x' }), q)).toBe('replaced');
    expect(await bytesOf(to)).toBe(5);
    expect(await f.stores.mailboxes.upload(message(to, { data: '12345' }), q)).toBe('stored');
  });

  it('expired messages count for neither quota, even past the compaction limit', async () => {
    const to = randomHpk();
    const q = { mailboxQuota: 120, mailboxQuotaBytes: 120 };
    for (let i = 0; i < 120; i++) {
      await f.stores.mailboxes.upload(message(to, { data: 'x', expiresAtMs: NOW + 1000 }), q);
    }
    expect(await f.stores.mailboxes.upload(message(to, { data: 'x' }), q)).toBe('fullCount');
    const later = NOW + 1000;
    expect(await f.stores.mailboxes.upload(message(to, { data: 'y'.repeat(120), nowMs: later, expiresAtMs: later + TTL_MS }), q)).toBe('stored');
    expect(await f.stores.mailboxes.count(to, later)).toBe(1);
    expect(await bytesOf(to)).toBe(120);
  });

  it('an expired message with the same nonce is not replaced: the upload is new and goes last', async () => {
    const to = randomHpk();
    const a = message(to, { expiresAtMs: NOW + 1000 });
    await f.stores.mailboxes.upload(a, QUOTAS);
    const b = message(to, { expiresAtMs: NOW + TTL_MS });
    await f.stores.mailboxes.upload(b, QUOTAS);
    const later = NOW + 2000;
    expect(await f.stores.mailboxes.upload(message(to, { nonce: a.nonce, nowMs: later, expiresAtMs: later + TTL_MS }), QUOTAS)).toBe('stored');
    const items = parseItems(await f.stores.mailboxes.download(to, { start: 0, count: 100, from: null }, later));
    expect(items.map((i) => i.nonce)).toEqual([b.nonce, a.nonce]);
  });

  it('gives every mailbox key and the token a TTL of the latest expiry plus the margin', async () => {
    const to = randomHpk();
    const m = message(to);
    const w = await timedWrite(f.redis, () => f.stores.mailboxes.upload(m, QUOTAS));
    const k = f.keys.mailbox(to);
    for (const key of [k.msgs, k.order, k.exp, f.keys.storageToken(storageToken(to, m.nonce))]) await expectTtlGiven(f.redis, key, w, TTL_MS + KEY_TTL_MARGIN_MS);
    for (const key of [k.msgs, k.order, k.exp]) expect(key).toContain(`{${to}}`);
  });

  it('keeps data exactly, including lone surrogates and JSON-looking text', async () => {
    const to = randomHpk();
    const data = '{"object":"message"} \ud800 "quoted" \\ \u2028 日本';
    await f.stores.mailboxes.upload(message(to, { data }), QUOTAS);
    const [item] = parseItems(await f.stores.mailboxes.download(to, { start: 0, count: 1, from: null }, NOW));
    expect(item!.data).toBe(data);
  });
});
