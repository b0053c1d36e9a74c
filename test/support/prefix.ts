/** A fresh key prefix per test, and cleanup of exactly the keys under it. */
import { randomBytes } from 'node:crypto';
import { primaries } from '@zax/service';
import { storeClient } from './store.js';

export const freshPrefix = (tag = 't'): string => `test:${tag}:${randomBytes(5).toString('hex')}:`;

/**
 * Deletes every key under `prefix` (and only those), on every primary of the store `redisUrl`
 * names (a URL or a test/support/store.ts spec). Keys go one command each: on a cluster node, keys
 * of several slots cannot share a DEL.
 */
export async function dropPrefix(redisUrl: string, prefix: string): Promise<void> {
  const client = await storeClient(redisUrl);
  try {
    for (const node of primaries(client)) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 1000);
        cursor = next;
        await Promise.all(keys.map((k) => node.del(k)));
      } while (cursor !== '0');
    }
  } finally {
    client.disconnect();
  }
}
