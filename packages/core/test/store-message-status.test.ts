/** Storage-token records read by messageStatus: written by upload, removed by delete. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { b64, h2 } from '@zax/protocol';
import { storageToken } from '../src/store/index.js';
import { openStores, randomHpk, type StoreFixture } from './helpers.js';
import { NOW, QUOTAS, TTL_MS, message } from './mailbox-fixture.js';

let f: StoreFixture;
beforeEach(async () => {
  f = await openStores('status');
});
afterEach(async () => {
  await f.close();
});

describe('storage tokens', () => {
  it('follow the docs/PROTOCOL.md §3.1 example', () => {
    expect(storageToken('ywUXGPxQxOUUrIXVgUWlIxLPiIkSpI3WkMRlIPuYRFQ=', 'AAAAAGVT8QAAAAAAAAAAAAAAAAAAAAAA')).toBe(
      'We+SSvRkUzfq1Da+wvfYTyQEWYFmcJlAb4xCsxoN3n4=',
    );
    expect(storageToken('a', 'b')).toBe(b64(h2('ab')));
  });

  it('record the message expiry, are unknown otherwise, and go with a delete', async () => {
    const to = randomHpk();
    const m = message(to);
    await f.stores.mailboxes.upload(m, QUOTAS);
    const token = storageToken(to, m.nonce);
    expect(await f.stores.mailboxes.tokenExpiry(token)).toBe(NOW + TTL_MS);
    expect(await f.stores.mailboxes.tokenExpiry(storageToken(randomHpk(), m.nonce))).toBeNull();
    await f.stores.mailboxes.delete(to, [m.nonce], NOW);
    expect(await f.stores.mailboxes.tokenExpiry(token)).toBeNull();
  });
});
