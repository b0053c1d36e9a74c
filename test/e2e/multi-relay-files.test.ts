/**
 * Files through several relays (@zax/client `MultiMailbox.sendFile` / `receiveFile`) against three
 * independent relays, each its own core and gatekeeper processes and its own redis-server. With
 * k = 2, a multi-chunk file is uploaded once per chosen relay from one reading of the source and
 * listed once; when one of the two relays is killed (SIGKILL of its core and gatekeeper) in the
 * middle of an upload, the send completes through the other and reports the dead one; when the
 * relay a download comes from is killed mid-download, the recipient goes on from the other.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateIdentity, Mailbox, MultiMailbox, RelayNetworkError, type FileProgress, type Identity } from '@zax/client';
import { testTopology } from '../support/store-server.js';
import { killRelay as kill, reviveRelay as revive, startIndependentRelays, type IndependentRelays } from '../support/independent-relays.js';

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

const SIZE = 600_000;
const CHUNK = 16_384; // 37 parts
const PARTS = Math.ceil(SIZE / CHUNK);
/** Short retries: a dead relay is given up on in well under a second. */
const retry = { retries: 2, baseDelayMs: 50 };
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const relayAt = (url: string) => three.at(url);


function pair(): { alice: Identity; bob: Identity; a: MultiMailbox; b: MultiMailbox } {
  const alice = generateIdentity();
  const bob = generateIdentity();
  const a = new MultiMailbox({ urls, k: 2, identity: alice, guests: [bob.publicKey] });
  const b = new MultiMailbox({ urls: [...urls].reverse(), k: 2, identity: bob, guests: [alice.publicKey] });
  return { alice, bob, a, b };
}

/** `bytes` as a stream of `piece`-byte pieces that runs `hook(i)` before piece i. */
async function* pieces(bytes: Uint8Array, piece: number, hook: (i: number) => Promise<void> = async () => undefined): AsyncGenerator<Uint8Array> {
  for (let i = 0, at = 0; at < bytes.length; i++, at += piece) {
    await hook(i);
    yield bytes.slice(at, at + piece);
  }
}

// Each relay has its own single redis-server, whatever ZAX_TEST_TOPOLOGY says: a topology run
// (pnpm test:topologies) would repeat the same test, so it runs in the default run only.
describe.skipIf(testTopology() !== 'single')('files through three independent relays, k = 2', () => {
  it('sends a multi-chunk file through both chosen relays; the recipient lists it once and receives it whole', async () => {
    const { bob, a, b } = pair();
    const [first, second] = b.ownRelays as [string, string];
    const third = urls.find((u) => u !== first && u !== second)!;
    const file = new Uint8Array(randomBytes(SIZE));
    const progress: FileProgress[] = [];
    const sent = await a.sendFile(bob.publicKey, pieces(file, 50_000), { size: SIZE, chunkSize: CHUNK, name: 'big.bin', retry, onProgress: (p) => progress.push(p) });
    expect(sent.failures).toEqual([]);
    expect([sent.size, sent.chunkSize, sent.chunks]).toEqual([SIZE, CHUNK, PARTS]);
    expect(sent.relays.map((r) => r.url)).toEqual([first, second]);
    expect(sent.uploads[0]!.uploadID).not.toBe(sent.uploads[1]!.uploadID);
    expect(progress).toHaveLength(PARTS);
    expect(progress.at(-1)).toEqual({ bytes: SIZE, totalBytes: SIZE, chunks: PARTS, totalChunks: PARTS });
    // The storage token is h2(to ‖ nonce): one metadata nonce, so the same token from both relays.
    const tokens = sent.relays.map((r) => ('token' in r ? r.token : null));
    expect(tokens[1]).toBe(tokens[0]);
    expect(await Mailbox.create({ url: third, identity: bob }).count()).toBe(0);

    const status = await a.fileStatus(sent);
    expect(status.relays.map((r) => ('status' in r ? [r.status.status, r.status.file_size, r.status.total_chunks] : r.error))).toEqual([
      ['COMPLETE', SIZE, PARTS],
      ['COMPLETE', SIZE, PARTS],
    ]);

    const got = await b.receive();
    expect(got.failures).toEqual([]);
    expect(got.messages).toHaveLength(1);
    const m = got.messages[0]!;
    expect([m.kind, m.nonce, m.file?.name, m.file?.orig_size]).toEqual(['file', sent.nonce, 'big.bin', SIZE]);
    expect(m.relays).toEqual([first, second]);
    expect(m.uploads).toEqual(sent.uploads);
    const r = await b.receiveFile(m, { retry });
    expect(sha256(r.bytes!)).toBe(sha256(file));
    expect([r.url, r.failures]).toEqual([first, []]);

    expect((await b.deleteFile(m)).relays).toEqual(sent.uploads.map((u) => ({ ...u, deleted: true })));
    expect((await b.delete([m.nonce])).failures).toEqual([]);
    expect((await b.receive()).messages).toEqual([]);
  });

  it('completes through the other relay when one of the two is killed mid-upload, and reports it; the recipient gets the file once', async () => {
    const { bob, a, b } = pair();
    const [victimUrl, survivor] = b.ownRelays as [string, string];
    const victim = relayAt(victimUrl);
    const file = new Uint8Array(randomBytes(SIZE));
    let killedAt = -1;
    const progress: FileProgress[] = [];
    const sent = await a.sendFile(
      bob.publicKey,
      // After 10 chunks' worth of the source has been read, the victim dies: for real, both processes.
      pieces(file, CHUNK, async (i) => {
        if (i === 10) {
          killedAt = progress.length;
          await kill(victim);
        }
      }),
      { size: SIZE, chunkSize: CHUNK, window: 3, retry, onProgress: (p) => progress.push(p) },
    );
    expect(killedAt).toBeGreaterThan(0);
    expect(killedAt).toBeLessThan(PARTS);
    expect(sent.chunks).toBe(PARTS);
    expect(sent.relays.map((r) => r.url)).toEqual([victimUrl, survivor]);
    expect(sent.failures.map((f) => [f.url, f.uploadID])).toEqual([[victimUrl, sent.uploads[0]!.uploadID]]);
    expect(sent.failures[0]!.error).toBeInstanceOf(RelayNetworkError);
    expect(sent.relays[1]).toEqual({ url: survivor, uploadID: sent.uploads[1]!.uploadID, token: expect.any(String) });
    expect(progress.at(-1)).toEqual({ bytes: SIZE, totalBytes: SIZE, chunks: PARTS, totalChunks: PARTS });

    // While the victim is down: listed once, from the survivor, received whole.
    const during = await b.receive();
    expect(during.failures.map((f) => f.url)).toEqual([victimUrl]);
    expect(during.messages).toHaveLength(1);
    expect(during.messages[0]!.uploads).toEqual([sent.uploads[1]]);
    const r = await b.receiveFile(during.messages[0]!, { retry });
    expect(sha256(r.bytes!)).toBe(sha256(file));
    expect(r.url).toBe(survivor);

    // The victim comes back with its partial upload: the file is still listed once, and the
    // complete copy is the one downloaded.
    await revive(victim);
    const after = await b.receive();
    expect(after.failures).toEqual([]);
    expect(after.messages).toHaveLength(1);
    const m = after.messages[0]!;
    expect(m.relays).toEqual([victimUrl, survivor]);
    expect(m.uploads).toEqual(sent.uploads);
    const st = await b.fileStatus(m);
    expect(st.relays.map((x) => ('status' in x ? x.status.status : x.error))).toEqual(['UPLOADING', 'COMPLETE']);
    const again = await b.receiveFile(m, { retry });
    expect(sha256(again.bytes!)).toBe(sha256(file));
    expect([again.url, again.failures]).toEqual([survivor, []]);
    expect((await b.deleteFile(m)).relays.map((x) => ('deleted' in x ? x.deleted : x.error))).toEqual([true, true]);
    await b.deleteAll();
  });

  it('goes on from the other relay when the one it downloads from is killed mid-download, delivering each byte once', async () => {
    const { bob, a, b } = pair();
    const file = new Uint8Array(randomBytes(SIZE));
    const sent = await a.sendFile(bob.publicKey, file, { chunkSize: CHUNK, retry });
    expect(sent.failures).toEqual([]);
    const [m] = (await b.receive()).messages;
    const [firstUrl, second] = b.ownRelays as [string, string];
    const first = relayAt(firstUrl);

    const out: Uint8Array[] = [];
    let delivered = 0;
    let killing: Promise<void> | null = null;
    const r = await b.receiveFile(m!, {
      retry,
      window: 2,
      sink: async (c) => {
        out.push(c.slice());
        delivered += c.length;
        if (killing === null && delivered >= 8 * CHUNK) await (killing = kill(first));
      },
    });
    expect(killing).not.toBeNull();
    expect([r.url, r.failures.map((f) => f.url)]).toEqual([second, [firstUrl]]);
    expect(r.failures[0]!.error).toBeInstanceOf(RelayNetworkError);
    const whole = Buffer.concat(out);
    expect(whole.length).toBe(SIZE);
    expect(sha256(whole)).toBe(sha256(file));

    await revive(first);
    await b.deleteFile(m!);
    await b.deleteAll();
  });
});
