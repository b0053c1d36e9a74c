/**
 * The store high-water mark (STORE_HIGH_WATER_RATIO): on a private redis-server with a small
 * `maxmemory`, once `used_memory` passes ratio × maxmemory every write (upload, startFileUpload,
 * uploadFileChunk) gets 503 with Retry-After, while reads and deletes still work; after deletes it
 * recovers. `INFO memory` is sampled once a second of the service clock: the tests move the injected
 * clock a second on for a new sample.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TEXT_BUSY } from '@zax/protocol';
import { startRedisServer, type RedisServer } from '../../../test/support/redis-server.js';
import { parseMemoryInfo } from '../src/store-guard.js';
import { command, commandJson, establishSession, randomNonceB64, startCore, type Core, type HttpReply } from './helpers.js';
import { deleteFile, fileStatus, getChunkBytes, putChunk, putChunkOk, rnd, startFile } from './files-fixture.js';

let server: RedisServer;
let core: Core | null = null;

beforeAll(async () => {
  server = await startRedisServer(undefined, ['--maxmemory', '24mb']);
});
afterAll(async () => {
  await server?.stop();
});
afterEach(async () => {
  await core?.close();
  core = null;
});

function expectBusy(r: HttpReply): void {
  expect(r.status).toBe(503);
  expect(r.headers.get('retry-after')).toBe('3');
  expect(r.headers.get('x-error-details')).toBe(TEXT_BUSY);
  expect(r.body).toBe('');
}

describe('store high-water mark', () => {
  it('parses INFO memory', () => {
    const info = '# Memory\r\nused_memory:1234567\r\nused_memory_human:1.18M\r\nmaxmemory:25165824\r\nmaxmemory_human:24.00M\r\n';
    expect(parseMemoryInfo(info)).toEqual({ usedBytes: 1234567, maxBytes: 25165824 });
    expect(parseMemoryInfo('# Memory\r\n')).toEqual({ usedBytes: 0, maxBytes: 0 });
  });

  it('above ratio × maxmemory: writes → 503 Retry-After; reads and deletes work; recovers after deletes', async () => {
    core = await startCore({ redisUrl: server.url, env: { STORE_HIGH_WATER_RATIO: '0.5', BUSY_RETRY_AFTER_SEC: '3', REDIS_COMMAND_TIMEOUT_MS: '5000' } });
    const c = core;
    const alice = await establishSession(c);
    const bob = await establishSession(c);
    const mark = 0.5 * 24 * 1024 * 1024;
    const used = async (): Promise<number> => parseMemoryInfo(await c.redis.info('memory')).usedBytes;

    // A file of a few 512000-byte chunks, below the mark.
    const f = await startFile(c, alice, bob, 64 * 512000);
    const first = rnd(512000);
    for (let i = 0; i < 4; i++) await putChunkOk(c, alice, f.uploadID, i, i === 0 ? first : rnd(512000));
    expect(await used()).toBeLessThan(mark);
    // Then past the mark (well below the hard limit) with a value written behind the relay's back,
    // so no write of the test races the guard's next sample.
    const filler: string[] = [];
    while ((await used()) < mark + 3 * 1024 * 1024) {
      filler.push(`${c.prefix}filler:${filler.length}`);
      await c.redis.set(filler.at(-1)!, Buffer.alloc(1024 * 1024, 7));
    }
    c.clock.advanceSec(1); // the next request takes a new sample

    expectBusy(await putChunk(c, alice, f.uploadID, 4, rnd(1000)));
    expectBusy(await command(c, alice, { cmd: 'startFileUpload', to: bob.hpk, file_size: 10, metadata: { nonce: randomNonceB64(), ctext: 'm' } }));
    expectBusy(await command(c, alice, { cmd: 'upload', to: bob.hpk, payload: 'hello' }));
    // Reads, deletes and the other commands still work.
    expect(await fileStatus(c, bob, f.uploadID)).toEqual({ status: 'UPLOADING', file_size: 64 * 512000, bytes_stored: 4 * 512000, total_chunks: 4 });
    expect((await getChunkBytes(c, bob, f.uploadID, 0)).equals(first)).toBe(true);
    expect(await commandJson(c, bob, { cmd: 'count' })).toBe(1);
    expect((await commandJson<unknown[]>(c, bob, { cmd: 'download' })).length).toBe(1);
    expect((await command(c, bob, { cmd: 'delete', payload: [f.metadataNonce] })).body).toBe('0');
    expect((await command(c, alice, { cmd: 'getEntropy', size: 32 })).status).toBe(200);
    expect(await deleteFile(c, bob, f.uploadID)).toEqual({ status: 'OK' });
    // Still above the mark: writes keep being refused.
    expectBusy(await command(c, alice, { cmd: 'upload', to: bob.hpk, payload: 'hello' }));

    await c.redis.del(...filler);
    expect(await used()).toBeLessThan(mark);
    c.clock.advanceSec(1);
    expect((await command(c, alice, { cmd: 'upload', to: bob.hpk, payload: 'hello' })).status).toBe(200);
    const g = await startFile(c, alice, bob, 100);
    await putChunkOk(c, alice, g.uploadID, 0, rnd(100));
  });

  it('no mark without maxmemory: the shared test Redis has none, so even a tiny ratio refuses nothing', async () => {
    core = await startCore({ env: { STORE_HIGH_WATER_RATIO: '0.000001' } });
    const alice = await establishSession(core);
    expect((await command(core, alice, { cmd: 'upload', to: alice.hpk, payload: 'x' })).status).toBe(200);
    const f = await startFile(core, alice, alice, 100);
    await putChunkOk(core, alice, f.uploadID, 0, rnd(100));
  });
});
