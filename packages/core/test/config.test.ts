/** loadConfig: defaults, constraints, readable errors. */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

const BASE = { REDIS_URL: 'redis://127.0.0.1:6379', INTERNAL_SECRET: '0123456789abcdef' };

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig({ ...BASE, ...env });
  } catch (e) {
    if (e instanceof ConfigError) return [...e.problems];
    throw e;
  }
  return [];
}

describe('loadConfig', () => {
  it('applies the CONTRACT.md defaults and freezes the result', () => {
    const c = loadConfig(BASE);
    expect(c).toMatchObject({
      port: 8081,
      host: '127.0.0.1',
      redisPrefix: 'zax:',
      internalSecretPrevious: null,
      sessionTtlSec: 1200,
      nonceWindowSec: 60,
      nonceCacheSec: 600,
      messageTtlSec: 432000,
      fileTtlSec: 604800,
      maxMessageBytes: 262144,
      mailboxQuota: 10000,
      mailboxQuotaBytes: 33554432,
      mailboxFullRetryAfterSec: 3600,
      maxChunkSize: 512000,
      maxFileSize: 1073741823,
      maxCommandBodyBytes: 1048576,
      maxHandshakeBodyBytes: 4096,
      busyRetryAfterSec: 5,
      redisCommandTimeoutMs: 1000,
      logLevel: 'info',
      fileStoreEnabled: false,
    });
    expect(Object.isFrozen(c)).toBe(true);
    expect(loadConfig({ ...BASE, SESSION_TTL_SEC: '', CORE_PORT: '0' })).toMatchObject({ sessionTtlSec: 1200, port: 0 });
  });

  it('reads every variable', () => {
    const c = loadConfig({ ...BASE, INTERNAL_SECRET_PREVIOUS: 'fedcba9876543210', SESSION_TTL_SEC: '60', LOG_LEVEL: 'silent', REDIS_PREFIX: 'x:' });
    expect(c).toMatchObject({ internalSecretPrevious: 'fedcba9876543210', sessionTtlSec: 60, logLevel: 'silent', redisPrefix: 'x:' });
  });

  it('lists every problem', () => {
    expect(problems({ REDIS_URL: '', INTERNAL_SECRET: 'short' }).join('\n')).toMatch(/REDIS_URL.*\n.*INTERNAL_SECRET/s);
    expect(problems({ NONCE_WINDOW_SEC: '301' })).toEqual(['NONCE_CACHE_SEC: must be ≥ 2 × NONCE_WINDOW_SEC']);
    expect(problems({ MAX_CHUNK_SIZE: '3000', MAX_COMMAND_BODY_BYTES: '8095' })[0]).toMatch(/MAX_COMMAND_BODY_BYTES/);
    expect(problems({ MAX_CHUNK_SIZE: '3000', MAX_COMMAND_BODY_BYTES: '8096' })).toEqual([]);
    for (const [k, v] of [
      ['CORE_PORT', '70000'],
      ['SESSION_TTL_SEC', '0'],
      ['SESSION_TTL_SEC', '1.5'],
      ['SESSION_TTL_SEC', '-1'],
      ['MAILBOX_QUOTA', 'lots'],
      ['LOG_LEVEL', 'loud'],
      ['REDIS_PREFIX', 'a{b}'],
      ['INTERNAL_SECRET_PREVIOUS', 'short'],
      ['REDIS_URL', 'http://x'],
    ] as const) {
      expect(problems({ [k]: v }).join(), `${k}=${v}`).toContain(k);
    }
  });
});
