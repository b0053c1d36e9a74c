/** mint.lua and consume.lua through the handshake store, on real Redis. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { b64, randomBytes } from '@zax/protocol';
import { KEY_TTL_MARGIN_MS } from '../src/keys.js';
import type { MintInput } from '../src/store/index.js';
import { openStores, type StoreFixture } from './helpers.js';
import { expectTtlGiven, timedWrite } from '../../../test/support/ttl.js';

const NOW = 1_700_000_000_000;
const EXP = NOW + 300_000;

function input(over: Partial<MintInput> = {}): MintInput {
  return {
    handshakeId: b64(randomBytes(32)),
    clientToken: b64(randomBytes(32)),
    relayToken: b64(randomBytes(32)),
    relaySessionPk: b64(randomBytes(32)),
    relaySessionSk: b64(randomBytes(32)),
    expiresAtMs: EXP,
    ...over,
  };
}

let f: StoreFixture;
beforeEach(async () => {
  f = await openStores('hs');
});
afterEach(async () => {
  await f.close();
});

describe('mint (create-if-absent)', () => {
  it('creates a record and returns the candidate key', async () => {
    const i = input();
    expect(await f.stores.handshakes.mint(i, NOW)).toEqual({ status: 'ok', relaySessionPk: i.relaySessionPk });
    const hs = await f.stores.handshakes.read(i.handshakeId, NOW);
    expect(hs).toEqual({
      clientToken: i.clientToken,
      relayToken: i.relayToken,
      relaySessionPk: i.relaySessionPk,
      relaySessionSk: i.relaySessionSk,
      expiresAtMs: EXP,
    });
  });

  it('is idempotent for the same relay token: the first key pair stays (D9)', async () => {
    const i = input();
    await f.stores.handshakes.mint(i, NOW);
    const again = await f.stores.handshakes.mint({ ...i, relaySessionPk: b64(randomBytes(32)), relaySessionSk: b64(randomBytes(32)) }, NOW + 1000);
    expect(again).toEqual({ status: 'ok', relaySessionPk: i.relaySessionPk });
    expect((await f.stores.handshakes.read(i.handshakeId, NOW))?.relaySessionSk).toBe(i.relaySessionSk);
  });

  it('replaces a live record with a different relay token', async () => {
    const i = input();
    await f.stores.handshakes.mint(i, NOW);
    const j = input({ handshakeId: i.handshakeId, clientToken: i.clientToken });
    expect(await f.stores.handshakes.mint(j, NOW)).toEqual({ status: 'ok', relaySessionPk: j.relaySessionPk });
    expect((await f.stores.handshakes.read(i.handshakeId, NOW))?.relayToken).toBe(j.relayToken);
  });

  it('replaces an expired record even with the same relay token', async () => {
    const i = input();
    await f.stores.handshakes.mint(i, NOW);
    const later = { ...i, relaySessionPk: b64(randomBytes(32)), expiresAtMs: EXP + 300_000 };
    expect(await f.stores.handshakes.mint(later, EXP)).toEqual({ status: 'ok', relaySessionPk: later.relaySessionPk });
  });

  it('load treats a record at or past its expiry as absent', async () => {
    const i = input();
    await f.stores.handshakes.mint(i, NOW);
    expect(await f.stores.handshakes.read(i.handshakeId, EXP - 1)).not.toBeNull();
    expect(await f.stores.handshakes.read(i.handshakeId, EXP)).toBeNull();
    expect(await f.stores.handshakes.read(b64(randomBytes(32)), NOW)).toBeNull();
  });

  it('sets a Redis TTL of the remaining lifetime plus the margin', async () => {
    const i = input();
    const w = await timedWrite(f.redis, () => f.stores.handshakes.mint(i, NOW));
    await expectTtlGiven(f.redis, f.keys.handshake(i.handshakeId).secrets, w, 300_000 + KEY_TTL_MARGIN_MS);
  });
});

describe('consume and the proven marker', () => {
  it('deletes the handshake and refuses a second mint with the same relay token', async () => {
    const i = input();
    await f.stores.handshakes.mint(i, NOW);
    expect(await f.stores.handshakes.consume(i.handshakeId, i.relayToken, NOW + 10)).toBe(true);
    expect(await f.stores.handshakes.read(i.handshakeId, NOW + 10)).toBeNull();
    expect(await f.stores.handshakes.mint(i, NOW + 20)).toEqual({ status: 'proven' });
    expect(await f.stores.handshakes.consume(i.handshakeId, i.relayToken, NOW + 30)).toBe(false);
  });

  it('the marker lives until the handshake expiry, with a Redis TTL to match', async () => {
    const i = input();
    await f.stores.handshakes.mint(i, NOW);
    const w = await timedWrite(f.redis, () => f.stores.handshakes.consume(i.handshakeId, i.relayToken, NOW));
    expect(await f.stores.handshakes.mint(i, EXP - 1)).toEqual({ status: 'proven' });
    await expectTtlGiven(f.redis, f.keys.handshake(i.handshakeId).proven, w, 300_000 + KEY_TTL_MARGIN_MS);
    const later = { ...i, expiresAtMs: EXP + 300_000 };
    expect(await f.stores.handshakes.mint(later, EXP)).toEqual({ status: 'ok', relaySessionPk: i.relaySessionPk });
  });

  it('a new handshake for the same client token (new relay token) may be minted after a proof (D8)', async () => {
    const i = input();
    await f.stores.handshakes.mint(i, NOW);
    await f.stores.handshakes.consume(i.handshakeId, i.relayToken, NOW);
    const j = input({ handshakeId: i.handshakeId, clientToken: i.clientToken });
    expect(await f.stores.handshakes.mint(j, NOW + 5)).toEqual({ status: 'ok', relaySessionPk: j.relaySessionPk });
  });

  it('does not consume a handshake that is expired, unknown or has another relay token', async () => {
    const i = input();
    await f.stores.handshakes.mint(i, NOW);
    expect(await f.stores.handshakes.consume(i.handshakeId, b64(randomBytes(32)), NOW)).toBe(false);
    expect(await f.stores.handshakes.consume(i.handshakeId, i.relayToken, EXP)).toBe(false);
    expect(await f.stores.handshakes.consume(b64(randomBytes(32)), i.relayToken, NOW)).toBe(false);
    expect(await f.stores.handshakes.read(i.handshakeId, NOW)).not.toBeNull();
  });

  it('of concurrent consumes exactly one wins', async () => {
    const i = input();
    await f.stores.handshakes.mint(i, NOW);
    const results = await Promise.all(Array.from({ length: 10 }, () => f.stores.handshakes.consume(i.handshakeId, i.relayToken, NOW)));
    expect(results.filter(Boolean)).toHaveLength(1);
  });
});
