/**
 * End to end with @zax/client and the zax CLI against real processes (Redis, core, gatekeeper),
 * including @zax/client ↔ glow.ts in both directions through one relay.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Mailbox, RelaySession, generateIdentity } from '@zax/client';
import { Relay } from '../support/relay.js';
import { loadGlow } from '../support/glow.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../packages/client/dist/cli.js', import.meta.url));
const glow = loadGlow();

let relay: Relay;
let relay2: Relay;
const glowOpen: Array<{ clearSession(u: string): void }> = [];

beforeAll(async () => {
  const redisUrl = inject('redisUrl');
  [relay, relay2] = await Promise.all([Relay.start({ redisUrl }), Relay.start({ redisUrl, env: { DIFFICULTY: '6' } })]);
});
afterAll(async () => {
  for (const m of glowOpen) {
    m.clearSession(relay.url);
    m.clearSession(relay2.url);
  }
  await Promise.all([relay?.stop(), relay2?.stop()]);
});

describe('@zax/client', () => {
  it('send, receive, status and delete between two identities', async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const a = Mailbox.create({ url: relay.url, identity: alice, guests: [bob.publicKey] });
    const b = Mailbox.create({ url: relay.url + '/', identity: bob, guests: [alice.publicKey] });
    const sentAt = Date.now();
    const { token } = await a.send(bob.publicKey, 'hello from alice');
    await a.send({ hpk: bob.hpk }, 'in the clear', { encrypt: false });
    expect(await b.count()).toBe(2);
    const got = await b.receive();
    expect(got.map((m) => m.text ?? m.data)).toEqual(['hello from alice', 'in the clear']);
    expect(got[0]!.status).toBe('decrypted');
    const ttl = await a.messageStatus(token);
    // The message lifetime less at most the time since it was sent (measured here: any speed will do).
    expect(ttl).toBeGreaterThanOrEqual(432000 - Math.ceil((Date.now() - sentAt) / 1000));
    expect(ttl).toBeLessThanOrEqual(432000);
    expect(await b.delete([got[0]!.nonce])).toBe(1);
    expect(await a.messageStatus(token)).toBe(-2);
    expect((await a.getEntropy(64)).length).toBe(64);
  });

  it('pages through more than 100 messages', async () => {
    const alice = generateIdentity();
    const a = Mailbox.create({ url: relay.url, identity: alice, guests: [alice.publicKey] });
    for (let i = 0; i < 130; i += 10) await Promise.all(Array.from({ length: 10 }, (_, j) => a.send(alice.publicKey, `m${i + j}`)));
    const all = await a.receive();
    expect(all).toHaveLength(130);
    expect(new Set(all.map((m) => m.text)).size).toBe(130);
  });

  it('solves proof of work at a relay with difficulty 6', async () => {
    const s = new RelaySession({ url: relay2.url, identity: generateIdentity() });
    expect(await s.connect()).toBe(0);
  });

  it('re-handshakes by itself when its session is replaced (401)', async () => {
    const id = generateIdentity();
    const first = new RelaySession({ url: relay.url, identity: id });
    await first.connect();
    const second = new RelaySession({ url: relay.url, identity: id });
    await second.connect();
    expect(first.handshakes).toBe(1);
    const res = await first.command({ cmd: 'count' });
    expect(res.open()).toBe(0);
    expect(first.handshakes).toBe(2);
  });
});

describe('@zax/client and glow.ts through one relay', () => {
  it('glow.ts reads what @zax/client sends, and the other way round', async () => {
    const g = await glow.Mailbox.new(`glow-${Date.now()}`);
    glowOpen.push(g);
    const z = generateIdentity();
    await g.keyRing.addGuest('zax', Buffer.from(z.publicKey).toString('base64'));
    const zm = Mailbox.create({ url: relay.url, identity: z, guests: [g.keyRing.getPubCommKey()] });

    await zm.send(g.keyRing.getPubCommKey(), 'to glow ✓');
    const [m] = await g.download(relay.url);
    expect(m).toMatchObject({ kind: 'message', senderTag: 'zax', data: 'to glow ✓' });

    await g.upload(relay.url, 'zax', 'to zax ✓');
    const [r] = await zm.receive();
    expect(r!.status).toBe('decrypted');
    expect(r!.text).toBe('to zax ✓');
    expect(await zm.delete([r!.nonce])).toBe(0);
  });
});

describe('zax CLI', () => {
  it('keygen, send, inbox, status and delete', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zax-cli-'));
    try {
      const a = join(dir, 'a.json');
      const b = join(dir, 'b.json');
      await run(process.execPath, [CLI, 'keygen', '--out', a]);
      const kb = await run(process.execPath, [CLI, 'keygen', '--out', b]);
      const bPub = /[A-Za-z0-9+/]{43}=/.exec(kb.stdout)![0];
      const { stdout: sent } = await run(process.execPath, [CLI, 'send', '--relay', relay.url, '--id', a, '--to', bPub, 'hi via cli']);
      expect(sent).toMatch(/[A-Za-z0-9+/]{43}=/);
      const { stdout: inbox } = await run(process.execPath, [CLI, 'inbox', '--relay', relay.url, '--id', b, '--json']);
      const items = JSON.parse(inbox);
      expect(items).toHaveLength(1);
      await run(process.execPath, [CLI, 'delete', '--relay', relay.url, '--id', b, '--all']);
      const { stdout: after } = await run(process.execPath, [CLI, 'inbox', '--relay', relay.url, '--id', b, '--json']);
      expect(JSON.parse(after)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
