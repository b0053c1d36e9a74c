/** mailbox-download.lua's byte cap (DEVIATION D19): oldest messages that fit, at least one, paging on. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStores, randomHpk, type StoreFixture } from './helpers.js';
import { NOW, QUOTAS, message, parseItems } from './mailbox-fixture.js';

let f: StoreFixture;
beforeEach(async () => {
  f = await openStores('download-cap');
});
afterEach(async () => {
  await f.close();
});

/** Uploads messages of these data sizes (base64-looking text of `size` bytes, tagged by index). */
async function fill(to: string, sizes: readonly number[], from?: (i: number) => string): Promise<void> {
  for (let i = 0; i < sizes.length; i++) {
    const data = `${i}`.padStart(4, '0') + 'x'.repeat(Math.max(0, sizes[i]! - 4));
    await f.stores.mailboxes.upload(message(to, { data, ...(from ? { from: from(i) } : {}) }), QUOTAS);
  }
}

const tags = async (to: string, q: { start?: number; count?: number; from?: string[] | null; maxBytes?: number }): Promise<number[]> =>
  parseItems(await f.stores.mailboxes.download(to, { start: 0, count: 100, from: null, ...q }, NOW)).map((i) => Number(i.data.slice(0, 4)));

describe('download byte cap', () => {
  it('returns the oldest messages whose data bytes fit, in receipt order', async () => {
    const to = randomHpk();
    await fill(to, [100, 100, 100, 100, 100]);
    expect(await tags(to, { maxBytes: 300 })).toEqual([0, 1, 2]);
    expect(await tags(to, { maxBytes: 299 })).toEqual([0, 1]);
    expect(await tags(to, { maxBytes: 10_000 })).toEqual([0, 1, 2, 3, 4]);
    // The next page starts where the first ended.
    expect(await tags(to, { start: 3, maxBytes: 300 })).toEqual([3, 4]);
  });

  it('stops at the first message that does not fit, never skipping ahead to a smaller one', async () => {
    const to = randomHpk();
    await fill(to, [100, 500, 10, 10]);
    expect(await tags(to, { maxBytes: 200 })).toEqual([0]);
  });

  it('always returns at least one message, even one larger than the cap', async () => {
    const to = randomHpk();
    await fill(to, [1000, 10, 10]);
    expect(await tags(to, { maxBytes: 50 })).toEqual([0]);
    expect(await tags(to, { start: 1, maxBytes: 50 })).toEqual([1, 2]);
    expect(await tags(to, { maxBytes: 1 })).toEqual([0]);
  });

  it('caps together with count and the from filter', async () => {
    const to = randomHpk();
    const A = randomHpk();
    const B = randomHpk();
    await fill(to, [100, 100, 100, 100, 100, 100], (i) => (i % 2 === 0 ? A : B));
    expect(await tags(to, { count: 2, maxBytes: 10_000 })).toEqual([0, 1]);
    expect(await tags(to, { from: [B], maxBytes: 200 })).toEqual([1, 3]);
    expect(await tags(to, { from: [B], start: 2, maxBytes: 200 })).toEqual([5]);
  });

  it('lets a reader who deletes each page collect everything, page by page', async () => {
    const to = randomHpk();
    const sizes = Array.from({ length: 30 }, (_, i) => 50 + ((i * 37) % 200));
    await fill(to, sizes);
    const got: number[] = [];
    for (let round = 0; round < 100; round++) {
      const page = parseItems(await f.stores.mailboxes.download(to, { start: 0, count: 100, from: null, maxBytes: 600 }, NOW));
      if (page.length === 0) break;
      expect(page.reduce((n, i) => n + i.data.length, 0) <= 600 || page.length === 1).toBe(true);
      got.push(...page.map((i) => Number(i.data.slice(0, 4))));
      await f.stores.mailboxes.delete(to, page.map((i) => i.nonce), NOW);
    }
    expect(got).toEqual(sizes.map((_, i) => i));
  });

  it('counts data bytes as the quotas do (UTF-8 length), whatever the stored format', async () => {
    const to = randomHpk();
    // 'é' is 2 UTF-8 bytes: 3 × 40 bytes each.
    for (let i = 0; i < 3; i++) await f.stores.mailboxes.upload(message(to, { data: 'é'.repeat(20), dataBytes: 40 }), QUOTAS);
    expect(await f.stores.mailboxes.download(to, { start: 0, count: 100, from: null, maxBytes: 80 }, NOW)).toHaveLength(2);
    expect(await f.stores.mailboxes.download(to, { start: 0, count: 100, from: null, maxBytes: 79 }, NOW)).toHaveLength(1);
  });
});
