/** loadConfig: defaults, bounds and the readable list of problems (PROTOCOL.md §7, docs/CONTRACT.md). */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

const BASE = { REDIS_URL: 'redis://127.0.0.1:6379', INTERNAL_SECRET: 'sixteen-chars-ok' };

function problems(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('fills the contract defaults and freezes the result', () => {
    const c = loadConfig(BASE);
    expect(c).toEqual({
      port: 8080,
      host: '0.0.0.0',
      coreUrl: 'http://127.0.0.1:8081',
      edgeRedisUrl: 'redis://127.0.0.1:6379',
      edgeRedisPrefix: 'zax:edge:',
      internalSecret: 'sixteen-chars-ok',
      difficulty: 0,
      difficultyGraceSec: 65,
      tokenTtlSec: 300,
      maxCommandBodyBytes: 1048576,
      maxHandshakeBodyBytes: 4096,
      busyRetryAfterSec: 5,
      coreTimeoutMs: 3000,
      redisCommandTimeoutMs: 1000,
      logLevel: 'info',
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('derives the edge prefix from REDIS_PREFIX, and prefers EDGE_REDIS_URL and EDGE_REDIS_PREFIX', () => {
    expect(loadConfig({ ...BASE, REDIS_PREFIX: 'r1:' }).edgeRedisPrefix).toBe('r1:edge:');
    const c = loadConfig({ ...BASE, EDGE_REDIS_URL: 'redis://edge:6380', EDGE_REDIS_PREFIX: 'e:' });
    expect(c.edgeRedisUrl).toBe('redis://edge:6380');
    expect(c.edgeRedisPrefix).toBe('e:');
    expect(loadConfig({ EDGE_REDIS_URL: 'redis://edge:6380', INTERNAL_SECRET: BASE.INTERNAL_SECRET }).edgeRedisUrl).toBe('redis://edge:6380');
  });

  it('accepts difficulty 0 and 255 and refuses 256, -1 and non-numbers', () => {
    expect(loadConfig({ ...BASE, DIFFICULTY: '0' }).difficulty).toBe(0);
    expect(loadConfig({ ...BASE, DIFFICULTY: '255' }).difficulty).toBe(255);
    for (const bad of ['256', '-1', '1.5', 'four', ' 4']) {
      expect(problems({ ...BASE, DIFFICULTY: bad })).toEqual([`DIFFICULTY: must be a whole number from 0 to 255, got "${bad}"`]);
    }
  });

  it('lists every bad variable at once, without echoing the secret', () => {
    const list = problems({ REDIS_URL: 'http://x', INTERNAL_SECRET: 'short-secret', PORT: '70000', LOG_LEVEL: 'loud' });
    expect(list).toHaveLength(4);
    expect(list.join('\n')).toMatch(/^PORT: /m);
    expect(list.join('\n')).toMatch(/^REDIS_URL: must start with redis:\/\/ or rediss:\/\//m);
    expect(list.join('\n')).toMatch(/^INTERNAL_SECRET: must be at least 16 characters/m);
    expect(list.join('\n')).toMatch(/^LOG_LEVEL: /m);
    expect(list.join('\n')).not.toContain('short-secret');
  });

  it('requires INTERNAL_SECRET and a Redis URL', () => {
    expect(problems({ REDIS_URL: BASE.REDIS_URL })).toEqual(['INTERNAL_SECRET: is required (at least 16 characters)']);
    expect(problems({ INTERNAL_SECRET: BASE.INTERNAL_SECRET })).toEqual(['EDGE_REDIS_URL: is required (or set REDIS_URL)']);
  });

  it('checks MAX_COMMAND_BODY_BYTES against the chunk size it must carry', () => {
    expect(problems({ ...BASE, MAX_COMMAND_BODY_BYTES: '100000' })).toEqual([
      'MAX_COMMAND_BODY_BYTES: must be at least 4·⌈MAX_CHUNK_SIZE/3⌉ + 4096 = 686764',
    ]);
    expect(loadConfig({ ...BASE, MAX_COMMAND_BODY_BYTES: '100000', MAX_CHUNK_SIZE: '60000' }).maxCommandBodyBytes).toBe(100000);
  });

  it('treats an empty variable as unset and strips a trailing slash from CORE_URL', () => {
    expect(loadConfig({ ...BASE, DIFFICULTY: '', CORE_URL: 'http://core:9000/' })).toMatchObject({ difficulty: 0, coreUrl: 'http://core:9000' });
  });
});
