/**
 * File transfer end to end with the published glow.ts client: Redis, the core and the gatekeeper
 * run as real processes; glow.ts sends a file of random size in random chunk sizes from one mailbox
 * to another, the recipient checks its status and metadata and downloads it byte-identical, and a
 * deleteFile removes it for both.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { Relay } from '../support/relay.js';
import { loadGlow } from '../support/glow.js';

const glow = loadGlow();
type Mailbox = Awaited<ReturnType<typeof glow.Mailbox.new>>;

let relay: Relay;
const opened: Mailbox[] = [];

async function mailbox(name: string): Promise<Mailbox> {
  const m = await glow.Mailbox.new(`${name}-${Math.random().toString(36).slice(2)}`);
  opened.push(m);
  return m;
}

beforeAll(async () => {
  relay = await Relay.start({ redisUrl: inject('redisUrl') });
});

afterAll(async () => {
  for (const m of opened) m.clearSession(relay.url); // glow.ts keeps timers running otherwise
  await relay?.stop();
});

/** Random chunk sizes that add up to `total`; a glow.ts chunk grows by 16 bytes when boxed. */
function randomChunkSizes(total: number, maxPlain: number): number[] {
  const sizes: number[] = [];
  for (let left = total; left > 0; ) {
    const n = Math.min(left, randomInt(1, maxPlain + 1));
    sizes.push(n);
    left -= n;
  }
  return sizes;
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('glow.ts file transfer through the relay', () => {
  it('uploads a random file in random chunks; the recipient downloads it byte-identical; deleteFile removes it for both', async () => {
    const alice = await mailbox('alice');
    const bob = await mailbox('bob');
    await alice.keyRing.addGuest('Bob', bob.keyRing.getPubCommKey());
    await bob.keyRing.addGuest('Alice', alice.keyRing.getPubCommKey());
    const url = relay.url;

    const size = randomInt(1, 1_500_000);
    const file = randomBytes(size);
    const metadata = { name: 'random.bin', orig_size: size, created: 1_700_000_000_000, modified: 1_700_000_000_000, attrs: 'rw' };
    const started = await alice.startFileUpload(url, 'Bob', { ...metadata });
    expect(started.max_chunk_size).toBe(512000);
    expect(started.uploadID).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(started.storage_token).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    const uploadID = started.uploadID;
    expect(await bob.getFileStatus(url, uploadID)).toEqual({ status: 'START', file_size: size, bytes_stored: 0, total_chunks: 0 });

    // Random plaintext chunk sizes up to what fits max_chunk_size once boxed; parts sent out of order.
    const sizes = randomChunkSizes(size, started.max_chunk_size - 16);
    const offsets = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
    const order = sizes.map((_, i) => i).sort(() => Math.random() - 0.5);
    for (const i of order) {
      const chunk = file.subarray(offsets[i]!, offsets[i]! + sizes[i]!);
      expect(await alice.uploadFileChunk(url, uploadID, chunk, i, sizes.length, started.skey)).toEqual({ status: 'OK' });
    }

    for (const m of [alice, bob]) {
      expect(await m.getFileStatus(url, uploadID)).toEqual({ status: 'COMPLETE', file_size: size, bytes_stored: size + 16 * sizes.length, total_chunks: sizes.length });
    }
    const meta = await bob.getFileMetadata(url, uploadID);
    expect(meta).toMatchObject(metadata);
    expect(typeof meta.skey).toBe('string');
    const [message] = await bob.download(url);
    expect(message).toMatchObject({ kind: 'file', senderTag: 'Alice', uploadID });

    const parts: Uint8Array[] = [];
    for (let i = 0; i < sizes.length; i++) {
      const part = await bob.downloadFileChunk(url, uploadID, i, meta.skey!);
      expect(part).not.toBeNull();
      parts.push(part!);
    }
    const received = Buffer.concat(parts);
    expect(received.length).toBe(size);
    expect(sha256(received)).toBe(sha256(file));

    expect(await alice.deleteFile(url, uploadID)).toEqual({ status: 'OK' });
    for (const m of [alice, bob]) {
      expect(await m.getFileStatus(url, uploadID)).toEqual({ status: 'NOT_FOUND', file_size: 0, bytes_stored: 0, total_chunks: 0 });
    }
    expect(await bob.deleteFile(url, uploadID)).toEqual({ status: 'NOT_FOUND' });
    // The metadata message stays until the recipient deletes it.
    expect(await bob.delete(url, [message!.nonce])).toBe(0);
  });

  it('keeps its logs free of identifiers and data', () => {
    const logs = relay.logs.join('\n');
    expect(logs).not.toMatch(/[A-Za-z0-9+/]{43}=/);
    expect(logs).not.toMatch(/[A-Za-z0-9+/]{32}/);
  });
});
