/**
 * Mailbox between identities through the in-memory fake relay: send/receive/delete/status/count/
 * getEntropy, paging, sender filter, the statuses of received messages, and argument errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { b64 } from '@zax/protocol';
import { generateIdentity, IdentityError, Mailbox, UsageError, type CommandJson, type Identity, type RawMessage } from '../src/index.js';
import { startFakeRelay, type FakeRelay } from './support/fake-relay.js';

let relay: FakeRelay;
beforeAll(async () => {
  relay = await startFakeRelay();
});
afterAll(async () => {
  await relay.close();
});

const open = (identity: Identity, guests: Uint8Array[] = []): Mailbox => Mailbox.create({ url: relay.url, identity, guests });

describe('two identities through a relay', () => {
  it('send, count, receive (decrypted), status, delete', async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const a = open(alice, [bob.publicKey]);
    const b = open(bob, [alice.publicKey]);

    const first = await a.send(bob.publicKey, 'hi Bob');
    const second = await a.send(b64(bob.publicKey), 'second, as base64 key');
    expect(first.to).toBe(b.hpk);
    expect(await b.count()).toBe(2);

    const inbox = await b.receive();
    expect(inbox.map((m) => [m.status, m.text, m.from, m.nonce, m.kind])).toEqual([
      ['decrypted', 'hi Bob', a.hpk, first.nonce, 'message'],
      ['decrypted', 'second, as base64 key', a.hpk, second.nonce, 'message'],
    ]);
    expect(inbox[0]!.sender?.publicKeyB64).toBe(b64(alice.publicKey));

    expect(await a.messageStatus(first.token)).toBeGreaterThan(432000 - 5);
    expect(await b.delete([first.nonce!])).toBe(1);
    expect(await a.messageStatus(first.token)).toBe(-2);
    expect(await a.count()).toBe(0);
  });

  it('marks messages from unknown senders and plain messages from guests', async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const mallory = generateIdentity();
    await open(mallory).send(bob.publicKey, 'from a stranger');
    await open(alice).send(bob.publicKey, 'in the clear', { encrypt: false });
    const inbox = await open(bob, [alice.publicKey]).receive();
    expect(inbox.map((m) => [m.status, m.text, m.sender === null])).toEqual([
      ['unknown-sender', null, true],
      ['undecryptable', null, false],
    ]);
    expect(inbox[1]!.data).toBe('in the clear');
    // Not readable without Bob's key: what the relay stores is the box.
    expect(inbox[0]!.data).not.toContain('stranger');
  });

  it('receive({ from }) keeps only those senders and asks the relay to filter', async () => {
    const alice = generateIdentity();
    const carol = generateIdentity();
    const bob = generateIdentity();
    await open(alice).send(bob.publicKey, 'a1');
    await open(carol).send(bob.publicKey, 'c1');
    await open(alice).send(bob.publicKey, 'a2');
    const b = open(bob, [alice.publicKey, carol.publicKey]);
    expect((await b.receive({ from: [alice.publicKey] })).map((m) => m.text)).toEqual(['a1', 'a2']);
    expect((await b.receive({ from: [{ hpk: carol.hpk }] })).map((m) => m.text)).toEqual(['c1']);
    expect(await b.receive({ from: [] })).toEqual([]);
  });

  it('receive pages through the whole mailbox with start/count', async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const a = open(alice);
    for (let i = 0; i < 7; i++) await a.send(bob.publicKey, `m${i}`);
    const before = relay.log.length;
    const got = await open(bob, [alice.publicKey]).receive({ pageSize: 3 });
    expect(got.map((m) => m.text)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6']);
    // 3 + 3 + 1, then an empty page: a short page need not be the last (a relay's byte cap).
    expect(relay.log.slice(before).filter((l) => l.path === '/command')).toHaveLength(4);
  });

  it('deleteAll empties a mailbox of more than one page', async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const a = open(alice);
    await Promise.all(Array.from({ length: 130 }, (_, i) => a.send(bob.publicKey, `bulk ${i}`)));
    const b = open(bob);
    expect(await b.count()).toBe(130);
    expect(await b.deleteAll()).toBe(0);
    expect(await b.count()).toBe(0);
  });

  it('getEntropy returns the requested number of bytes', async () => {
    const bytes = await open(generateIdentity()).getEntropy(1000);
    expect(bytes).toHaveLength(1000);
    expect(new Set(bytes).size).toBeGreaterThan(100);
  });

  it('upload takes a raw payload (string or {nonce, ctext})', async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const nonce = b64(new Uint8Array(24).fill(9));
    const a = open(alice);
    await a.upload(bob.hpk, { nonce, ctext: 'opaque' });
    await a.upload(b64(bob.hpk), 'raw string');
    expect((await open(bob).receive()).map((m) => [m.data, m.status])).toEqual([
      ['opaque', 'unknown-sender'],
      ['raw string', 'unknown-sender'],
    ]);
    expect((await open(bob).download())[0]!.nonce).toBe(nonce);
  });
});

describe('arguments and paging edge cases (recorded transport)', () => {
  function transport(pages: (json: CommandJson) => string[] | unknown) {
    const sent: CommandJson[] = [];
    const identity = generateIdentity();
    return {
      sent,
      mailbox: new Mailbox({
        identity,
        async command(json) {
          sent.push(json);
          const out = pages(json);
          return Array.isArray(out) && out.length > 0 && out.every((x) => typeof x === 'string') ? { lines: out as string[], open: () => null } : { lines: ['n', 'c'], open: () => out };
        },
      }),
    };
  }
  const item = (i: number): RawMessage => ({ data: `d${i}`, time: 1, from: b64(new Uint8Array(32)), nonce: b64(new Uint8Array(24).fill(i)), kind: 'message' });

  it('stops paging when the relay ignores start (returns the same full page again)', async () => {
    const page = Array.from({ length: 3 }, (_, i) => item(i));
    const { mailbox, sent } = transport(() => page);
    const got = await mailbox.receive({ pageSize: 3 });
    expect(got).toHaveLength(3);
    expect(sent).toHaveLength(2);
  });

  it('keeps paging past short pages (a relay that caps answers by bytes) until an empty one', async () => {
    const all = Array.from({ length: 7 }, (_, i) => item(i));
    // Pages of at most 2 items, whatever `count` asks for.
    const { mailbox, sent } = transport((json) => all.slice(Number(json.start ?? 0), Number(json.start ?? 0) + 2));
    const got = await mailbox.receive();
    expect(got.map((m) => m.data)).toEqual(all.map((m) => m.data));
    expect(sent.map((j) => j.start)).toEqual([0, 2, 4, 6, 7]);
  });

  it('deletes in batches of at most 100 nonces', async () => {
    const { mailbox, sent } = transport(() => ['5']);
    const nonces = Array.from({ length: 250 }, (_, i) => b64(new Uint8Array(24).fill(i % 256)));
    expect(await mailbox.delete(nonces)).toBe(5);
    expect(sent.map((j) => (j.payload as string[]).length)).toEqual([100, 100, 50]);
    expect(await mailbox.delete([])).toBe(5);
    expect(sent.at(-1)).toEqual({ cmd: 'delete', payload: [] });
  });

  it('refuses to encrypt to a bare hpk, and to malformed keys', async () => {
    const { mailbox, sent } = transport(() => [b64(new Uint8Array(32))]);
    const bob = generateIdentity();
    await expect(mailbox.send({ hpk: bob.hpk }, 'x')).rejects.toThrow(UsageError);
    await expect(mailbox.send('not a key', 'x')).rejects.toThrow(IdentityError);
    await expect(mailbox.send(new Uint8Array(31), 'x')).rejects.toThrow(IdentityError);
    expect(sent).toHaveLength(0);
    const plain = await mailbox.send({ hpk: bob.hpk }, 'x', { encrypt: false });
    expect(plain).toEqual({ token: b64(new Uint8Array(32)), nonce: null, to: b64(bob.hpk) });
    expect(sent[0]).toEqual({ cmd: 'upload', to: b64(bob.hpk), payload: 'x' });
  });

  it('rejects malformed download items', async () => {
    const { mailbox } = transport(() => [{ data: 1 }]);
    await expect(mailbox.receive()).rejects.toThrow(/item 0/);
  });

  it('keeps a guest registry keyed by hpk', () => {
    const { mailbox } = transport(() => []);
    const g = generateIdentity();
    const guest = mailbox.addGuest(b64(g.publicKey), 'gina');
    expect(guest).toMatchObject({ hpk: b64(g.hpk), publicKeyB64: b64(g.publicKey), name: 'gina' });
    expect(mailbox.guestByHpk(b64(g.hpk))).toBe(guest);
    expect(mailbox.removeGuest(g.publicKey)).toBe(true);
    expect(mailbox.guests).toEqual([]);
  });
});
