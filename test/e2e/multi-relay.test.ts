/**
 * Delivery through several relays (@zax/client `MultiMailbox`) against three independent relays:
 * each its own core and gatekeeper processes and its own redis-server, so nothing is shared. With
 * k = 2, a message is stored on the recipient's two chosen relays and read back once; when one of
 * them is killed mid-exchange (SIGKILL of its core and gatekeeper), sends go on through the other,
 * and the recipient gets every message exactly once, before and after the relay comes back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateIdentity, Mailbox, MultiMailbox, pickRelays, RelayNetworkError, type Identity } from '@zax/client';
import { testTopology } from '../support/store-server.js';
import { killRelay, reviveRelay, startIndependentRelays, type IndependentRelays } from '../support/independent-relays.js';

let three: IndependentRelays;
let urls: readonly string[] = [];

beforeAll(async () => {
  if (testTopology() !== 'single') return;
  three = await startIndependentRelays(3);
  urls = three.urls;
});
afterAll(async () => {
  await three?.stop();
});

const relayAt = (url: string) => three.at(url);
/** Bob's mailbox on one relay alone, to see what that relay holds. */
const countAt = (url: string, identity: Identity): Promise<number> => Mailbox.create({ url, identity }).count();

function pair(): { alice: Identity; bob: Identity; a: MultiMailbox; b: MultiMailbox } {
  const alice = generateIdentity();
  const bob = generateIdentity();
  const a = new MultiMailbox({ urls, k: 2, identity: alice, guests: [bob.publicKey] });
  // Bob lists the same relays in another order and spelling: the choice is the same.
  const b = new MultiMailbox({ urls: [...urls].reverse().map((u) => `${u}/`), k: 2, identity: bob, guests: [alice.publicKey] });
  return { alice, bob, a, b };
}

// Each relay has its own single redis-server, whatever ZAX_TEST_TOPOLOGY says: a topology run
// (pnpm test:topologies) would repeat the same test, so it runs in the default run only.
describe.skipIf(testTopology() !== 'single')('MultiMailbox through three independent relays, k = 2', () => {
  it('sender and recipient pick the same 2 relays for the recipient', () => {
    const { bob, a, b } = pair();
    const chosen = pickRelays(urls, bob.hpk, 2);
    expect(chosen).toHaveLength(2);
    expect(a.relaysFor(bob.hpk)).toEqual(chosen);
    expect(b.ownRelays).toEqual(chosen);
  });

  it('stores each message on both chosen relays, none on the third, and delivers it once', async () => {
    const { bob, a, b } = pair();
    const chosen = b.ownRelays;
    const third = urls.find((u) => !chosen.includes(u))!;
    const N = 12;
    const sent = [];
    for (let i = 0; i < N; i++) sent.push(i === 5 ? await a.send({ hpk: bob.hpk }, 'plain 5', { encrypt: false }) : await a.send(bob.publicKey, `message ${i}`));
    for (const s of sent) {
      expect(s.failures).toEqual([]);
      expect(s.relays.map((r) => r.url)).toEqual(chosen);
      // The storage token is h2(to ‖ nonce): one nonce, so the same token from both relays.
      const tokens = s.relays.map((r) => ('token' in r ? r.token : null));
      expect(tokens[0]).not.toBeNull();
      expect(tokens[1]).toBe(tokens[0]);
    }
    expect(await countAt(chosen[0]!, bob)).toBe(N);
    expect(await countAt(chosen[1]!, bob)).toBe(N);
    expect(await countAt(third, bob)).toBe(0);
    expect((await b.count()).relays).toEqual(chosen.map((url) => ({ url, count: N })));

    const got = await b.receive();
    expect(got.failures).toEqual([]);
    expect(got.messages.map((m) => m.text ?? m.data)).toEqual(sent.map((_, i) => (i === 5 ? 'plain 5' : `message ${i}`)));
    expect(got.messages.map((m) => m.nonce)).toEqual(sent.map((s) => s.nonce));
    for (const m of got.messages) expect(m.relays).toEqual(chosen);

    const del = await b.delete(got.messages.slice(0, 4).map((m) => m.nonce));
    expect(del.relays).toEqual(chosen.map((url) => ({ url, remaining: N - 4 })));
    expect((await b.deleteAll()).failures).toEqual([]);
    expect((await b.receive()).messages).toEqual([]);
  });

  it('loses and duplicates nothing when one of the chosen relays is killed mid-exchange, and after it returns', async () => {
    const { bob, a, b } = pair();
    const [victimUrl, survivor] = pickRelays(urls, bob.hpk, 2) as [string, string];
    const victim = relayAt(victimUrl);
    const texts = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `m${from + i}`);

    // Before: 5 messages through both relays, and Bob reads them.
    for (const t of texts(0, 5)) expect((await a.send(bob.publicKey, t)).failures).toEqual([]);
    expect((await b.receive()).messages.map((m) => m.text)).toEqual(texts(0, 5));

    // The first chosen relay dies: its gatekeeper and its core, killed.
    await killRelay(victim);

    // Alice goes on: each send succeeds through the survivor and reports the dead relay.
    for (const t of texts(5, 12)) {
      const s = await a.send(bob.publicKey, t);
      expect(s.relays.map((r) => r.url)).toEqual([victimUrl, survivor]);
      expect(s.failures.map((f) => f.url)).toEqual([victimUrl]);
      expect(s.failures[0]!.error).toBeInstanceOf(RelayNetworkError);
      expect((s.failures[0]!.error as RelayNetworkError).reason).toBe('connection-refused');
    }
    // A plain message too: it carries a client nonce, so it also de-duplicates.
    const plain = await a.send({ hpk: bob.hpk }, 'plain while down', { encrypt: false });
    expect(plain.failures.map((f) => f.url)).toEqual([victimUrl]);

    // Bob reads while it is down: everything, once, and the failure reported.
    const during = await b.receive();
    expect(during.failures.map((f) => f.url)).toEqual([victimUrl]);
    expect(during.messages.map((m) => m.text ?? m.data)).toEqual([...texts(0, 12), 'plain while down']);
    expect(new Set(during.messages.map((m) => m.nonce)).size).toBe(13);
    for (const m of during.messages) expect(m.relays).toEqual([survivor]);
    const downCount = await b.count();
    expect(downCount.relays).toEqual([{ url: victimUrl, error: expect.any(RelayNetworkError) }, { url: survivor, count: 13 }]);

    // The relay comes back (its store kept what it had): still each message once.
    await reviveRelay(victim);
    const after = await b.receive();
    expect(after.failures).toEqual([]);
    expect(after.messages.map((m) => m.text ?? m.data)).toEqual([...texts(0, 12), 'plain while down']);
    expect(after.messages.map((m) => m.relays)).toEqual([...texts(0, 5).map(() => [victimUrl, survivor]), ...texts(5, 13).map(() => [survivor])]);
    expect(await countAt(victimUrl, bob)).toBe(5);

    // And the exchange goes on through both.
    expect((await a.send(bob.publicKey, 'm12')).failures).toEqual([]);
    const last = await b.receive();
    expect(last.messages.map((m) => m.text ?? m.data)).toEqual([...texts(0, 12), 'plain while down', 'm12']);
    expect(last.messages.at(-1)!.relays).toEqual([victimUrl, survivor]);
    expect((await b.deleteAll()).relays).toEqual([
      { url: victimUrl, remaining: 0 },
      { url: survivor, remaining: 0 },
    ]);
  });
});
