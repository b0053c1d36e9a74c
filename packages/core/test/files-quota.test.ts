/**
 * File limits over HTTP: maxFileSize (400 at start), maxChunkSize (413), the relay-wide
 * maxFileBytesTotal (503 + Retry-After, nothing stored, recovery after deleteFile or a reset), and
 * the file-store switch (item 99).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TEXT_BUSY, TEXT_TOO_LARGE, b64 } from '@zax/protocol';
import { command, commandJson, establishSession, randomNonceB64, startCore, type Core, type Session, fileBytesTotal } from './helpers.js';
import { deleteFile, expectG, fileStatus, getChunk, putChunk, putChunkOk, rnd, startFile } from './files-fixture.js';

let cores: Core[] = [];
afterEach(async () => {
  await Promise.all(cores.map((c) => c.close()));
  cores = [];
});

async function setup(env: Record<string, string>): Promise<{ core: Core; alice: Session; bob: Session }> {
  const core = await startCore({ env });
  cores.push(core);
  return { core, alice: await establishSession(core), bob: await establishSession(core) };
}

const total = async (core: Core): Promise<number> => fileBytesTotal(core);

describe('file limits', () => {
  it('MAX_FILE_SIZE: file_size above it → 400 G at start, nothing created; at it → 200', async () => {
    const { core, alice, bob } = await setup({ MAX_FILE_SIZE: '5000' });
    expectG(await command(core, alice, { cmd: 'startFileUpload', to: bob.hpk, file_size: 5001, metadata: { nonce: randomNonceB64(), ctext: 'm' } }));
    expect(await commandJson(core, bob, { cmd: 'count' })).toBe(0);
    expect(await core.redis.keys(`${core.prefix}f:*`)).toEqual([]);
    const f = await startFile(core, alice, bob, 5000);
    expect((await fileStatus(core, bob, f.uploadID)).file_size).toBe(5000);
  });

  it('MAX_CHUNK_SIZE: a chunk above it → 413, nothing stored; max_chunk_size follows it', async () => {
    const { core, alice, bob } = await setup({ MAX_CHUNK_SIZE: '4096' });
    const f = await startFile(core, alice, bob, 100_000);
    expect(f.max_chunk_size).toBe(4096);
    const r = await putChunk(core, alice, f.uploadID, 0, rnd(4097));
    expect(r.status).toBe(413);
    expect(r.headers.get('x-error-details')).toBe(TEXT_TOO_LARGE);
    expect(r.body).toBe('');
    expect(await fileStatus(core, bob, f.uploadID)).toEqual({ status: 'START', file_size: 100_000, bytes_stored: 0, total_chunks: 0 });
    await putChunkOk(core, alice, f.uploadID, 0, rnd(4096));
    // getEntropy shares the limit.
    expect((await command(core, alice, { cmd: 'getEntropy', size: 4097 })).status).toBe(400);
  });

  it('MAX_FILE_BYTES_TOTAL: a chunk past it → 503 with Retry-After, nothing stored; recovery after deleteFile', async () => {
    const { core, alice, bob } = await setup({ MAX_FILE_BYTES_TOTAL: '1000', BUSY_RETRY_AFTER_SEC: '7' });
    const a = await startFile(core, alice, bob, 2000);
    const b = await startFile(core, bob, alice, 2000);
    await putChunkOk(core, alice, a.uploadID, 0, rnd(600));
    await putChunkOk(core, bob, b.uploadID, 0, rnd(400)); // exactly at the limit
    expect(await total(core)).toBe(1000);

    const refused = await putChunk(core, alice, a.uploadID, 1, rnd(1), { last: true });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('7');
    expect(refused.headers.get('x-error-details')).toBe(TEXT_BUSY);
    expect(refused.body).toBe('');
    expect(await fileStatus(core, bob, a.uploadID)).toEqual({ status: 'UPLOADING', file_size: 2000, bytes_stored: 600, total_chunks: 1 });
    expect((await getChunk(core, bob, a.uploadID, 1)).kind).toBe('status'); // part 1 is not there: 400
    expect(await total(core)).toBe(1000);
    // A larger replacement is refused too; an equal or smaller one needs no room.
    expect((await putChunk(core, alice, a.uploadID, 0, rnd(601))).status).toBe(503);
    await putChunkOk(core, alice, a.uploadID, 0, rnd(600));
    await putChunkOk(core, alice, a.uploadID, 0, rnd(500));
    expect(await total(core)).toBe(900);
    await putChunkOk(core, alice, a.uploadID, 1, rnd(100));
    expect((await putChunk(core, alice, a.uploadID, 2, rnd(1))).status).toBe(503);

    // Starting new files stays possible (they hold no bytes); their chunks wait for room.
    const c = await startFile(core, alice, bob, 2000);
    expect((await putChunk(core, alice, c.uploadID, 0, rnd(300))).status).toBe(503);
    expect(await deleteFile(core, bob, b.uploadID)).toEqual({ status: 'OK' });
    expect(await total(core)).toBe(600);
    await putChunkOk(core, alice, c.uploadID, 0, rnd(300), { last: true });
    expect(await fileStatus(core, bob, c.uploadID)).toEqual({ status: 'COMPLETE', file_size: 2000, bytes_stored: 300, total_chunks: 1 });
    expect(await total(core)).toBe(900);

    // Restarting a file (same metadata nonce) frees its bytes as well.
    await commandJson(core, alice, { cmd: 'startFileUpload', to: bob.hpk, file_size: 2000, metadata: { nonce: a.metadataNonce, ctext: 'again' } });
    expect(await total(core)).toBe(300);
    await putChunkOk(core, alice, a.uploadID, 0, rnd(700));
    expect(await total(core)).toBe(1000);
  });

  it('FILE_STORE_ENABLED=false: every well-formed file command → 405 with an empty body; upload and getEntropy work (99)', async () => {
    const { core, alice, bob } = await setup({ FILE_STORE_ENABLED: 'false' });
    const uploadID = b64(rnd(32));
    const cmds: Array<[unknown, string | undefined]> = [
      [{ cmd: 'startFileUpload', to: bob.hpk, file_size: 10, metadata: { nonce: randomNonceB64(), ctext: 'm' } }, undefined],
      [{ cmd: 'uploadFileChunk', uploadID, part: 0, nonce: randomNonceB64(), last_chunk: true }, b64(rnd(10))],
      [{ cmd: 'uploadFileChunk', uploadID, part: 0, nonce: randomNonceB64(), ctext: b64(rnd(10)) }, undefined],
      [{ cmd: 'fileStatus', uploadID }, undefined],
      [{ cmd: 'downloadFileChunk', uploadID, part: 0 }, undefined],
      [{ cmd: 'deleteFile', uploadID }, undefined],
    ];
    for (const [c, line4] of cmds) {
      const r = await command(core, alice, c, line4 === undefined ? {} : { line4 });
      expect(r.status).toBe(405);
      expect(r.body).toBe('');
      expect(r.headers.get('x-error-details')).toBeNull();
    }
    expect(await commandJson(core, bob, { cmd: 'count' })).toBe(0);
    expect((await command(core, alice, { cmd: 'upload', to: bob.hpk, payload: 'x' })).status).toBe(200);
    expect((await command(core, alice, { cmd: 'getEntropy', size: 16 })).status).toBe(200);
    for (const pattern of ['f2:*', '{fb:*', 'files:*']) expect(await core.redis.keys(`${core.prefix}${pattern}`)).toEqual([]);
  });
});
