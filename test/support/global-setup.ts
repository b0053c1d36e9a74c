/**
 * Vitest global setup: unless REDIS_URL is set, a private store in the topology ZAX_TEST_TOPOLOGY
 * names (default: one redis-server; `cluster`, `sentinel`: test/support/store-server.ts). Tests read
 * it with `inject('redisUrl')` (a URL or a store spec, test/support/store.ts) and always work under
 * their own fresh key prefix.
 */
import type { TestProject } from 'vitest/node';
import { startStoreServer, type StoreServer } from './store-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

let server: StoreServer | null = null;

export async function setup(project: TestProject): Promise<void> {
  let url = process.env.REDIS_URL;
  if (url === undefined || url === '') {
    server = await startStoreServer();
    url = server.spec;
  }
  project.provide('redisUrl', url);
}

export async function teardown(): Promise<void> {
  await server?.close();
}
