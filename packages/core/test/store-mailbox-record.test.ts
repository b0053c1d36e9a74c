/**
 * The binary mailbox record (include/mailbox.lua, store/mailbox.ts): data stored as raw bytes when
 * it is canonical strict base64, else as text; download items rendered byte for byte as
 * `renderItem` renders the message; byte accounting, replacement, quotas and the sender filter on
 * every data format; the three-key layout.
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { b64, randomBytes } from '@zax/protocol';
import { renderItem, type NewMessage } from '../src/store/index.js';
import { BYTES_FIELD, decodeItem, encodeRecord } from '../src/store/mailbox.js';
import { openStores, randomHpk, randomNonceB64, type StoreFixture } from './helpers.js';
import { NOW, QUOTAS, TTL_MS, message } from './mailbox-fixture.js';

let f: StoreFixture;
beforeEach(async () => {
  f = await openStores('record');
});
afterEach(async () => {
  await f.close();
});

const all = { start: 0, count: 100, from: null };
const bytesOf = async (hpk: string): Promise<number> => Number((await f.redis.hget(f.keys.mailbox(hpk).msgs, BYTES_FIELD)) ?? 0);
/** The stored record of the only message of a mailbox. */
async function onlyRecord(hpk: string): Promise<Buffer> {
  const h = await f.redis.hgetallBuffer(f.keys.mailbox(hpk).msgs);
  const recs = Object.entries(h).filter(([k]) => k !== BYTES_FIELD);
  expect(recs).toHaveLength(1);
  return recs[0]![1];
}

/** Data of every format: base64 (canonical or not), text, unicode, lone surrogates, JSON-looking. */
const SAMPLES: readonly string[] = [
  '',
  b64(randomBytes(1)),
  b64(randomBytes(2)),
  b64(randomBytes(3)),
  b64(randomBytes(768)),
  'QQ==',
  'QR==', // not canonical (trailing bits): must come back as sent
  'QUJD\n',
  'QUJD RA==',
  'abc',
  'héllo wörld 日本 🎉',
  '{"object":"message"} "quoted" \\ \u2028 \u0000 \u001f',
  '\ud800',
  'a\udc00b',
  '\udbff\udfff\ud83d',
  '🎉'.slice(0, 1) + 'tail',
];

const ITEM_KEYS = ['data', 'time', 'from', 'nonce', 'kind'];

describe('mailbox record', () => {
  it('download renders every data format byte for byte as renderItem, with its byte count', async () => {
    for (const [i, data] of SAMPLES.entries()) {
      const to = randomHpk();
      const kind = i % 2 === 0 ? 'message' : 'file';
      const m = message(to, { data, kind, nowMs: NOW + 123.5 + i });
      expect(await f.stores.mailboxes.upload(m, QUOTAS)).toBe('stored');
      const items = await f.stores.mailboxes.download(to, all, NOW + 200);
      expect(items).toEqual([renderItem(m)]);
      expect(Object.keys(JSON.parse(items[0]!) as object)).toEqual(ITEM_KEYS);
      expect(await bytesOf(to)).toBe(Buffer.byteLength(data, 'utf8'));
    }
  });

  it('stores canonical base64 as its raw bytes, other data as text', async () => {
    const raw = randomBytes(768);
    const to = randomHpk();
    await f.stores.mailboxes.upload(message(to, { data: b64(raw) }), QUOTAS);
    const rec = await onlyRecord(to);
    expect(rec.length).toBe(41 + 768);
    expect(rec[0]! & 3).toBe(1);
    expect(rec.subarray(41).equals(Buffer.from(raw))).toBe(true);

    const to2 = randomHpk();
    await f.stores.mailboxes.upload(message(to2, { data: 'QR==' }), QUOTAS);
    const rec2 = await onlyRecord(to2);
    expect(rec2[0]! & 3).toBe(0);
    expect(rec2.subarray(41).toString('latin1')).toBe('QR==');
  });

  it('stores the sender once, as raw bytes', async () => {
    const to = randomHpk();
    const m = message(to, { data: 'x' });
    await f.stores.mailboxes.upload(m, QUOTAS);
    const rec = await onlyRecord(to);
    expect(rec.subarray(1, 33).toString('base64')).toBe(m.from);
    expect(rec.includes(Buffer.from(m.from))).toBe(false);
  });

  it('property: encodeRecord then decodeItem is renderItem, for any string', () => {
    const hpk = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((a) => b64(a));
    const nonce = fc.uint8Array({ minLength: 24, maxLength: 24 });
    const data = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) }),
      fc.uint8Array({ maxLength: 300 }).map((a) => b64(a)),
    );
    const time = fc.oneof(fc.integer({ min: 0, max: 4_000_000_000_000 }), fc.double({ min: 0, max: 4e12, noNaN: true }));
    fc.assert(
      fc.property(hpk, nonce, data, time, fc.boolean(), (from, n, d, nowMs, file) => {
        const m = { from, data: d, dataBytes: Buffer.byteLength(d, 'utf8'), nowMs, kind: file ? ('file' as const) : ('message' as const) };
        const nonceBuf = Buffer.from(n);
        expect(decodeItem(nonceBuf, encodeRecord(m))).toBe(renderItem({ ...m, nonce: nonceBuf.toString('base64') }));
      }),
      { numRuns: 500 },
    );
  });

  it('byte quota and replacement count UTF-8 bytes on every format', async () => {
    const to = randomHpk();
    const q = { mailboxQuota: 100, mailboxQuotaBytes: 16 };
    const a = message(to, { data: 'QUJD' }); // base64: 4 bytes
    const b = message(to, { data: '\ud800日' }); // lone surrogate (3) + 3 bytes
    expect(await f.stores.mailboxes.upload(a, q)).toBe('stored');
    expect(await f.stores.mailboxes.upload(b, q)).toBe('stored');
    expect(await bytesOf(to)).toBe(10);
    expect(await f.stores.mailboxes.upload(message(to, { data: 'QUJDRA==QUJD' }), q)).toBe('fullBytes'); // 12 text bytes
    // Replace the base64 message by 10 bytes of text: 6 + 10 = 16 fits exactly; then 11 does not.
    const a2 = message(to, { nonce: a.nonce, data: 'é'.repeat(5), nowMs: NOW + 10 });
    expect(await f.stores.mailboxes.upload(a2, q)).toBe('replaced');
    expect(await bytesOf(to)).toBe(16);
    expect(await f.stores.mailboxes.upload(message(to, { nonce: a.nonce, data: 'é'.repeat(5) + 'x' }), q)).toBe('fullBytes');
    // Back to base64, 8 bytes: keeps its place, new content and time.
    const a3 = message(to, { nonce: a.nonce, data: b64(randomBytes(6)), nowMs: NOW + 20 });
    expect(await f.stores.mailboxes.upload(a3, q)).toBe('replaced');
    expect(await bytesOf(to)).toBe(14);
    expect(await f.stores.mailboxes.download(to, all, NOW + 30)).toEqual([renderItem(a3), renderItem(b)]);
    // Deleting and expiring give the bytes back.
    expect(await f.stores.mailboxes.delete(to, [a.nonce], NOW + 30)).toBe(1);
    expect(await bytesOf(to)).toBe(6);
    expect(await f.stores.mailboxes.count(to, NOW + TTL_MS)).toBe(0);
    expect(await f.redis.exists(f.keys.mailbox(to).msgs)).toBe(0);
  });

  it('the sender filter matches raw senders on every format, in receipt order', async () => {
    const to = randomHpk();
    const A = randomHpk();
    const B = randomHpk();
    const ms: NewMessage[] = [];
    for (const [i, data] of SAMPLES.entries()) {
      const m = message(to, { data, from: i % 3 === 0 ? A : B, nowMs: NOW + i });
      ms.push(m);
      await f.stores.mailboxes.upload(m, QUOTAS);
    }
    const fromA = ms.filter((m) => m.from === A).map((m) => renderItem(m));
    expect(await f.stores.mailboxes.download(to, { start: 0, count: 100, from: [A] }, NOW + 100)).toEqual(fromA);
    expect(await f.stores.mailboxes.download(to, { start: 1, count: 2, from: [A] }, NOW + 100)).toEqual(fromA.slice(1, 3));
    expect(await f.stores.mailboxes.download(to, { start: 0, count: 100, from: [A, B] }, NOW + 100)).toEqual(ms.map((m) => renderItem(m)));
    expect(await f.stores.mailboxes.download(to, { start: 0, count: 100, from: [randomHpk()] }, NOW + 100)).toEqual([]);
  });

  it('a mailbox is three keys, all gone once it is empty', async () => {
    const to = randomHpk();
    const m = message(to, { data: b64(randomBytes(30)) });
    await f.stores.mailboxes.upload(m, QUOTAS);
    const k = f.keys.mailbox(to);
    expect(Object.keys(k).sort()).toEqual(['exp', 'msgs', 'order']);
    expect(await f.redis.exists(k.msgs, k.order, k.exp)).toBe(3);
    expect(await f.redis.keys(`${f.keys.prefix}mb:{${to}}*`)).toHaveLength(3);
    expect(await f.stores.mailboxes.delete(to, [m.nonce, randomNonceB64(), 'not a nonce'], NOW)).toBe(0);
    expect(await f.redis.keys(`${f.keys.prefix}mb:{${to}}*`)).toEqual([]);
  });

  it('a refused upload into a mailbox emptied by compaction leaves no key behind', async () => {
    const to = randomHpk();
    await f.stores.mailboxes.upload(message(to, { data: 'x', expiresAtMs: NOW + 10 }), QUOTAS);
    const q = { mailboxQuota: 100, mailboxQuotaBytes: 4 };
    expect(await f.stores.mailboxes.upload(message(to, { data: 'too long', nowMs: NOW + 20, expiresAtMs: NOW + 20 + TTL_MS }), q)).toBe('fullBytes');
    expect(await f.redis.keys(`${f.keys.prefix}mb:{${to}}*`)).toEqual([]);
  });
});
