/**
 * File lifetime through the injected clock: a file ends `fileTtlSec` after its last activity
 * (creation or chunk upload, DEVIATION D18), for every command and both parties; its `file`
 * message ends `fileTtlSec` after receipt and is not refreshed; an expired file touched by a write
 * is dropped at once with its bytes.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { command, commandJson, commandPlain, establishSession, startCore, type Core, type Session, fileBytesTotal, fileRegistrySize, fileKey } from './helpers.js';
import { KEY_TTL_MARGIN_MS } from '../src/keys.js';
import { expectTtlGiven, timedWrite } from '../../../test/support/ttl.js';
import { NOT_FOUND_STATUS, deleteFile, fileStatus, getChunk, openJson, putChunk, putChunkOk, rnd, startFile } from './files-fixture.js';

let core: Core;
let alice: Session;
let bob: Session;
beforeEach(async () => {
  core = await startCore({ env: { FILE_TTL_SEC: '100', SESSION_TTL_SEC: '100000' } });
  alice = await establishSession(core);
  bob = await establishSession(core);
});
afterEach(async () => {
  await core.close();
});

const total = async (): Promise<number> => fileBytesTotal(core);

describe('file expiry', () => {
  it('a file untouched since its start ends fileTtlSec later, for every command and both parties', async () => {
    const f = await startFile(core, alice, bob, 100);
    core.clock.ms += 99_999;
    expect((await fileStatus(core, bob, f.uploadID)).status).toBe('START');
    core.clock.ms += 1;
    for (const s of [alice, bob]) expect(await fileStatus(core, s, f.uploadID)).toEqual(NOT_FOUND_STATUS);
    expect((await getChunk(core, bob, f.uploadID, 0)).kind).toBe('notFound');
    expect(openJson(alice, (await putChunk(core, alice, f.uploadID, 0, rnd(10))).body)).toEqual({ status: 'NOT_FOUND' });
    expect(await deleteFile(core, bob, f.uploadID)).toEqual({ status: 'NOT_FOUND' });
    expect(await core.redis.keys(`${core.prefix}f:*`)).toEqual([]);
  });

  it('D18: a chunk upload restarts the lifetime of the whole file; the file message keeps its own', async () => {
    const f = await startFile(core, alice, bob, 1000);
    const token = f.storage_token;
    const c0 = rnd(100);
    await putChunkOk(core, alice, f.uploadID, 0, c0);
    core.clock.advanceSec(60);
    await putChunkOk(core, alice, f.uploadID, 1, rnd(50)); // now expires at t0 + 160
    core.clock.advanceSec(50); // t0 + 110: past the first lifetime
    expect(await fileStatus(core, bob, f.uploadID)).toEqual({ status: 'UPLOADING', file_size: 1000, bytes_stored: 150, total_chunks: 2 });
    const d = await getChunk(core, bob, f.uploadID, 0);
    expect(d.kind === 'chunk' && d.bytes.equals(c0)).toBe(true);
    // The message was not refreshed: gone at t0 + 100.
    expect(await commandPlain(core, alice, { cmd: 'messageStatus', token })).toBe('-2');
    expect(await commandJson(core, bob, { cmd: 'count' })).toBe(0);
    // Reads do not refresh.
    core.clock.ms += 49_999;
    expect((await fileStatus(core, alice, f.uploadID)).status).toBe('UPLOADING');
    core.clock.ms += 1;
    expect(await fileStatus(core, alice, f.uploadID)).toEqual(NOT_FOUND_STATUS);
    expect((await getChunk(core, bob, f.uploadID, 1)).kind).toBe('notFound');
  });

  it('a refused chunk does not refresh the file', async () => {
    const f = await startFile(core, alice, bob, 10);
    core.clock.advanceSec(90);
    expect((await putChunk(core, alice, f.uploadID, 10, rnd(5))).status).toBe(400);
    expect((await putChunk(core, alice, f.uploadID, 0, rnd(27))).status).toBe(413);
    core.clock.advanceSec(10);
    expect(await fileStatus(core, alice, f.uploadID)).toEqual(NOT_FOUND_STATUS);
  });

  it('an expired file hit by a chunk upload or deleteFile is dropped at once, bytes off the total', async () => {
    const f = await startFile(core, alice, bob, 1000);
    const g = await startFile(core, bob, alice, 1000);
    await putChunkOk(core, alice, f.uploadID, 0, rnd(300));
    await putChunkOk(core, bob, g.uploadID, 0, rnd(200));
    expect(await total()).toBe(500);
    core.clock.advanceSec(100);
    // Expired but not swept yet: keys and bytes are still there.
    expect(await total()).toBe(500);
    expect(openJson(alice, (await putChunk(core, alice, f.uploadID, 1, rnd(10))).body)).toEqual({ status: 'NOT_FOUND' });
    expect(await total()).toBe(200);
    expect(await deleteFile(core, alice, g.uploadID)).toEqual({ status: 'NOT_FOUND' });
    expect(await total()).toBe(0);
    expect(await core.redis.keys(`${core.prefix}f:*`)).toEqual([]);
    expect((await fileRegistrySize(core)).exp).toBe(0);
  });

  it('keys carry a Redis TTL of the remaining lifetime plus a margin', async () => {
    const f = await startFile(core, alice, bob, 1000);
    // The chunk upload is the file's last activity: every key gets fileTtlSec plus the margin then.
    const w = await timedWrite(core.redis, () => putChunkOk(core, alice, f.uploadID, 0, rnd(10)));
    for (const k of ['rec', 'parts', 'chunks']) await expectTtlGiven(core.redis, fileKey(core, f.uploadID, k as 'rec'), w, 100_000 + KEY_TTL_MARGIN_MS);
    expect((await command(core, alice, { cmd: 'count' })).status).toBe(200);
  });
});
