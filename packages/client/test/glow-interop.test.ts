/**
 * Message-format interoperability with the published glow.ts 1.1.2: what our Mailbox sends, glow.ts
 * reads with its own code, and the other way round. First offline (glow.ts's upload/download with
 * the relay calls stubbed), then through the in-memory fake relay over HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { b64, nonceTimestamp, tweetnaclCrypto } from '@zax/protocol';
import { generateIdentity, Mailbox, type CommandJson, type CommandResponse, type Identity } from '../src/index.js';
import { glowId, loadGlow } from './support/glow.js';
import { startFakeRelay, type FakeRelay } from './support/fake-relay.js';

type Glow = Awaited<ReturnType<typeof loadGlow>>;
// glow.ts internals (private in its .d.ts, plain methods at run time) that the offline tests stub.
type GlowMailboxInternals = {
  prepareRelay(url: string): Promise<unknown>;
  runRelayCommand(relay: unknown, cmd: string, params?: Record<string, unknown>, line4?: string): Promise<string[]>;
  decryptResponse(relay: unknown, lines: string[]): Promise<unknown>;
  encodeMessage(guestTag: string, text: string): Promise<{ nonce: string; ctext: string }>;
  decodeMessage(guestTag: string, nonce: string, ctext: string): Promise<string | null>;
};

const TEXT = 'Hello from the other side: ünïcødé, 中文, emoji 🎉, quotes "x", newline\nend';

/** A transport that records commands and answers `upload` with a token. */
function recordingTransport(identity: Identity): { relay: { identity: Identity; command(json: CommandJson): Promise<CommandResponse> }; sent: CommandJson[] } {
  const sent: CommandJson[] = [];
  return {
    sent,
    relay: {
      identity,
      async command(json) {
        sent.push(json);
        return { lines: [b64(new Uint8Array(32))], open: () => null };
      },
    },
  };
}

let glow: Glow;
beforeAll(async () => {
  glow = await loadGlow();
});

async function glowMailbox(identity: Identity, guests: Record<string, Uint8Array>) {
  const mb = await glow.Mailbox.fromSecKey(glowId('mb'), b64(identity.secretKey));
  for (const [tag, pk] of Object.entries(guests)) await mb.keyRing.addGuest(tag, b64(pk));
  return mb;
}

describe('offline: our Mailbox → glow.ts', () => {
  it('glow.ts download decrypts an encrypted message we send, with the sender as its guest tag', async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const { relay, sent } = recordingTransport(alice);
    const result = await new Mailbox(relay).send(bob.publicKey, TEXT);

    // The wire payload is exactly glow.ts's {nonce, ctext}, sent to Bob's hpk.
    expect(sent).toHaveLength(1);
    const cmd = sent[0]!;
    expect(Object.keys(cmd)).toEqual(['cmd', 'to', 'payload']);
    const payload = cmd.payload as { nonce: string; ctext: string };
    expect(Object.keys(payload)).toEqual(['nonce', 'ctext']);
    expect(result.nonce).toBe(payload.nonce);

    const bobGlow = await glowMailbox(bob, { alice: alice.publicKey });
    expect(cmd.to).toBe(await bobGlow.keyRing.getHpk());
    // glow.ts's own parsing, fed the item a relay would store for this upload.
    const internals = bobGlow as unknown as GlowMailboxInternals;
    const aliceHpk = b64(alice.hpk);
    internals.prepareRelay = async () => ({});
    internals.runRelayCommand = async () => [];
    internals.decryptResponse = async () => [{ data: payload.ctext, time: 1700000000, from: aliceHpk, nonce: payload.nonce, kind: 'message' }];
    const [msg] = await bobGlow.download('http://unused');
    expect(msg).toMatchObject({ data: TEXT, senderTag: 'alice', nonce: payload.nonce, kind: 'message' });
  });

  it('our nonce is glow.ts-shaped: 24 bytes, big-endian seconds first', async () => {
    const { relay, sent } = recordingTransport(generateIdentity());
    await new Mailbox(relay).send(generateIdentity().publicKey, 'x');
    const nonce = Buffer.from((sent[0]!.payload as { nonce: string }).nonce, 'base64');
    expect(nonce).toHaveLength(24);
    expect(Math.abs(nonceTimestamp(nonce) - Date.now() / 1000)).toBeLessThan(5);
  });

  it('a plain message we send is the bare string payload glow.ts sends with encrypt = false', async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const ours = recordingTransport(alice);
    await new Mailbox(ours.relay).send(bob.publicKey, 'plain text', { encrypt: false });

    const aliceGlow = await glowMailbox(alice, { bob: bob.publicKey });
    let glowParams: Record<string, unknown> | undefined;
    const internals = aliceGlow as unknown as GlowMailboxInternals;
    internals.prepareRelay = async () => ({});
    internals.runRelayCommand = async (_r, _cmd, params) => {
      glowParams = params;
      return ['token'];
    };
    await aliceGlow.upload('http://unused', 'bob', 'plain text', false);
    expect(ours.sent[0]).toEqual({ cmd: 'upload', ...glowParams });
  });
});

describe('offline: glow.ts → our Mailbox', () => {
  it('we decrypt what glow.ts Mailbox.upload sends to a guest', async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const aliceGlow = await glowMailbox(alice, { bob: bob.publicKey });
    const internals = aliceGlow as unknown as GlowMailboxInternals;
    let captured: { cmd: string; params: Record<string, unknown> } | undefined;
    internals.prepareRelay = async () => ({});
    internals.runRelayCommand = async (_r, cmd, params) => {
      captured = { cmd, params: params! };
      return ['token'];
    };
    await aliceGlow.upload('http://unused', 'bob', TEXT);
    expect(captured!.cmd).toBe('upload');
    const { to, payload } = captured!.params as { to: string; payload: { nonce: string; ctext: string } };

    const bobMailbox = new Mailbox(recordingTransport(bob).relay, { guests: [alice.publicKey] });
    expect(to).toBe(bobMailbox.hpk);
    const got = bobMailbox.openItem({ data: payload.ctext, nonce: payload.nonce, from: b64(alice.hpk), time: 1700000000, kind: 'message' });
    expect(got).toMatchObject({ status: 'decrypted', text: TEXT });
    expect(got.sender?.publicKeyB64).toBe(b64(alice.publicKey));
  });

  it('the box is crypto_box(UTF-8 text, nonce, recipient comm pk, sender comm sk), no JSON inside', async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const aliceGlow = (await glowMailbox(alice, { bob: bob.publicKey })) as unknown as GlowMailboxInternals;
    const { nonce, ctext } = await aliceGlow.encodeMessage('bob', TEXT);
    const plain = tweetnaclCrypto.boxOpen(Buffer.from(ctext, 'base64'), Buffer.from(nonce, 'base64'), alice.publicKey, bob.secretKey);
    expect(Buffer.from(plain!).toString('utf8')).toBe(TEXT);
  });

  it('we open a glow.ts file message (data = {ctext, nonce, uploadID}) to its metadata', async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const aliceGlow = (await glowMailbox(alice, { bob: bob.publicKey })) as unknown as GlowMailboxInternals;
    const metadata = { name: 'a.txt', orig_size: 11, skey: 'k' };
    const enc = await aliceGlow.encodeMessage('bob', JSON.stringify(metadata));
    const uploadID = b64(new Uint8Array(32).fill(7));
    const data = JSON.stringify({ ctext: enc.ctext, nonce: enc.nonce, uploadID });
    const got = new Mailbox(recordingTransport(bob).relay, { guests: [alice.publicKey] }).openItem({ data, nonce: enc.nonce, from: b64(alice.hpk), time: 1, kind: 'file' });
    expect(got.status).toBe('decrypted');
    expect(got.uploadID).toBe(uploadID);
    expect(JSON.parse(got.text!)).toEqual(metadata);
  });

  it('marks a glow.ts plain message from a guest as undecryptable and keeps its data', async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const got = new Mailbox(recordingTransport(bob).relay, { guests: [alice.publicKey] }).openItem({ data: 'just text', nonce: b64(new Uint8Array(24)), from: b64(alice.hpk), time: 1, kind: 'message' });
    expect(got).toMatchObject({ status: 'undecryptable', text: null, data: 'just text' });
  });
});

describe('through a relay over HTTP: our client ⇄ glow.ts', () => {
  let relay: FakeRelay;
  beforeAll(async () => {
    relay = await startFakeRelay();
  });
  afterAll(async () => {
    await relay.close();
  });

  it('exchanges encrypted messages both ways, and glow.ts deletes what it read', async () => {
    const alice = generateIdentity(); // our client
    const bob = generateIdentity(); // glow.ts
    const aliceBox = Mailbox.create({ url: relay.url, identity: alice, guests: [bob.publicKey] });
    const bobGlow = await glowMailbox(bob, { alice: alice.publicKey });
    // glow.ts with a trailing slash: it then posts to "//command", which a relay must accept.
    const bobUrl = `${relay.url}/`;
    try {
      const sent = await aliceBox.send(bob.publicKey, TEXT);
      const inbox = await bobGlow.download(bobUrl);
      expect(inbox).toEqual([expect.objectContaining({ data: TEXT, senderTag: 'alice', nonce: sent.nonce, kind: 'message' })]);

      const token = await bobGlow.upload(bobUrl, 'alice', 'reply from glow.ts ✓');
      const received = await aliceBox.receive();
      expect(received.map((m) => [m.status, m.text])).toEqual([['decrypted', 'reply from glow.ts ✓']]);
      expect(await aliceBox.messageStatus(token)).toBeGreaterThan(0);

      expect(await bobGlow.delete(bobUrl, [sent.nonce!])).toBe(0);
      expect(await aliceBox.messageStatus(sent.token)).toBe(-2);
    } finally {
      (bobGlow as unknown as { clearSession(url: string): void }).clearSession(bobUrl);
    }
  });
});
