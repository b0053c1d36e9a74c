/**
 * A mailbox holding more bytes than one `download` answer may carry (MAX_DOWNLOAD_BYTES, DEVIATION
 * D19): glow.ts and @zax/client still collect every message, against real processes.
 *
 * glow.ts 1.1.x sends a bare `{"cmd":"download"}` (no start/count): it gets the first page only,
 * as with the reference relay's 100-message page, and an application collects the rest by deleting
 * what it has read and downloading again. @zax/client's `receive` pages with `start` until an empty page.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { Mailbox as ClientMailbox, generateIdentity } from '@zax/client';
import { Relay } from '../support/relay.js';
import { loadGlow } from '../support/glow.js';

const glow = loadGlow();
type GlowMailbox = Awaited<ReturnType<typeof glow.Mailbox.new>>;

/** About two messages per answer: each text below boxes to ~850 data bytes. */
const CAP = 2000;
const N = 12;
const text = (i: number): string => `message ${String(i).padStart(3, '0')} `.padEnd(600, '.');

let relay: Relay;
const opened: GlowMailbox[] = [];

beforeAll(async () => {
  relay = await Relay.start({ redisUrl: inject('redisUrl'), env: { MAX_DOWNLOAD_BYTES: String(CAP) } });
});
afterAll(async () => {
  for (const m of opened) m.clearSession(relay.url);
  await relay?.stop();
});

describe('download answers capped by bytes', () => {
  it('glow.ts collects every message by downloading and deleting until the mailbox is empty', async () => {
    const alice = await glow.Mailbox.new(`alice-${Math.random().toString(36).slice(2)}`);
    const bob = await glow.Mailbox.new(`bob-${Math.random().toString(36).slice(2)}`);
    opened.push(alice, bob);
    await alice.keyRing.addGuest('Bob', bob.keyRing.getPubCommKey());
    await bob.keyRing.addGuest('Alice', alice.keyRing.getPubCommKey());
    for (let i = 0; i < N; i++) await alice.upload(relay.url, 'Bob', text(i));
    expect(await bob.count(relay.url)).toBe(N);

    const got: string[] = [];
    const pageSizes: number[] = [];
    for (let round = 0; round <= N; round++) {
      const page = await bob.download(relay.url);
      if (page.length === 0) break;
      pageSizes.push(page.length);
      got.push(...page.map((m) => String(m.data)));
      await bob.delete(relay.url, page.map((m) => m.nonce));
    }
    expect(got).toEqual(Array.from({ length: N }, (_, i) => text(i)));
    // More than one answer was needed, and none was empty before the end.
    expect(pageSizes.length).toBeGreaterThan(1);
    expect(await bob.count(relay.url)).toBe(0);
  });

  it('@zax/client receive() returns every message in one call, in order', async () => {
    const alice = generateIdentity();
    const carol = generateIdentity();
    const a = ClientMailbox.create({ url: relay.url, identity: alice, guests: [carol.publicKey] });
    const c = ClientMailbox.create({ url: relay.url, identity: carol, guests: [alice.publicKey] });
    for (let i = 0; i < N; i++) await a.send(carol.publicKey, text(i));
    // One answer holds fewer than all of them.
    expect((await c.download()).length).toBeLessThan(N);
    const all = await c.receive();
    expect(all.map((m) => m.text)).toEqual(Array.from({ length: N }, (_, i) => text(i)));
    expect(all.every((m) => m.status === 'decrypted')).toBe(true);
  });
});
