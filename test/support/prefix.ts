/** A fresh key prefix per test, and cleanup of exactly the keys under it. */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

export const freshPrefix = (tag = 't'): string => `test:${tag}:${randomBytes(5).toString('hex')}:`;

/** Deletes every key under `prefix` (and only those). */
export async function dropPrefix(redisUrl: string, prefix: string): Promise<void> {
  const r = new Redis(redisUrl, { lazyConnect: true });
  await r.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await r.del(...keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
}
