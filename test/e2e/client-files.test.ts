/**
 * File transfer with @zax/client against real processes (Redis, core, gatekeeper): @zax/client →
 * glow.ts and glow.ts → @zax/client, from bytes, a Node Readable and a web ReadableStream, into a
 * function sink and a WritableStream; progress; an upload interrupted and resumed from its
 * checkpoint; a 503 with Retry-After on a chunk, retried.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { FileTransferError, generateIdentity, Mailbox, type FetchLike, type FileProgress, type FileUploadCheckpoint, type Identity } from '@zax/client';
import { Relay } from '../support/relay.js';
import { loadGlow } from '../support/glow.js';

const glow = loadGlow();
type GlowMailbox = Awaited<ReturnType<typeof glow.Mailbox.new>>;

let relay: Relay;
const glowOpen: GlowMailbox[] = [];

beforeAll(async () => {
  relay = await Relay.start({ redisUrl: inject('redisUrl') });
});
afterAll(async () => {
  for (const m of glowOpen) m.clearSession(relay.url);
  await relay?.stop();
});

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const SIZE = 1_300_000;
const CHUNK = 65_536; // 20 parts

function pair(): { a: Identity; b: Identity; alice: Mailbox; bob: Mailbox } {
  const a = generateIdentity();
  const b = generateIdentity();
  return { a, b, alice: Mailbox.create({ url: relay.url, identity: a, guests: [b.publicKey] }), bob: Mailbox.create({ url: relay.url, identity: b, guests: [a.publicKey] }) };
}

/** `bytes` as a Node Readable in pieces of uneven sizes. */
function nodeReadable(bytes: Uint8Array): Readable {
  const pieces: Buffer[] = [];
  for (let i = 0, n = 1; i < bytes.length; i += n, n = (n * 7 + 1013) % 90_001) pieces.push(Buffer.from(bytes.subarray(i, i + n)));
  return Readable.from(pieces);
}

function webStream(bytes: Uint8Array, piece: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.slice(at, at + piece));
      at += piece;
    },
  });
}

async function glowMailbox(peer: Identity): Promise<GlowMailbox> {
  const g = await glow.Mailbox.new(`files-${Math.random().toString(36).slice(2)}`);
  glowOpen.push(g);
  await g.keyRing.addGuest('zax', b64(peer.publicKey));
  return g;
}

describe('@zax/client ↔ glow.ts file transfer', () => {
  it('glow.ts receives a multi-chunk file sent by @zax/client', async () => {
    const z = generateIdentity();
    const g = await glowMailbox(z);
    const zm = Mailbox.create({ url: relay.url, identity: z });
    const file = randomBytes(SIZE);
    const sent = await zm.sendFile(g.keyRing.getPubCommKey(), file, { name: 'photo.jpg', chunkSize: CHUNK, metadata: { modified: 1_700_000_000_000, attrs: 'rw' } });
    expect(sent).toMatchObject({ size: SIZE, chunks: 20, name: 'photo.jpg' });

    const [msg] = await g.download(relay.url);
    expect(msg).toMatchObject({ kind: 'file', senderTag: 'zax', uploadID: sent.uploadID, nonce: sent.nonce });
    const meta = (msg as { data: { name: string; orig_size: number; skey: string; modified: number } }).data;
    expect(meta).toMatchObject({ name: 'photo.jpg', orig_size: SIZE, modified: 1_700_000_000_000, attrs: 'rw' });
    const status = await g.getFileStatus(relay.url, sent.uploadID);
    expect(status).toEqual({ status: 'COMPLETE', file_size: SIZE, bytes_stored: SIZE + 16 * 20, total_chunks: 20 });
    const parts: Uint8Array[] = [];
    for (let i = 0; i < status.total_chunks; i++) parts.push((await g.downloadFileChunk(relay.url, sent.uploadID, i, meta.skey))!);
    expect(sha256(Buffer.concat(parts))).toBe(sha256(file));
  });

  it('@zax/client receives a multi-chunk file sent by glow.ts, into a WritableStream', async () => {
    const z = generateIdentity();
    const g = await glowMailbox(z);
    const zm = Mailbox.create({ url: relay.url, identity: z, guests: [g.keyRing.getPubCommKey()] });
    const file = randomBytes(SIZE);
    const started = await g.startFileUpload(relay.url, 'zax', { name: 'from-glow.bin', orig_size: SIZE, created: 1_600_000_000_000 });
    const n = Math.ceil(SIZE / CHUNK);
    for (let i = 0; i < n; i++) await g.uploadFileChunk(relay.url, started.uploadID, file.subarray(i * CHUNK, (i + 1) * CHUNK), i, n, started.skey);

    const [msg] = await zm.receive();
    expect(msg).toMatchObject({ kind: 'file', status: 'decrypted', uploadID: started.uploadID });
    expect(msg!.file).toMatchObject({ name: 'from-glow.bin', orig_size: SIZE, created: 1_600_000_000_000 });
    const hash = createHash('sha256');
    let count = 0;
    const got = await zm.receiveFile(msg!, {
      sink: new WritableStream<Uint8Array>({
        write(chunk) {
          hash.update(chunk);
          count++;
        },
      }),
    });
    expect(got).toMatchObject({ name: 'from-glow.bin', size: SIZE });
    expect(got.bytes).toBeUndefined();
    expect(count).toBe(n);
    expect(hash.digest('hex')).toBe(sha256(file));
    expect(await zm.deleteFile(started.uploadID)).toBe(true);
    expect((await zm.fileStatus(started.uploadID)).status).toBe('NOT_FOUND');
  });
});

describe('@zax/client → @zax/client', () => {
  it('sends from a Node Readable and a web ReadableStream; progress is monotone and ends at the total', async () => {
    const { b, alice, bob } = pair();
    const file = randomBytes(SIZE);
    const seen: FileProgress[] = [];
    const fromNode = await alice.sendFile(b.publicKey, nodeReadable(file), { size: SIZE, chunkSize: CHUNK, window: 3, name: 'a.bin', onProgress: (p) => seen.push(p) });
    const fromWeb = await alice.sendFile(b.publicKey, webStream(file, 10_000), { size: SIZE, chunkSize: 100_000, name: 'b.bin' });
    expect(seen.map((p) => p.bytes)).toEqual([...seen.map((p) => p.bytes)].sort((x, y) => x - y));
    expect(seen.at(-1)).toEqual({ bytes: SIZE, totalBytes: SIZE, chunks: 20, totalChunks: 20 });
    expect(fromWeb.chunks).toBe(13);

    const inbox = await bob.receive();
    expect(inbox.map((m) => m.file?.name)).toEqual(['a.bin', 'b.bin']);
    for (const m of inbox) {
      const recv: FileProgress[] = [];
      const got = await bob.receiveFile(m, { onProgress: (p) => recv.push(p), window: 2 });
      expect(sha256(got.bytes!)).toBe(sha256(file));
      expect(recv.at(-1)!.bytes).toBe(SIZE);
    }
    expect(fromNode.uploadID).not.toBe(fromWeb.uploadID);
  });

  it('resumes an interrupted upload from its checkpoint; the recipient gets identical bytes', async () => {
    const { b, alice, bob } = pair();
    const file = randomBytes(SIZE);
    const stop = new AbortController();
    let checkpoint: FileUploadCheckpoint | null = null;
    const first = alice.sendFile(b.publicKey, nodeReadable(file), {
      size: SIZE,
      chunkSize: CHUNK,
      signal: stop.signal,
      onCheckpoint: (cp) => (checkpoint = JSON.parse(JSON.stringify(cp)) as FileUploadCheckpoint),
      onProgress: (p) => {
        if (p.chunks >= 7) stop.abort();
      },
    });
    await expect(first).rejects.toMatchObject({ name: 'FileTransferError', code: 'aborted' });
    const cp = checkpoint!;
    expect(cp.nextPart).toBeGreaterThanOrEqual(7);
    expect(cp.nextPart).toBeLessThan(20);
    expect((await alice.fileStatus(cp.uploadID)).status).toBe('UPLOADING');
    // The receiver sees an upload that is not finished.
    const [pending] = await bob.receive();
    await expect(bob.receiveFile(pending!)).rejects.toMatchObject({ code: 'incomplete' });

    // Resume from a source that starts at the first chunk not acknowledged.
    const offset = cp.nextPart * cp.chunkSize;
    const sent = await alice.sendFile(b.publicKey, webStream(file.subarray(offset), 50_000), { resume: cp, sourceOffset: offset });
    expect(sent).toMatchObject({ uploadID: cp.uploadID, chunks: 20, size: SIZE });
    const got = await bob.receiveFile(pending!);
    expect(sha256(got.bytes!)).toBe(sha256(file));

    // Resuming an upload that is gone fails clearly.
    await alice.deleteFile(cp.uploadID);
    await expect(alice.sendFile(b.publicKey, file, { resume: cp })).rejects.toMatchObject({ code: 'not-found' });
    await expect(bob.receiveFile(pending!)).rejects.toBeInstanceOf(FileTransferError);
  });

  it('retries a chunk the relay answers 503 with Retry-After', async () => {
    const a = generateIdentity();
    const b = generateIdentity();
    let commands = 0;
    const injected: number[] = [];
    // The 4th /command (startFileUpload, then chunks) gets a 503 with Retry-After: 1, once.
    const flaky: FetchLike = (url, init) => {
      if (url.endsWith('/command') && ++commands === 4) {
        injected.push(Date.now());
        return Promise.resolve(new Response(null, { status: 503, headers: { 'retry-after': '1', 'x-error-details': 'Relay is busy. Try again later.' } }));
      }
      return fetch(url, init);
    };
    const alice = Mailbox.create({ url: relay.url, identity: a, fetch: flaky });
    const file = randomBytes(300_000);
    const sent = await alice.sendFile(b.publicKey, file, { chunkSize: 50_000, window: 1, retry: { retries: 2, baseDelayMs: 50 } });
    const done = Date.now();
    expect(injected).toHaveLength(1);
    expect(done - injected[0]!).toBeGreaterThanOrEqual(1000);
    const bob = Mailbox.create({ url: relay.url, identity: b, guests: [a.publicKey] });
    const [m] = await bob.receive();
    expect(sha256((await bob.receiveFile(m!)).bytes!)).toBe(sha256(file));
    expect(sent.chunks).toBe(6);
  });

  it('refuses a stream shorter or longer than its declared size, and never marks it COMPLETE', async () => {
    const { b, alice } = pair();
    const file = randomBytes(200_000);
    await expect(alice.sendFile(b.publicKey, Readable.from([file]), { size: 250_000, chunkSize: 50_000 })).rejects.toMatchObject({ code: 'size' });
    let last: FileUploadCheckpoint | null = null;
    const long = alice.sendFile(b.publicKey, Readable.from([file]), { size: 150_000, chunkSize: 50_000, onCheckpoint: (cp) => (last = cp) });
    await expect(long).rejects.toMatchObject({ code: 'size' });
    expect((await alice.fileStatus(last!.uploadID)).status).not.toBe('COMPLETE');
  });
});
