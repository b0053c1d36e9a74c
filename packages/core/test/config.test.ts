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
      fileStoreEnabled: true,
      maxFileBytesTotal: 1073741824,
      storeHighWaterRatio: 0.9,
      fileSeed: null,
      fileSweepIntervalSec: 60,
      censusIntervalSec: 60,
    });
    expect(Object.isFrozen(c)).toBe(true);
    expect(loadConfig({ ...BASE, SESSION_TTL_SEC: '', CORE_PORT: '0' })).toMatchObject({ sessionTtlSec: 1200, port: 0 });
  });

  it('reads every variable', () => {
    const c = loadConfig({ ...BASE, INTERNAL_SECRET_PREVIOUS: 'fedcba9876543210', SESSION_TTL_SEC: '60', LOG_LEVEL: 'silent', REDIS_PREFIX: 'x:' });
    expect(c).toMatchObject({ internalSecretPrevious: 'fedcba9876543210', sessionTtlSec: 60, logLevel: 'silent', redisPrefix: 'x:' });
  });

  it('reads the file-store variables', () => {
    const c = loadConfig({
      ...BASE,
      FILE_STORE_ENABLED: 'false',
      MAX_FILE_BYTES_TOTAL: '1000',
      STORE_HIGH_WATER_RATIO: '0.75',
      FILE_SEED: 'bgi5UzAYLEjfHvWxFEbxUE3tVOElydt63Pv3Hs99avw',
      FILE_SWEEP_INTERVAL_SEC: '5',
      CENSUS_INTERVAL_SEC: '7',
    });
    expect(c).toMatchObject({ fileStoreEnabled: false, maxFileBytesTotal: 1000, storeHighWaterRatio: 0.75, fileSeed: 'bgi5UzAYLEjfHvWxFEbxUE3tVOElydt63Pv3Hs99avw', fileSweepIntervalSec: 5, censusIntervalSec: 7 });
    expect(loadConfig({ ...BASE, FILE_STORE_ENABLED: '1', STORE_HIGH_WATER_RATIO: '1' })).toMatchObject({ fileStoreEnabled: true, storeHighWaterRatio: 1 });
    expect(loadConfig({ ...BASE, FILE_STORE_ENABLED: 'true', STORE_HIGH_WATER_RATIO: '.5' })).toMatchObject({ fileStoreEnabled: true, storeHighWaterRatio: 0.5 });
    for (const [k, v] of [
      ['FILE_STORE_ENABLED', 'yes'],
      ['FILE_STORE_ENABLED', 'False'],
      ['MAX_FILE_BYTES_TOTAL', '0'],
      ['STORE_HIGH_WATER_RATIO', '0'],
      ['STORE_HIGH_WATER_RATIO', '1.5'],
      ['STORE_HIGH_WATER_RATIO', '90%'],
      ['STORE_HIGH_WATER_RATIO', '-0.5'],
      ['FILE_SEED', 'tab\there'],
      ['FILE_SEED', 'é'],
      ['FILE_SWEEP_INTERVAL_SEC', '0'],
      ['CENSUS_INTERVAL_SEC', '0'],
      ['CENSUS_INTERVAL_SEC', '86401'],
      ['CENSUS_INTERVAL_SEC', '1.5'],
      ['CENSUS_INTERVAL_SEC', 'often'],
    ] as const) {
      expect(problems({ [k]: v }).join(), `${k}=${v}`).toContain(k);
    }
  });

  it('reads FILE_SEED_FILE once, without one trailing line break; refuses it with FILE_SEED or when unreadable', () => {
    const files: Record<string, string> = { '/run/secrets/seed': 'my seed value\r\n', '/run/secrets/lf': 'abc\n\n', '/run/secrets/empty': '\n' };
    const reads: string[] = [];
    const readFile = (path: string): string => {
      reads.push(path);
      const v = files[path];
      if (v === undefined) throw Object.assign(new Error('nope'), { code: 'ENOENT' });
      return v;
    };
    expect(loadConfig({ ...BASE, FILE_SEED_FILE: '/run/secrets/seed' }, { readFile }).fileSeed).toBe('my seed value');
    expect(reads).toEqual(['/run/secrets/seed']);
    const bad = (env: Record<string, string>): string[] => {
      try {
        loadConfig({ ...BASE, ...env }, { readFile });
      } catch (e) {
        if (e instanceof ConfigError) return [...e.problems];
        throw e;
      }
      return [];
    };
    expect(bad({ FILE_SEED_FILE: '/run/secrets/lf' })[0]).toMatch(/^FILE_SEED_FILE: /); // "abc\n" keeps a line break
    expect(bad({ FILE_SEED_FILE: '/run/secrets/empty' })[0]).toMatch(/^FILE_SEED_FILE: /);
    expect(bad({ FILE_SEED_FILE: '/missing' })).toEqual(['FILE_SEED_FILE: cannot read it (ENOENT)']);
    expect(bad({ FILE_SEED_FILE: '/run/secrets/seed', FILE_SEED: 'x' })).toEqual(['FILE_SEED, FILE_SEED_FILE: set at most one of them']);
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

  it('load period and admin port: defaults, range, distinct ports', () => {
    expect(loadConfig(BASE)).toMatchObject({ loadPeriodSec: 60, adminPort: null });
    expect(loadConfig({ ...BASE, LOAD_PERIOD_SEC: '2', CORE_ADMIN_PORT: '9091' })).toMatchObject({ loadPeriodSec: 2, adminPort: 9091 });
    expect(loadConfig({ ...BASE, CORE_ADMIN_PORT: '0', CORE_PORT: '0' }).adminPort).toBe(0);
    expect(loadConfig({ ...BASE, CORE_ADMIN_PORT: '' }).adminPort).toBeNull();
    expect(problems({ LOAD_PERIOD_SEC: '0' })).toEqual(['LOAD_PERIOD_SEC: must be ≥ 1']);
    expect(problems({ LOAD_PERIOD_SEC: '1.5' })).toEqual(['LOAD_PERIOD_SEC: must be a non-negative decimal integer']);
    expect(problems({ LOAD_PERIOD_SEC: '3601' })).toEqual(['LOAD_PERIOD_SEC: must be ≤ 3600']);
    expect(problems({ CORE_ADMIN_PORT: 'x' })).toEqual(['CORE_ADMIN_PORT: must be a port number (0..65535)']);
    expect(problems({ CORE_ADMIN_PORT: '65536' })).toEqual(['CORE_ADMIN_PORT: must be ≤ 65535']);
    expect(problems({ CORE_ADMIN_PORT: '8081' })).toEqual(['CORE_ADMIN_PORT: must differ from CORE_PORT']);
  });
});
