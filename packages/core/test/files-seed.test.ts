/**
 * The uploadID seed: configured (FILE_SEED) — used as is and never stored; or generated once — 43
 * base64 characters without `=`, created with SET NX in core Redis so that every replica (and a
 * restarted one) derives the same uploadIDs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { b64, randomBytes } from '@zax/protocol';
import { freshPrefix } from '../../../test/support/prefix.js';
import { uploadId } from '../src/file-ids.js';
import { createFileSeed } from '../src/file-seed.js';
import { commandJson, establishSession, randomNonceB64, startCore, type Core, type Session } from './helpers.js';

let cores: Core[] = [];
afterEach(async () => {
  for (const c of cores.reverse()) await c.close();
  cores = [];
});

async function start(from: Core, s: Session, to: string, nonce: string): Promise<string> {
  const r = await commandJson<{ uploadID: string }>(from, s, { cmd: 'startFileUpload', to, file_size: 10, metadata: { nonce, ctext: 'm' } });
  return r.uploadID;
}

const expected = (s: Session, to: string, nonce: string, seed: string): string =>
  b64(uploadId(Buffer.from(s.hpk, 'base64'), Buffer.from(to, 'base64'), Buffer.from(nonce, 'base64'), seed));

describe('file seed', () => {
  it('without FILE_SEED: generated once, kept in Redis, shared by every replica', async () => {
    const prefix = freshPrefix('seed');
    const a = await startCore({ prefix });
    const b = await startCore({ prefix });
    cores.push(b, a);
    const alice = await establishSession(a);
    const to = b64(randomBytes(32));
    const nonce = randomNonceB64();
    expect(await a.redis.get(`${prefix}files:seed`)).toBeNull();
    // Both replicas race for the seed; one SET NX wins and both use it.
    const [idA, idB] = await Promise.all([start(a, alice, to, nonce), start(b, alice, to, randomNonceB64())]);
    const seed = await a.redis.get(`${prefix}files:seed`);
    expect(seed).toMatch(/^[A-Za-z0-9+/]{43}$/);
    expect(Buffer.from(seed!, 'base64')).toHaveLength(32);
    expect(idA).toBe(expected(alice, to, nonce, seed!));
    expect(await start(b, alice, to, nonce)).toBe(idA);
    expect(idB).not.toBe(idA);
    // A replica started later reads the same seed.
    const c = await startCore({ prefix });
    cores.unshift(c);
    expect(await start(c, alice, to, nonce)).toBe(idA);
    expect(await a.redis.get(`${prefix}files:seed`)).toBe(seed);
  });

  it('with FILE_SEED: that seed, nothing stored', async () => {
    const core = await startCore({ env: { FILE_SEED: 'jEPjU+8lB5XdSOhffS2GHtMXpRpEM12k/HML0SUYMEo' } });
    cores.push(core);
    const alice = await establishSession(core);
    const to = b64(randomBytes(32));
    const nonce = randomNonceB64();
    expect(await start(core, alice, to, nonce)).toBe(expected(alice, to, nonce, 'jEPjU+8lB5XdSOhffS2GHtMXpRpEM12k/HML0SUYMEo'));
    expect(await core.redis.exists(`${core.prefix}files:seed`)).toBe(0);
  });

  it('a store failure is not cached: the next call tries again', async () => {
    const core = await startCore();
    cores.push(core);
    let fail = true;
    const flaky = new Proxy(core.redis, {
      get(target, prop, receiver) {
        if (prop === 'set' && fail) return () => Promise.reject(new Error('down'));
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const seed = createFileSeed({ configured: null, redis: flaky, key: `${core.prefix}files:seed`, randomBytes });
    await expect(seed.get()).rejects.toThrow(/file seed/);
    fail = false;
    const s = await seed.get();
    expect(s).toHaveLength(43);
    expect(await seed.get()).toBe(s);
  });
});
