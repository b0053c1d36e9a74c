/**
 * A chunk upload is one MULTI/EXEC (file-chunk.lua "check", a plain HSET of the bytes, "settle"):
 * every refusal leaves the chunk bytes exactly as they were (an earlier part P kept, no new field,
 * no key created) and no marker field behind; a stored chunk gives the chunks hash the file's TTL.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { b64 } from '@zax/protocol';
import { KEY_TTL_MARGIN_MS, createKeys, type FileKeys } from '../src/keys.js';
import { createFileStore, type FileStore, type NewChunk } from '../src/store/files.js';
import { establishSession, startCore, type Core, type Session, fileBytesTotal } from './helpers.js';
import { rnd } from './files-fixture.js';

let core: Core;
let files: FileStore;
let alice: Session;
let bob: Session;
const NOW = Date.now();
const TTL_MS = 100_000;
const ID = b64(rnd(32));
let k: FileKeys;

beforeEach(async () => {
  core = await startCore({ env: { SESSION_TTL_SEC: '100000' } });
  alice = await establishSession(core);
  bob = await establishSession(core);
  files = createFileStore(core.redis, createKeys(core.prefix));
  k = createKeys(core.prefix).file(ID);
});
afterEach(async () => core.close());

const chunk = (part: number, bytes: Buffer, over: Partial<NewChunk> = {}): NewChunk => ({
  uploadID: ID,
  caller: alice.hpk,
  part,
  nonce: b64(rnd(24)),
  lastChunk: false,
  chunk: bytes,
  nowMs: NOW,
  expiresAtMs: NOW + TTL_MS,
  maxFileBytesTotal: 1_000_000,
  ...over,
});

/** Every field of the chunks and parts hashes (bytes as b64), and whether each key exists. */
async function snapshot(): Promise<unknown> {
  const chunks = await core.redis.hgetallBuffer(k.chunks);
  return {
    chunks: Object.fromEntries(Object.entries(chunks).map(([f, v]) => [f, b64(v)])),
    parts: await core.redis.hgetall(k.parts),
    rec: await core.redis.hgetall(k.rec),
    total: await fileBytesTotal(core),
    exists: await core.redis.exists(k.chunks, k.parts, k.rec),
  };
}

describe('chunk transaction', () => {
  it('unknown file: nothing is created', async () => {
    expect(await files.uploadChunk(chunk(0, rnd(100)))).toBe('notFound');
    expect(await core.redis.exists(k.chunks, k.parts, k.rec)).toBe(0);
  });

  it('a refused first chunk (part ≥ file_size, over size, relay full) leaves no chunks hash and no marker', async () => {
    await files.start({ uploadID: ID, from: alice.hpk, to: bob.hpk, fileSize: 1000, nowMs: NOW, expiresAtMs: NOW + TTL_MS });
    const before = await snapshot();
    expect(await files.uploadChunk(chunk(1000, rnd(10)))).toBe('partOutOfRange');
    expect(await files.uploadChunk(chunk(0, rnd(1017)))).toBe('overSize');
    expect(await files.uploadChunk(chunk(0, rnd(500), { maxFileBytesTotal: 499 }))).toBe('relayFull');
    expect(await snapshot()).toEqual(before);
    expect(await core.redis.exists(k.chunks)).toBe(0);
  });

  it('a refused re-upload of a stored part keeps its earlier bytes, nonce and TTL; other parts untouched', async () => {
    await files.start({ uploadID: ID, from: alice.hpk, to: bob.hpk, fileSize: 1000, nowMs: NOW, expiresAtMs: NOW + TTL_MS });
    const p0 = rnd(600);
    const p1 = rnd(300);
    expect(await files.uploadChunk(chunk(0, p0))).toBe('stored');
    expect(await files.uploadChunk(chunk(1, p1))).toBe('stored');
    const ttl = await core.redis.pttl(k.chunks);
    expect(ttl).toBeGreaterThan(TTL_MS);
    expect(ttl).toBeLessThanOrEqual(TTL_MS + KEY_TTL_MARGIN_MS);
    const before = await snapshot();
    expect(await files.uploadChunk(chunk(0, rnd(800)))).toBe('overSize');
    expect(await files.uploadChunk(chunk(1, rnd(301), { maxFileBytesTotal: 900 }))).toBe('relayFull');
    expect(await files.uploadChunk(chunk(0, rnd(10), { caller: b64(rnd(32)) }))).toBe('notFound');
    expect(await snapshot()).toEqual(before);
    expect(await core.redis.pttl(k.chunks)).toBeGreaterThan(TTL_MS);
    const r = await files.downloadChunk(ID, bob.hpk, 0, NOW);
    expect(r.kind === 'chunk' && r.bytes.equals(p0)).toBe(true);
  });

  it('a stored chunk replaces part P; the first one gives the chunks hash the file TTL', async () => {
    await files.start({ uploadID: ID, from: alice.hpk, to: bob.hpk, fileSize: 1000, nowMs: NOW, expiresAtMs: NOW + TTL_MS });
    expect(await files.uploadChunk(chunk(0, rnd(200)))).toBe('stored');
    expect(await core.redis.pttl(k.chunks)).toBeGreaterThan(TTL_MS);
    const again = rnd(250);
    expect(await files.uploadChunk(chunk(0, again, { lastChunk: true }))).toBe('stored');
    const r = await files.downloadChunk(ID, bob.hpk, 0, NOW);
    expect(r.kind === 'chunk' && r.bytes.equals(again)).toBe(true);
    expect(await files.status(ID, bob.hpk, NOW)).toEqual({ status: 'COMPLETE', fileSize: 1000, bytesStored: 250, totalChunks: 1 });
    expect(Object.keys(await core.redis.hgetall(k.parts))).toEqual(['0']);
    expect(await fileBytesTotal(core)).toBe(250);
  });

  it('an expired file is dropped and the refused chunk leaves nothing', async () => {
    await files.start({ uploadID: ID, from: alice.hpk, to: bob.hpk, fileSize: 1000, nowMs: NOW, expiresAtMs: NOW + TTL_MS });
    expect(await files.uploadChunk(chunk(0, rnd(200)))).toBe('stored');
    expect(await files.uploadChunk(chunk(1, rnd(200), { nowMs: NOW + TTL_MS + 1 }))).toBe('notFound');
    expect(await core.redis.exists(k.chunks, k.parts, k.rec)).toBe(0);
    expect(await fileBytesTotal(core)).toBe(0);
  });
});
