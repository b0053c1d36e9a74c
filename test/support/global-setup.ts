/**
 * Vitest global setup: a private redis-server on a free port unless REDIS_URL is set. Tests read the
 * URL with `inject('redisUrl')` and always work under their own fresh key prefix.
 */
import type { TestProject } from 'vitest/node';
import { startRedisServer, type RedisServer } from './redis-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

let server: RedisServer | null = null;

export async function setup(project: TestProject): Promise<void> {
  let url = process.env.REDIS_URL;
  if (url === undefined || url === '') {
    server = await startRedisServer();
    url = server.url;
  }
  project.provide('redisUrl', url);
}

export async function teardown(): Promise<void> {
  await server?.stop();
}
