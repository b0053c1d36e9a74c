/**
 * End to end with the published glow.ts client (npm glow.ts 1.1.x) as an independent peer: Redis,
 * the core and the gatekeeper run as real processes; glow.ts speaks to the gatekeeper over HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { Relay } from '../support/relay.js';
import { loadGlow } from '../support/glow.js';

const glow = loadGlow();
type Mailbox = Awaited<ReturnType<typeof glow.Mailbox.new>>;

let relayA: Relay;
let relayB: Relay;
const opened: Array<[Mailbox, string]> = [];

async function mailbox(name: string, ...urls: string[]): Promise<Mailbox> {
  const m = await glow.Mailbox.new(`${name}-${Math.random().toString(36).slice(2)}`);
  for (const u of urls) opened.push([m, u]);
  return m;
}

async function befriend(a: Mailbox, aTag: string, b: Mailbox, bTag: string): Promise<void> {
  await a.keyRing.addGuest(bTag, b.keyRing.getPubCommKey());
  await b.keyRing.addGuest(aTag, a.keyRing.getPubCommKey());
}

beforeAll(async () => {
  const redisUrl = inject('redisUrl');
  [relayA, relayB] = await Promise.all([Relay.start({ redisUrl }), Relay.start({ redisUrl })]);
});

afterAll(async () => {
  for (const [m, u] of opened) m.clearSession(u); // glow.ts keeps timers running otherwise
  await Promise.all([relayA?.stop(), relayB?.stop()]);
});

describe('glow.ts through the relay', () => {
  it('connects, proves, and sees an empty mailbox', async () => {
    const alice = await mailbox('alice', relayA.url);
    expect(await alice.connectToRelay(relayA.url)).toBe(0);
    expect(await alice.count(relayA.url)).toBe(0);
  });

  it('sends, receives, checks status and deletes between two mailboxes', async () => {
    const alice = await mailbox('alice', relayA.url);
    const bob = await mailbox('bob', relayA.url);
    await befriend(alice, 'Alice', bob, 'Bob');

    const sentAt = Date.now();
    const token = await alice.upload(relayA.url, 'Bob', 'hello Bob, ünïcødé ✓');
    expect(token).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    await alice.upload(relayA.url, 'Bob', 'second');

    expect(await bob.count(relayA.url)).toBe(2);
    const msgs = await bob.download(relayA.url);
    expect(msgs).toHaveLength(2);
    expect(msgs.map((m) => m.kind)).toEqual(['message', 'message']);
    expect(msgs.map((m) => m.data)).toEqual(['hello Bob, ünïcødé ✓', 'second']);
    expect(msgs.every((m) => m.senderTag === 'Alice')).toBe(true);

    const ttl = await alice.messageStatus(relayA.url, token);
    // The message lifetime less at most the time since it was sent (measured here: any speed will do).
    expect(ttl).toBeGreaterThanOrEqual(432000 - Math.ceil((Date.now() - sentAt) / 1000));
    expect(ttl).toBeLessThanOrEqual(432000);

    expect(await bob.delete(relayA.url, [msgs[0]!.nonce])).toBe(1);
    expect(await alice.messageStatus(relayA.url, token)).toBe(-2);
    expect(await bob.delete(relayA.url, [msgs[1]!.nonce])).toBe(0);
    expect(await bob.download(relayA.url)).toEqual([]);
  });

  it('delivers a message from an unknown sender as a plain message', async () => {
    const carol = await mailbox('carol', relayA.url);
    const dave = await mailbox('dave', relayA.url);
    await carol.keyRing.addGuest('Dave', dave.keyRing.getPubCommKey());
    await carol.upload(relayA.url, 'Dave', 'who am I?');
    const [m] = await dave.download(relayA.url);
    expect(m!.kind).toBe('plain');
    expect((m as { from: string }).from).toBe(await carol.keyRing.getHpk());
  });

  it('sends unencrypted text that arrives byte-identical', async () => {
    const alice = await mailbox('alice', relayA.url);
    const bob = await mailbox('bob', relayA.url);
    await befriend(alice, 'Alice', bob, 'Bob');
    await alice.upload(relayA.url, 'Bob', '{"object":"message"}', false);
    const [m] = await bob.download(relayA.url);
    expect(m!.data).toBe('{"object":"message"}');
  });

  it('talks to two separate relays at once', async () => {
    const alice = await mailbox('alice', relayA.url, relayB.url);
    const bob = await mailbox('bob', relayA.url, relayB.url);
    await befriend(alice, 'Alice', bob, 'Bob');
    await alice.upload(relayA.url, 'Bob', 'via A');
    await alice.upload(relayB.url, 'Bob', 'via B 1');
    await alice.upload(relayB.url, 'Bob', 'via B 2');
    expect(await bob.count(relayA.url)).toBe(1);
    expect(await bob.count(relayB.url)).toBe(2);
    expect((await bob.download(relayA.url)).map((m) => m.data)).toEqual(['via A']);
    expect((await bob.download(relayB.url)).map((m) => m.data)).toEqual(['via B 1', 'via B 2']);
  });

  it('reconnects by itself after its session is dropped', async () => {
    const alice = await mailbox('alice', relayA.url);
    const bob = await mailbox('bob', relayA.url);
    await befriend(alice, 'Alice', bob, 'Bob');
    await alice.upload(relayA.url, 'Bob', 'one');
    // A second proof for the same hpk replaces the first session on the relay (D5 → 401 for the old keys).
    const aliceAgain = await glow.Mailbox.fromSecKey(`alice2-${Date.now()}`, alice.keyRing.getPrivateCommKey());
    opened.push([aliceAgain, relayA.url]);
    await aliceAgain.connectToRelay(relayA.url);
    // The old client's next command gets 401; glow.ts drops its session and token, so it fails once ...
    await expect(alice.count(relayA.url)).rejects.toMatchObject({ status: 401 });
    // ... and the call after that runs a fresh handshake and succeeds.
    expect(await alice.count(relayA.url)).toBe(0);
    expect(await bob.count(relayA.url)).toBe(1);
  });

  it('keeps its logs free of hpks, tokens, keys and message data', async () => {
    const logs = relayA.logs.join('\n');
    expect(logs).not.toMatch(/[A-Za-z0-9+/]{43}=/); // no full 32-byte value in base64
    expect(logs).not.toMatch(/[A-Za-z0-9+/]{32}/); // no nonce or longer base64
    expect(logs).not.toContain('hello Bob');
    expect(logs).not.toContain('via A');
  });
});
