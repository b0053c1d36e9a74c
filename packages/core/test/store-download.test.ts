/** mailbox-download.lua: receipt order, start/count paging, the `from` filter, expiry. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStores, randomHpk, type StoreFixture } from './helpers.js';
import { NOW, QUOTAS, message, parseItems } from './mailbox-fixture.js';

let f: StoreFixture;
beforeEach(async () => {
  f = await openStores('download');
});
afterEach(async () => {
  await f.close();
});

async function fill(to: string, n: number, from: (i: number) => string, exp?: (i: number) => number): Promise<string[]> {
  const nonces: string[] = [];
  for (let i = 0; i < n; i++) {
    const m = message(to, { data: `m${i}`, from: from(i), ...(exp ? { expiresAtMs: exp(i) } : {}) });
    nonces.push(m.nonce);
    await f.stores.mailboxes.upload(m, QUOTAS);
  }
  return nonces;
}

const datas = async (to: string, q: { start: number; count: number; from: string[] | null }, now = NOW): Promise<string[]> =>
  parseItems(await f.stores.mailboxes.download(to, q, now)).map((i) => i.data);

describe('download', () => {
  it('returns messages in receipt order, paged by start and count', async () => {
    const to = randomHpk();
    const A = randomHpk();
    await fill(to, 5, () => A);
    expect(await datas(to, { start: 0, count: 100, from: null })).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(await datas(to, { start: 1, count: 1, from: null })).toEqual(['m1']);
    expect(await datas(to, { start: 3, count: 5, from: null })).toEqual(['m3', 'm4']);
    expect(await datas(to, { start: 5, count: 1, from: null })).toEqual([]);
    expect(await datas(to, { start: 2_000_000_000, count: 100, from: null })).toEqual([]);
    expect(await datas(randomHpk(), { start: 0, count: 100, from: null })).toEqual([]);
  });

  it('filters by sender before skipping start', async () => {
    const to = randomHpk();
    const A = randomHpk();
    const B = randomHpk();
    await fill(to, 6, (i) => (i % 2 === 0 ? A : B));
    expect(await datas(to, { start: 0, count: 100, from: [B] })).toEqual(['m1', 'm3', 'm5']);
    expect(await datas(to, { start: 1, count: 1, from: [B] })).toEqual(['m3']);
    expect(await datas(to, { start: 0, count: 100, from: [A, B] })).toHaveLength(6);
    expect(await datas(to, { start: 0, count: 100, from: [randomHpk()] })).toEqual([]);
  });

  it('skips expired messages that compaction has not reached yet', async () => {
    const to = randomHpk();
    const A = randomHpk();
    // 150 messages, every other one short-lived: more expired ones than one compaction pass removes.
    await fill(to, 300, () => A, (i) => (i % 2 === 0 ? NOW + 1000 : NOW + 10_000_000));
    const later = NOW + 1000;
    const got = await datas(to, { start: 0, count: 3, from: null }, later);
    expect(got).toEqual(['m1', 'm3', 'm5']);
    expect(await datas(to, { start: 10, count: 2, from: null }, later)).toEqual(['m21', 'm23']);
    expect(await f.stores.mailboxes.count(to, later)).toBe(150);
  });

  it('returns at most count items', async () => {
    const to = randomHpk();
    await fill(to, 120, () => randomHpk());
    expect(await datas(to, { start: 0, count: 100, from: null })).toHaveLength(100);
    expect(await datas(to, { start: 100, count: 100, from: null })).toHaveLength(20);
  });

  it('does not delete anything', async () => {
    const to = randomHpk();
    await fill(to, 3, () => randomHpk());
    await datas(to, { start: 0, count: 100, from: null });
    expect(await f.stores.mailboxes.count(to, NOW)).toBe(3);
  });
});
