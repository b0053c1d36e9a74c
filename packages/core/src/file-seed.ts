/**
 * The uploadID seed (docs/PROTOCOL.md §7 `fileSeed`): the configured one, or else one generated once for
 * the whole deployment — 32 CSPRNG bytes as base64 without `=` (43 chars) — written to core Redis
 * with `SET NX` so that every core replica, and every restart, uses the same seed. Read once per
 * process and then kept in memory; a failed read is retried by the next request.
 */
import { b64 } from '@zax/protocol';
import type { CoreRedis } from './redis.js';
import { badReply, storeCall } from '@zax/service';

export interface FileSeed {
  get(): Promise<string>;
}

const STORED_SEED_RE = /^[\x20-\x7e]{1,1024}$/;

export function createFileSeed(opts: { configured: string | null; redis: CoreRedis; key: string; randomBytes: (n: number) => Uint8Array }): FileSeed {
  const configured = opts.configured;
  if (configured !== null) return { get: () => Promise.resolve(configured) };
  let seed: string | null = null;
  let pending: Promise<string> | null = null;

  async function load(): Promise<string> {
    const candidate = b64(opts.randomBytes(32)).replace(/=+$/, '');
    await storeCall('file seed', () => opts.redis.set(opts.key, candidate, 'NX'));
    const stored = await storeCall('file seed', () => opts.redis.get(opts.key));
    // Someone else's value in our key is a fault, not a seed: never hash with it.
    if (stored === null || !STORED_SEED_RE.test(stored)) throw badReply('file seed', stored);
    return stored;
  }

  return {
    get() {
      if (seed !== null) return Promise.resolve(seed);
      pending ??= load().then(
        (s) => {
          seed = s;
          pending = null;
          return s;
        },
        (e: unknown) => {
          pending = null;
          throw e;
        },
      );
      return pending;
    },
  };
}
