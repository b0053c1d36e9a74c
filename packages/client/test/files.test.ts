/**
 * The client's file-transfer logic over an in-memory CommandTransport that keeps file records the
 * way docs/PROTOCOL.md §5.7–5.11 describes: the window of chunks in flight (send and receive),
 * retries (Retry-After, network errors, a 400 that fails at once), resume from a checkpoint, the
 * re-cutting of stream pieces into chunks, sizes that do not match, and receiving errors.
 */
import { describe, expect, it } from 'vitest';
import { b64, tweetnaclCrypto } from '@zax/protocol';
import {
  FileTransferError,
  generateIdentity,
  Mailbox,
  readChunks,
  RelayHttpError,
  RelayNetworkError,
  UsageError,
  type CommandJson,
  type CommandResponse,
  type CommandTransport,
  type FileUploadCheckpoint,
  type Identity,
} from '../src/index.js';

interface StoredFile {
  size: number;
  status: 'START' | 'UPLOADING' | 'COMPLETE';
  parts: Map<number, { nonce: string; ctext: string }>;
  message: { data: string; from: string; nonce: string; kind: 'file'; time: number; to: string };
}

/** File records shared by the transports of several identities. */
class FakeFileStore {
  readonly files = new Map<string, StoredFile>();
  maxChunkSize = 512000;
}

const reply = (value: unknown, extra: string[] = []): CommandResponse => ({ lines: ['n', 'b', ...extra], open: () => value });

/** A transport of one identity over a FakeFileStore, with a log, a delay and a failure hook. */
class FakeTransport implements CommandTransport {
  inFlight = 0;
  maxInFlight = 0;
  readonly log: Array<{ cmd: string; part?: number; at: number }> = [];
  delayMs = 2;
  /** Return an error to answer this command with it instead. */
  fail: (json: CommandJson, attempt: number) => Error | null = () => null;
  private attempts = new Map<string, number>();
  constructor(
    readonly identity: Identity,
    readonly store: FakeFileStore,
  ) {}

  async command(json: CommandJson, line4?: string): Promise<CommandResponse> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((r) => setTimeout(r, Math.random() * this.delayMs));
      const key = `${json.cmd}:${String(json.part ?? '')}`;
      const attempt = (this.attempts.get(key) ?? 0) + 1;
      this.attempts.set(key, attempt);
      this.log.push({ cmd: json.cmd, ...(typeof json.part === 'number' ? { part: json.part } : {}), at: Date.now() });
      const err = this.fail(json, attempt);
      if (err !== null) throw err;
      return this.run(json, line4);
    } finally {
      this.inFlight--;
    }
  }

  private run(json: CommandJson, line4: string | undefined): CommandResponse {
    const s = this.store;
    const me = b64(this.identity.hpk);
    const f = typeof json.uploadID === 'string' ? s.files.get(json.uploadID) : undefined;
    switch (json.cmd) {
      case 'startFileUpload': {
        const md = json.metadata as { nonce: string; ctext: string };
        const uploadID = b64(tweetnaclCrypto.randomBytes(32));
        s.files.set(uploadID, {
          size: json.file_size as number,
          status: 'START',
          parts: new Map(),
          message: { data: JSON.stringify({ ctext: md.ctext, nonce: md.nonce, uploadID }), from: me, nonce: md.nonce, kind: 'file', time: Date.now(), to: json.to as string },
        });
        return reply({ uploadID, max_chunk_size: s.maxChunkSize, storage_token: b64(new Uint8Array(32)) });
      }
      case 'uploadFileChunk':
        if (f === undefined) return reply({ status: 'NOT_FOUND' });
        f.parts.set(json.part as number, { nonce: json.nonce as string, ctext: line4! });
        f.status = json.last_chunk === true || f.status === 'COMPLETE' ? 'COMPLETE' : 'UPLOADING';
        return reply({ status: 'OK' });
      case 'fileStatus':
        if (f === undefined) return reply({ status: 'NOT_FOUND', file_size: 0, bytes_stored: 0, total_chunks: 0 });
        return reply({ status: f.status, file_size: f.size, bytes_stored: 0, total_chunks: f.parts.size === 0 ? 0 : Math.max(...f.parts.keys()) + 1 });
      case 'downloadFileChunk': {
        if (f === undefined) return { lines: ['n', 'b'], open: () => ({ status: 'NOT_FOUND' }) };
        const p = f.parts.get(json.part as number);
        if (p === undefined) throw new RelayHttpError(400, 'Your request can not be completed.', null, 'command');
        return reply({ nonce: p.nonce }, [p.ctext]);
      }
      case 'deleteFile':
        return reply({ status: s.files.delete(json.uploadID as string) ? 'OK' : 'NOT_FOUND' });
      case 'download':
        return reply([...s.files.values()].filter((x) => x.message.to === me).map((x) => x.message));
      default:
        throw new Error(`fake: no ${json.cmd}`);
    }
  }
}

function setup(): { alice: Mailbox; bob: Mailbox; ta: FakeTransport; tb: FakeTransport; a: Identity; b: Identity; store: FakeFileStore } {
  const store = new FakeFileStore();
  const a = generateIdentity(tweetnaclCrypto);
  const b = generateIdentity(tweetnaclCrypto);
  const ta = new FakeTransport(a, store);
  const tb = new FakeTransport(b, store);
  return { a, b, ta, tb, store, alice: new Mailbox(ta, { crypto: tweetnaclCrypto, guests: [b.publicKey] }), bob: new Mailbox(tb, { crypto: tweetnaclCrypto, guests: [a.publicKey] }) };
}

const bytes = (n: number): Uint8Array => tweetnaclCrypto.randomBytes(n);
const chunkParts = (t: FakeTransport): number[] => t.log.filter((l) => l.cmd === 'uploadFileChunk').map((l) => l.part!);

async function* uneven(data: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let i = 0, n = 1; i < data.length; i += n, n = (n * 5 + 17) % 3001) yield data.slice(i, i + n);
}

describe('sending', () => {
  it('never has more than `window` chunks in flight, and sends the last one after all others', async () => {
    const { b, alice, bob, ta } = setup();
    ta.delayMs = 10;
    const data = bytes(100_000);
    const sent = await alice.sendFile(b.publicKey, uneven(data), { size: data.length, chunkSize: 3000, window: 3 });
    expect(sent.chunks).toBe(34);
    expect(ta.maxInFlight).toBe(3);
    const parts = chunkParts(ta);
    expect(parts.at(-1)).toBe(33);
    expect([...parts].sort((x, y) => x - y)).toEqual(Array.from({ length: 34 }, (_, i) => i));
    const [m] = await bob.receive();
    expect((await bob.receiveFile(m!)).bytes).toEqual(data);
  });

  it('caps chunkSize to the relay max_chunk_size − 16 and defaults to it', async () => {
    const { b, alice, store } = setup();
    store.maxChunkSize = 1016;
    expect((await alice.sendFile(b.publicKey, bytes(5000))).chunks).toBe(5);
    expect((await alice.sendFile(b.publicKey, bytes(5000), { chunkSize: 4000 })).chunks).toBe(5);
    expect((await alice.sendFile(b.publicKey, bytes(5000), { chunkSize: 500 })).chunks).toBe(10);
  });

  it('retries after Retry-After on 503 and 429, and after network errors; a 400 fails at once', async () => {
    const { b, alice, ta } = setup();
    ta.fail = (json, attempt) => {
      if (json.part === 1 && attempt === 1) return new RelayHttpError(503, 'Relay is busy. Try again later.', 1, 'command');
      if (json.part === 2 && attempt === 1) return new RelayHttpError(429, 'Too many requests. Try again later.', 1, 'command');
      if (json.part === 3 && attempt <= 2) return new RelayNetworkError('reset', { reason: 'other' });
      return null;
    };
    await alice.sendFile(b.publicKey, bytes(5000), { chunkSize: 1000, retry: { baseDelayMs: 10 } });
    const at = (part: number): number[] => ta.log.filter((l) => l.part === part).map((l) => l.at);
    for (const p of [1, 2]) {
      expect(at(p)).toHaveLength(2);
      expect(at(p)[1]! - at(p)[0]!).toBeGreaterThanOrEqual(1000);
    }
    expect(at(3)).toHaveLength(3);

    ta.fail = (json) => (json.part === 2 ? new RelayHttpError(400, 'Your request can not be completed.', null, 'command') : null);
    const before = ta.log.length;
    await expect(alice.sendFile(b.publicKey, bytes(5000), { chunkSize: 1000 })).rejects.toMatchObject({ status: 400 });
    expect(ta.log.slice(before).filter((l) => l.part === 2)).toHaveLength(1);
  });

  it('gives up when Retry-After is above maxDelayMs, or after `retries`', async () => {
    const { b, alice, ta } = setup();
    ta.fail = (json) => (json.part === 0 ? new RelayHttpError(429, 'Mailbox is full.', 3600, 'command') : null);
    await expect(alice.sendFile(b.publicKey, bytes(100), { retry: { maxDelayMs: 5000 } })).rejects.toMatchObject({ status: 429 });
    ta.fail = (json) => (json.part === 0 ? new RelayNetworkError('reset') : null);
    await expect(alice.sendFile(b.publicKey, bytes(100), { retry: { retries: 2, baseDelayMs: 1 } })).rejects.toBeInstanceOf(RelayNetworkError);
    expect(ta.log.filter((l) => l.part === 0).length).toBe(1 + 1 + 2);
  });

  it('resumes from a checkpoint: acknowledged parts are not sent again, the file arrives whole', async () => {
    const { b, alice, bob, ta } = setup();
    const data = bytes(50_000);
    ta.fail = (json) => (typeof json.part === 'number' && json.part >= 12 ? new RelayHttpError(400, null, null, 'command') : null);
    const cps: FileUploadCheckpoint[] = [];
    await expect(alice.sendFile(b.publicKey, uneven(data), { size: data.length, chunkSize: 1000, window: 4, onCheckpoint: (cp) => cps.push(cp) })).rejects.toBeInstanceOf(RelayHttpError);
    const cp = JSON.parse(JSON.stringify(cps.at(-1))) as FileUploadCheckpoint;
    expect(cps.map((c) => c.nextPart)).toEqual([...new Set(cps.map((c) => c.nextPart))].sort((x, y) => x - y));
    expect(cp.nextPart).toBe(12);
    ta.fail = () => null;
    ta.log.length = 0;
    const progress: number[] = [];
    // The whole file again as the source: the first 12 000 bytes are read and skipped.
    await alice.sendFile(b.publicKey, uneven(data), { size: data.length, resume: cp, onProgress: (p) => progress.push(p.bytes) });
    expect(ta.log.filter((l) => l.cmd === 'startFileUpload')).toHaveLength(0);
    expect(ta.log[0]!.cmd).toBe('fileStatus');
    expect(Math.min(...chunkParts(ta))).toBe(12);
    expect(chunkParts(ta)).toHaveLength(38);
    expect(progress[0]).toBe(13_000);
    expect(progress.at(-1)).toBe(50_000);
    const [m] = await bob.receive();
    expect((await bob.receiveFile(m!)).bytes).toEqual(data);
  });

  it('refuses a bad resume: another recipient, another size, an upload that is gone', async () => {
    const { a, b, alice, bob, ta } = setup();
    ta.fail = (json) => (json.part === 3 ? new RelayHttpError(400, null, null, 'command') : null);
    let cp: FileUploadCheckpoint | null = null;
    await expect(alice.sendFile(b.publicKey, bytes(10_000), { chunkSize: 1000, window: 1, onCheckpoint: (c) => (cp = c) })).rejects.toThrow();
    await expect(alice.sendFile(a.publicKey, bytes(10_000), { resume: cp! })).rejects.toBeInstanceOf(UsageError);
    await expect(alice.sendFile(b.publicKey, bytes(9_000), { resume: cp! })).rejects.toBeInstanceOf(UsageError);
    await expect(bob.sendFile(b.publicKey, bytes(10_000), { resume: cp! })).rejects.toThrow(/another identity/);
    await expect(alice.sendFile(b.publicKey, bytes(10_000), { resume: { ...cp!, nextPart: 99 } })).rejects.toThrow(/do not agree/);
    await alice.deleteFile(cp!.uploadID);
    await expect(alice.sendFile(b.publicKey, bytes(10_000), { resume: cp! })).rejects.toMatchObject({ code: 'not-found' });
  });

  it('refuses bad sizes and sources', async () => {
    const { b, alice, ta } = setup();
    await expect(alice.sendFile(b.publicKey, uneven(bytes(10))), 'stream without size').rejects.toBeInstanceOf(UsageError);
    await expect(alice.sendFile(b.publicKey, bytes(10), { size: 11 })).rejects.toBeInstanceOf(UsageError);
    await expect(alice.sendFile(b.publicKey, new Uint8Array(0))).rejects.toBeInstanceOf(UsageError);
    await expect(alice.sendFile({ hpk: b.hpk }, bytes(10))).rejects.toBeInstanceOf(UsageError);
    await expect(alice.sendFile(b.publicKey, bytes(10), { window: 0 })).rejects.toBeInstanceOf(UsageError);
    ta.log.length = 0;
    await expect(alice.sendFile(b.publicKey, uneven(bytes(9_999)), { size: 10_000, chunkSize: 1000 })).rejects.toMatchObject({ code: 'size' });
    await expect(alice.sendFile(b.publicKey, uneven(bytes(10_001)), { size: 10_000, chunkSize: 1000 })).rejects.toMatchObject({ code: 'size' });
    // Neither reached the last part.
    expect(chunkParts(ta)).not.toContain(9);
    const strings = (async function* () {
      yield 'text' as unknown as Uint8Array;
    })();
    await expect(alice.sendFile(b.publicKey, strings, { size: 4 })).rejects.toBeInstanceOf(UsageError);
  });

  it('stops on abort after the chunks in flight settle', async () => {
    const { b, alice, ta } = setup();
    const stop = new AbortController();
    const sending = alice.sendFile(b.publicKey, bytes(20_000), { chunkSize: 1000, window: 2, signal: stop.signal, onProgress: (p) => p.chunks === 5 && stop.abort() });
    await expect(sending).rejects.toMatchObject({ code: 'aborted' });
    expect(ta.inFlight).toBe(0);
    expect(chunkParts(ta).length).toBeLessThan(10);
  });
});

describe('readChunks', () => {
  it('cuts pieces of any size into exact chunks, skipping to a first part, with a source offset', async () => {
    const data = bytes(10_007);
    const collect = async (src: AsyncIterable<Uint8Array> | Uint8Array, first = 0, offset = 0): Promise<Array<[number, Uint8Array]>> => {
      const out: Array<[number, Uint8Array]> = [];
      for await (const [p, c] of readChunks(src, data.length, 1000, first, offset)) out.push([p, c.slice()]);
      return out;
    };
    const whole = await collect(uneven(data));
    expect(whole.map(([p, c]) => [p, c.length])).toEqual(Array.from({ length: 11 }, (_, i) => [i, i === 10 ? 7 : 1000]));
    expect(Buffer.concat(whole.map(([, c]) => c))).toEqual(Buffer.from(data));
    expect(await collect(uneven(data), 4)).toEqual(whole.slice(4));
    expect(await collect(uneven(data.subarray(2500)), 4, 2500)).toEqual(whole.slice(4));
    expect(await collect(data.subarray(2500), 4, 2500)).toEqual(whole.slice(4));
    await expect(collect(uneven(data), 1, 2000)).rejects.toBeInstanceOf(UsageError);
  });
});

describe('receiving', () => {
  it('downloads `window` chunks ahead and delivers them in order to a sink', async () => {
    const { b, alice, bob, tb } = setup();
    const data = bytes(40_000);
    await alice.sendFile(b.publicKey, data, { chunkSize: 1000 });
    tb.delayMs = 10;
    const [m] = await bob.receive();
    const got: Uint8Array[] = [];
    const res = await bob.receiveFile(m!, { window: 5, sink: async (c) => void got.push(c) });
    expect(res.bytes).toBeUndefined();
    expect(res).toMatchObject({ size: 40_000, name: 'file' });
    expect(tb.maxInFlight).toBe(5);
    expect(Buffer.concat(got)).toEqual(Buffer.from(data));
  });

  it('fails clearly: not complete, not found, a chunk that does not open, a wrong size, not a file', async () => {
    const { b, alice, bob, ta, store } = setup();
    ta.fail = (json) => (json.part === 2 ? new RelayHttpError(400, null, null, 'command') : null);
    await expect(alice.sendFile(b.publicKey, bytes(5000), { chunkSize: 1000, window: 1 })).rejects.toThrow();
    const [m] = await bob.receive();
    await expect(bob.receiveFile(m!)).rejects.toMatchObject({ code: 'incomplete' });

    ta.fail = () => null;
    await alice.sendFile(b.publicKey, bytes(5000), { chunkSize: 1000 });
    const [, m2] = await bob.receive();
    const f = store.files.get(m2!.uploadID!)!;
    const p1 = f.parts.get(1)!;
    f.parts.set(1, { ...p1, nonce: f.parts.get(0)!.nonce });
    await expect(bob.receiveFile(m2!)).rejects.toMatchObject({ code: 'corrupt' });
    f.parts.set(1, p1);
    await expect(bob.receiveFile({ uploadID: m2!.uploadID!, metadata: { ...m2!.file!, orig_size: 4999 } })).rejects.toMatchObject({ code: 'size' });
    expect((await bob.receiveFile(m2!)).bytes).toHaveLength(5000);

    await bob.deleteFile(m2!.uploadID!);
    await expect(bob.receiveFile(m2!)).rejects.toMatchObject({ code: 'not-found' });
    expect(await bob.deleteFile(m2!.uploadID!)).toBe(false);
    await expect(bob.receiveFile({ ...m2!, kind: 'message' })).rejects.toBeInstanceOf(UsageError);
    await expect(bob.receiveFile({ ...m2!, file: undefined, text: null })).rejects.toBeInstanceOf(FileTransferError);
  });
});
