/**
 * Delivery through several relays: pickRelays (rendezvous hashing: the score formula, determinism,
 * spread, minimal disruption, errors) and MultiMailbox over three in-memory fake relays (one copy
 * per relay, de-duplication, a relay that fails, argument errors; files: one upload per relay, a
 * failed relay dropped, none completing, download fallback). Live relays: test/e2e/multi-relay*.test.ts.
 */
import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { b64 } from '@zax/protocol';
import {
  AllRelaysFailedError,
  distinctRelayUrls,
  FileTransferError,
  generateIdentity,
  IdentityError,
  isRelayFailure,
  MultiMailbox,
  pickRelays,
  RelayHttpError,
  UsageError,
  type FileProgress,
} from '../src/index.js';
import { startFakeRelay, type FakeRelay } from './support/fake-relay.js';

const URLS = ['https://a.example', 'https://b.example', 'https://c.example', 'https://d.example', 'https://e.example'];
/** Deterministic, well-spread hpks: sha256 of a counter. */
const hpkN = (i: number): Uint8Array => new Uint8Array(createHash('sha256').update(`hpk ${i}`).digest());
const sameSet = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x) => b.includes(x));

describe('pickRelays', () => {
  it('scores sha256(hpk ‖ UTF-8(url)) as a big-endian number and returns the top k, highest first', () => {
    const hpk = hpkN(1);
    const ranked = [...URLS].sort((x, y) => {
      const sx = createHash('sha256').update(hpk).update(x, 'utf8').digest('hex');
      const sy = createHash('sha256').update(hpk).update(y, 'utf8').digest('hex');
      return sy.localeCompare(sx);
    });
    for (let k = 1; k <= URLS.length; k++) expect(pickRelays(URLS, hpk, k)).toEqual(ranked.slice(0, k));
  });

  it('is deterministic: the same for base64 or bytes, any order and any spelling of the list', () => {
    for (let i = 0; i < 50; i++) {
      const hpk = hpkN(i);
      const picked = pickRelays(URLS, hpk, 2);
      expect(pickRelays(URLS, b64(hpk), 2)).toEqual(picked);
      expect(pickRelays([...URLS].reverse(), hpk, 2)).toEqual(picked);
      const respelled = URLS.map((u) => `${u.toUpperCase()}:443/`);
      expect(pickRelays([...respelled, ...URLS], hpk, 2)).toEqual(picked);
    }
  });

  it('normalises and de-duplicates the list', () => {
    expect(distinctRelayUrls(['http://127.0.0.1:8080/', 'http://127.0.0.1:8080', 'HTTP://127.0.0.1:8080//', 'http://127.0.0.1:80/'])).toEqual([
      'http://127.0.0.1:8080',
      'http://127.0.0.1',
    ]);
    expect(() => pickRelays(['http://x.example', 'http://x.example/'], hpkN(0), 2)).toThrow(UsageError);
  });

  it('spreads the load: over many hpks each relay is chosen about k/n of the time', () => {
    const hpks = 5000;
    for (const k of [1, 2, 3]) {
      const chosen = new Map(URLS.map((u) => [u, 0]));
      for (let i = 0; i < hpks; i++) for (const u of pickRelays(URLS, hpkN(i), k)) chosen.set(u, chosen.get(u)! + 1);
      const expected = (hpks * k) / URLS.length;
      // Binomial spread: σ ≤ 35 here; 8 % of the expectation is more than 4 σ.
      for (const n of chosen.values()) expect(Math.abs(n - expected)).toBeLessThan(expected * 0.08);
    }
  });

  it('disrupts minimally: removing a relay changes only the hpks that had it; adding one, only those it wins', () => {
    const without = URLS.filter((u) => u !== 'https://c.example');
    let had = 0;
    for (let i = 0; i < 2000; i++) {
      const before = pickRelays(URLS, hpkN(i), 2);
      const after = pickRelays(without, hpkN(i), 2);
      if (!before.includes('https://c.example')) expect(after).toEqual(before);
      else {
        had++;
        // The survivor stays; the removed relay's place goes to the next in rank.
        expect(after).toContain(before.find((u) => u !== 'https://c.example'));
        expect(sameSet(after, pickRelays(URLS, hpkN(i), 3).filter((u) => u !== 'https://c.example'))).toBe(true);
      }
      // Adding it back: the hpks that change are exactly those it wins.
      const added = pickRelays([...without, 'https://c.example'], hpkN(i), 2);
      expect(added).toEqual(before);
    }
    expect(had).toBeGreaterThan(600);
    expect(had).toBeLessThan(1000);
  });

  it('refuses bad arguments with clear errors', () => {
    const hpk = hpkN(0);
    expect(() => pickRelays(URLS, hpk, 0)).toThrow(/k must be an integer from 1 to the number of distinct relays \(5\), not 0/);
    expect(() => pickRelays(URLS, hpk, 6)).toThrow(UsageError);
    expect(() => pickRelays(URLS, hpk, 1.5)).toThrow(UsageError);
    expect(() => pickRelays(URLS, hpk, Number.NaN)).toThrow(UsageError);
    expect(() => pickRelays([], hpk, 1)).toThrow(/the list is empty/);
    expect(() => pickRelays(['https://a.example', 'not a url'], hpk, 1)).toThrow(/not a URL: not a url/);
    expect(() => pickRelays(['ftp://a.example'], hpk, 1)).toThrow(/must be http or https/);
    expect(() => pickRelays(['https://a.example/?x=1'], hpk, 1)).toThrow(/query or fragment/);
    expect(() => pickRelays('https://a.example' as unknown as string[], hpk, 1)).toThrow(UsageError);
    expect(() => pickRelays(URLS, 'c2hvcnQ=', 1)).toThrow(IdentityError);
    expect(() => pickRelays(URLS, new Uint8Array(31), 1)).toThrow(/recipient hpk: expected 32 bytes, got 31/);
  });
});

describe('MultiMailbox over three fake relays', () => {
  let relays: FakeRelay[];
  beforeAll(async () => {
    relays = await Promise.all([startFakeRelay(), startFakeRelay(), startFakeRelay()]);
  });
  afterAll(async () => {
    await Promise.all(relays.map((r) => r.close()));
  });
  const urls = (): string[] => relays.map((r) => r.url);
  const relayAt = (url: string): FakeRelay => relays.find((r) => r.url === url)!;

  it('stores one copy (same nonce, same data) on each of the recipient’s k relays and none elsewhere; receives each once', async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const a = new MultiMailbox({ urls: urls(), identity: alice, guests: [bob.publicKey] });
    const b = new MultiMailbox({ urls: [...urls()].reverse(), identity: bob, guests: [alice.publicKey] });
    expect(a.k).toBe(2);
    expect(a.relaysFor(bob.hpk)).toEqual(b.ownRelays);

    const sent = [await a.send(bob.publicKey, 'one'), await a.send(bob.publicKey, 'two'), await a.send({ hpk: bob.hpk }, 'plain', { encrypt: false })];
    for (const s of sent) {
      expect(s.failures).toEqual([]);
      expect(s.relays.map((r) => r.url)).toEqual(b.ownRelays);
    }
    for (const url of urls()) {
      const stored = relayAt(url).mailboxes.get(b64(bob.hpk)) ?? [];
      if (b.ownRelays.includes(url)) expect(stored.map((m) => m.nonce)).toEqual(sent.map((s) => s.nonce));
      else expect(stored).toEqual([]);
    }

    const got = await b.receive();
    expect(got.failures).toEqual([]);
    expect(got.messages.map((m) => [m.text ?? m.data, m.nonce, m.relays])).toEqual([
      ['one', sent[0]!.nonce, b.ownRelays],
      ['two', sent[1]!.nonce, b.ownRelays],
      ['plain', sent[2]!.nonce, b.ownRelays],
    ]);
    expect(got.messages[2]!.status).toBe('undecryptable');
    expect((await b.count()).relays).toEqual(b.ownRelays.map((url) => ({ url, count: 3 })));

    const del = await b.delete([sent[0]!.nonce]);
    expect(del.relays).toEqual(b.ownRelays.map((url) => ({ url, remaining: 2 })));
    expect((await b.deleteAll()).relays).toEqual(b.ownRelays.map((url) => ({ url, remaining: 0 })));
    expect((await b.receive()).messages).toEqual([]);
  });

  it('goes on when one of the k relays fails, and throws naming every failure when all do', async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const a = new MultiMailbox({ urls: urls(), identity: alice });
    const b = new MultiMailbox({ urls: urls(), identity: bob, guests: [alice.publicKey] });
    const [first, second] = b.ownRelays as [string, string];

    relayAt(first).failNext('/command', 'invalid', 1);
    const s = await a.send(bob.publicKey, 'through one');
    expect(s.relays.map((r) => r.url)).toEqual([first, second]);
    expect(s.failures.map((f) => f.url)).toEqual([first]);
    expect(s.failures[0]!.error).toBeInstanceOf(RelayHttpError);
    expect(isRelayFailure(s.relays[0]!)).toBe(true);

    // Stored on the second relay only; reading works with the first one failing, or with both up.
    relayAt(first).failNext('/command', 'invalid', 1);
    const got = await b.receive();
    expect(got.failures.map((f) => f.url)).toEqual([first]);
    expect(got.messages.map((m) => [m.text, m.relays])).toEqual([['through one', [second]]]);
    expect((await b.receive()).messages.map((m) => [m.text, m.relays])).toEqual([['through one', [second]]]);

    relayAt(first).failNext('/command', 'invalid', 1);
    relayAt(second).failNext('/command', 'invalid', 1);
    const err = await a.send(bob.publicKey, 'nowhere').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AllRelaysFailedError);
    const all = err as AllRelaysFailedError;
    expect(all.failures.map((f) => f.url)).toEqual([first, second]);
    expect(all.message).toContain(`send to ${b64(bob.hpk)} failed on every relay (2): ${first}: relay answered 400`);
    expect(all.message).toContain(`; ${second}: relay answered 400`);
  });

  it('keeps the earliest time of a message found on several relays', async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const a = new MultiMailbox({ urls: urls(), identity: alice });
    const b = new MultiMailbox({ urls: urls(), identity: bob });
    const { nonce } = await a.send(bob.publicKey, 'x');
    const [first, second] = b.ownRelays as [string, string];
    const copy = relayAt(second).mailboxes.get(b64(bob.hpk))![0]!;
    const earliest = relayAt(first).mailboxes.get(b64(bob.hpk))![0]!.time - 7;
    copy.time = earliest;
    const got = await b.receive();
    expect(got.messages.map((m) => [m.nonce, m.time, m.relays])).toEqual([[nonce, earliest, [first, second]]]);
  });

  it('refuses bad arguments before any request', async () => {
    const id = generateIdentity();
    expect(() => new MultiMailbox({ urls: [], identity: id })).toThrow(/the list is empty/);
    expect(() => new MultiMailbox({ urls: urls(), identity: id, k: 4 })).toThrow(/k must be an integer from 1 to the number of distinct relays \(3\), not 4/);
    expect(() => new MultiMailbox({ urls: urls(), identity: undefined as unknown as typeof id })).toThrow(/an identity is required/);
    expect(new MultiMailbox({ urls: [urls()[0]!], identity: id }).k).toBe(1);
    const m = new MultiMailbox({ urls: urls(), identity: id });
    const before = relays.map((r) => r.log.length);
    await expect(m.send({ hpk: id.hpk }, 'x')).rejects.toThrow(/cannot encrypt to a bare hpk/);
    await expect(m.send('not a key', 'x')).rejects.toThrow(IdentityError);
    await expect(m.send(id.publicKey, 42 as unknown as string)).rejects.toThrow(UsageError);
    await expect(m.receive({ from: ['bad'] })).rejects.toThrow(IdentityError);
    await expect(m.delete('nonce' as unknown as string[])).rejects.toThrow(UsageError);
    expect(() => m.mailboxAt('https://elsewhere.example')).toThrow(/not in this mailbox's relay list/);
    expect(relays.map((r) => r.log.length)).toEqual(before);
  });
});

describe('MultiMailbox files over three fake relays', () => {
  // Different max_chunk_size per relay: a send must fit the smallest of the recipient's relays.
  const MAX = [3016, 512000, 2016];
  let relays: FakeRelay[];
  beforeAll(async () => {
    relays = await Promise.all(MAX.map((maxChunkSize) => startFakeRelay({ maxChunkSize })));
  });
  afterAll(async () => {
    await Promise.all(relays.map((r) => r.close()));
  });
  const urls = (): string[] => relays.map((r) => r.url);
  const relayAt = (url: string): FakeRelay => relays.find((r) => r.url === url)!;
  const maxAt = (url: string): number => MAX[relays.findIndex((r) => r.url === url)]!;
  const data = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + (i >> 8)) & 255);
  const retry = { retries: 1, baseDelayMs: 1 };

  function pair(): { a: MultiMailbox; b: MultiMailbox; bob: ReturnType<typeof generateIdentity>; first: string; second: string } {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const a = new MultiMailbox({ urls: urls(), identity: alice, guests: [bob.publicKey] });
    const b = new MultiMailbox({ urls: [...urls()].reverse(), identity: bob, guests: [alice.publicKey] });
    const [first, second] = b.ownRelays as [string, string];
    return { a, b, bob, first, second };
  }

  afterEach(() => {
    for (const r of relays) r.failCommand = null;
  });

  it('uploads the file once per chosen relay (same key and nonce, chunks fitting both); the recipient lists it once and receives it', async () => {
    const { a, b, bob, first, second } = pair();
    const file = data(20_000);
    const progress: FileProgress[] = [];
    const sent = await a.sendFile(bob.publicKey, file, { name: 'f.bin', onProgress: (p) => progress.push(p) });
    const chunkSize = Math.min(maxAt(first), maxAt(second)) - 16;
    expect(sent.chunkSize).toBe(chunkSize);
    expect(sent.chunks).toBe(Math.ceil(20_000 / chunkSize));
    expect(sent.failures).toEqual([]);
    expect(sent.relays.map((r) => r.url)).toEqual([first, second]);
    expect(progress.at(-1)).toEqual({ bytes: 20_000, totalBytes: 20_000, chunks: sent.chunks, totalChunks: sent.chunks });
    const ids = sent.uploads.map((u) => u.uploadID);
    expect(sent.uploads.map((u) => u.url)).toEqual([first, second]);
    expect(ids[0]).not.toBe(ids[1]); // each relay derives its own
    for (const u of sent.uploads) {
      expect(relayAt(u.url).files.get(u.uploadID)!.status).toBe('COMPLETE');
      expect(relayAt(u.url).mailboxes.get(b64(bob.hpk))!.map((m) => [m.nonce, m.kind])).toEqual([[sent.nonce, 'file']]);
    }
    const third = urls().find((u) => u !== first && u !== second)!;
    expect(relayAt(third).files.size).toBe(0);

    const got = await b.receive();
    expect(got.messages).toHaveLength(1);
    const m = got.messages[0]!;
    expect([m.kind, m.nonce, m.relays, m.uploads, m.file?.name]).toEqual(['file', sent.nonce, [first, second], sent.uploads, 'f.bin']);
    const r = await b.receiveFile(m);
    expect(r.bytes).toEqual(file);
    expect([r.url, r.uploadID, r.failures]).toEqual([first, ids[0], []]);

    expect((await b.fileStatus(m)).relays.map((x) => ('status' in x ? x.status.status : x.error))).toEqual(['COMPLETE', 'COMPLETE']);
    const del = await b.deleteFile(m);
    expect(del.relays).toEqual(sent.uploads.map((u) => ({ ...u, deleted: true })));
    expect((await a.deleteFile(sent)).relays.map((x) => ('deleted' in x ? x.deleted : x.error))).toEqual([false, false]);
  });

  it('drops a relay that fails a chunk, finishes through the other and reports the failure', async () => {
    const { a, b, bob, first, second } = pair();
    const file = data(30_000);
    // Only part 3 fails there: later parts would pass, so none may reach it once it is dropped.
    relayAt(first).failCommand = (c) => (c.cmd === 'uploadFileChunk' && c.part === 3 ? 'internal' : null);
    const sent = await a.sendFile(bob.publicKey, file, { chunkSize: 1000, window: 2, retry });
    expect(sent.chunks).toBe(30);
    expect(sent.relays.map((r) => r.url)).toEqual([first, second]);
    expect(sent.failures.map((f) => [f.url, f.uploadID])).toEqual([[first, sent.uploads[0]!.uploadID]]);
    expect(sent.failures[0]!.error).toBeInstanceOf(RelayHttpError);
    expect(isRelayFailure(sent.relays[0]!)).toBe(true);
    expect(sent.relays[1]).toEqual({ url: second, uploadID: sent.uploads[1]!.uploadID, token: expect.any(String) });
    // Dropped: with a window of 2, part 4 at most was in flight beside part 3 when it failed.
    const partial = relayAt(first).files.get(sent.uploads[0]!.uploadID)!;
    expect(partial.status).toBe('UPLOADING');
    expect(partial.parts.has(3)).toBe(false);
    expect(Math.max(...partial.parts.keys())).toBeLessThanOrEqual(4);

    // Bob sees the file once (its message is on both relays) and gets it from the complete one.
    const [m, ...rest] = (await b.receive()).messages;
    expect(rest).toEqual([]);
    expect(m!.uploads!.map((u) => u.url)).toEqual([first, second]);
    const r = await b.receiveFile(m!);
    expect(r.bytes).toEqual(file);
    expect([r.url, r.failures]).toEqual([second, []]);
  });

  it('throws AllRelaysFailedError when no relay completes the file (a start failure, then a chunk failure)', async () => {
    const { a, bob, first, second } = pair();
    relayAt(first).failCommand = (c) => (c.cmd === 'startFileUpload' ? 'internal' : null);
    relayAt(second).failCommand = (c) => (c.cmd === 'uploadFileChunk' && c.part === 5 ? 'invalid' : null);
    const err = await a.sendFile(bob.publicKey, data(10_000), { chunkSize: 500, retry }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AllRelaysFailedError);
    const all = err as AllRelaysFailedError;
    expect(all.failures.map((f) => f.url)).toEqual([first, second]);
    expect(all.message).toContain(`sendFile to ${b64(bob.hpk)} failed on every relay (2): ${first}: relay answered 500`);
    expect(all.message).toContain(`; ${second}: relay answered 400`);

    // Both starts failing: the same error, no chunk sent.
    relayAt(second).failCommand = (c) => (c.cmd === 'startFileUpload' ? 'invalid' : null);
    await expect(a.sendFile(bob.publicKey, data(10_000), { chunkSize: 500, retry })).rejects.toThrow(AllRelaysFailedError);
  });

  it('receives from the next relay when a download fails mid-way: no byte delivered twice to a sink', async () => {
    const { a, b, bob, first, second } = pair();
    const file = data(12_345);
    await a.sendFile(bob.publicKey, file, { chunkSize: 1000 });
    const [m] = (await b.receive()).messages;
    relayAt(first).failCommand = (c) => (c.cmd === 'downloadFileChunk' && c.part === 6 ? 'invalid' : null);

    const pieces: Uint8Array[] = [];
    const progress: number[] = [];
    const r = await b.receiveFile(m!, { sink: (c) => void pieces.push(c.slice()), window: 2, retry, onProgress: (p) => progress.push(p.bytes) });
    expect(r.bytes).toBeUndefined();
    expect(Buffer.concat(pieces)).toEqual(Buffer.from(file));
    expect(r.url).toBe(second);
    expect(r.failures.map((f) => f.url)).toEqual([first]);
    expect(progress).toEqual([...progress].sort((x, y) => x - y));
    expect(new Set(progress).size).toBe(progress.length);
    expect(progress.at(-1)).toBe(12_345);

    // A WritableStream sink, and no sink at all.
    const streamed: Uint8Array[] = [];
    await b.receiveFile(m!, { sink: new WritableStream({ write: (c) => void streamed.push(c.slice()) }), retry });
    expect(Buffer.concat(streamed)).toEqual(Buffer.from(file));
    expect((await b.receiveFile(m!, { retry })).bytes).toEqual(file);

    // Both fail: AllRelaysFailedError naming both, and the stream sink is aborted.
    relayAt(second).failCommand = (c) => (c.cmd === 'downloadFileChunk' ? 'invalid' : null);
    let aborted = false;
    const err = await b.receiveFile(m!, { sink: new WritableStream({ abort: () => void (aborted = true) }), retry }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AllRelaysFailedError);
    expect((err as AllRelaysFailedError).failures.map((f) => f.url)).toEqual([first, second]);
    expect(aborted).toBe(true);
  });

  it('tries the COMPLETE relay first, and does not fall back when the sink fails', async () => {
    const { a, b, bob, first, second } = pair();
    const sent = await a.sendFile(bob.publicKey, data(5000), { chunkSize: 1000 });
    const [m] = (await b.receive()).messages;
    relayAt(first).files.get(sent.uploads[0]!.uploadID)!.status = 'UPLOADING';
    const r = await b.receiveFile(m!);
    expect([r.url, r.failures]).toEqual([second, []]);

    const before = relayAt(first).log.length + relayAt(second).log.length;
    const boom = new Error('disk full');
    await expect(
      b.receiveFile(m!, {
        sink: () => {
          throw boom;
        },
      }),
    ).rejects.toBe(boom);
    // One status per relay, then the downloads of one relay only.
    expect(relayAt(first).log.length - before).toBeLessThanOrEqual(2);
  });

  it('stops on abort with FileTransferError aborted, not as a failure of the relays', async () => {
    const { a, bob } = pair();
    const ctl = new AbortController();
    const err = await a
      .sendFile(bob.publicKey, data(20_000), { chunkSize: 1000, signal: ctl.signal, onProgress: (p) => p.chunks === 3 && ctl.abort() })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileTransferError);
    expect((err as FileTransferError).code).toBe('aborted');
  });

  it('refuses bad arguments clearly', async () => {
    const { a, b, bob } = pair();
    await expect(a.sendFile({ hpk: bob.hpk }, data(10))).rejects.toThrow(/a file is always encrypted/);
    await expect(a.sendFile(bob.publicKey, data(10), { resume: {} } as never)).rejects.toThrow(/does not resume/);
    await expect(a.sendFile(bob.publicKey, data(10), { chunkSize: 0 })).rejects.toThrow(UsageError);
    await expect(a.sendFile(bob.publicKey, new Uint8Array(0))).rejects.toThrow(/file size must be an integer ≥ 1/);
    await expect(a.sendFile(bob.publicKey, (async function* () {})())).rejects.toThrow(/needs options.size/);
    await expect(b.receiveFile({ uploads: [], metadata: { name: 'x', orig_size: 1, skey: b64(new Uint8Array(32)) } })).rejects.toThrow(/expected `uploads`/);
    await expect(b.deleteFile({})).rejects.toThrow(UsageError);
    await expect(b.receiveFile({ uploads: [{ url: 'https://elsewhere.example', uploadID: b64(new Uint8Array(32)) }], metadata: { name: 'x', orig_size: 1, skey: 'x' } })).rejects.toThrow(/not in this mailbox's relay list/);
    // A source shorter than declared: the size error, not a relay failure.
    const short = (async function* () {
      yield data(100);
    })();
    await expect(a.sendFile(bob.publicKey, short, { size: 5000, chunkSize: 1000 })).rejects.toThrow(FileTransferError);
  });
});
