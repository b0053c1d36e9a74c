/**
 * Key TTLs as Redis was told them, not as they have counted down since: a write's time is taken
 * from Redis's own clock just before and just after it, and a key's absolute expiry
 * (PEXPIRETIME) minus those two times brackets the TTL the write gave it. A check against the
 * bracket holds however long the write and the reads took.
 */
import type { RedisClient as Redis } from '@zax/service';
import { expect } from 'vitest';

/** Redis's clock, ms since the epoch. */
export async function redisNowMs(redis: Redis): Promise<number> {
  const [sec, micro] = await redis.time();
  return Number(sec) * 1000 + Math.floor(Number(micro) / 1000);
}

export interface WriteWindow {
  /** Redis's clock just before the write. */
  readonly before: number;
  /** Redis's clock just after it. */
  readonly after: number;
}

/** Runs `write` between two readings of Redis's clock. */
export async function timedWrite<T>(redis: Redis, write: () => Promise<T>): Promise<WriteWindow & { result: T }> {
  const before = await redisNowMs(redis);
  const result = await write();
  const after = await redisNowMs(redis);
  return { before, after, result };
}

/**
 * The TTL `key` was given during `w`, ms: [min, max]. Throws if the key has no expiry. Redis's
 * PEXPIRETIME is whole ms and its clock reading here too, so the bracket is widened by 1 ms.
 */
export async function ttlGiven(redis: Redis, key: string, w: WriteWindow): Promise<{ min: number; max: number }> {
  const at = Number(await redis.call('PEXPIRETIME', key));
  if (at < 0) throw new Error(`${key}: ${at === -2 ? 'no such key' : 'no expiry'}`);
  return { min: at - w.after - 1, max: at - w.before + 1 };
}

/** Asserts that the write of `w` gave `key` a TTL of `ttlMs`. */
export async function expectTtlGiven(redis: Redis, key: string, w: WriteWindow, ttlMs: number): Promise<void> {
  const { min, max } = await ttlGiven(redis, key, w);
  expect(ttlMs, `TTL of ${key}: between ${min} and ${max} ms`).toBeGreaterThanOrEqual(min);
  expect(ttlMs, `TTL of ${key}: between ${min} and ${max} ms`).toBeLessThanOrEqual(max);
}
