/** loadConfig: defaults, bounds and the readable list of problems (docs/PROTOCOL.md §7, docs/CONTRACT.md). */
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
      edgeRedis: { kind: 'single', url: 'redis://127.0.0.1:6379' },
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
      redisStartupWaitSec: 10,
      logLevel: 'info',
      handshakeBurstPerIp: 120,
      handshakeRatePerIpPerMin: 120,
      requestBurstPerIp: 600,
      requestRatePerIpPerMin: 1200,
      maxInFlightRequests: 1024,
      maxBodyBytesInFlight: 268435456,
      maxBodyBytesInFlightPerIp: 16777216,
      bodyMinBytesPerSec: 16384,
      bodyGraceMs: 2000,
      bodyIdleTimeoutMs: 5000,
      maxResponseBytesHeld: 268435456,
      writeTimeoutMs: 10000,
      metricsOnPublicPort: false,
      trustedProxies: [],
      trustedProxyHeader: 'x-forwarded-for',
      ipv6PrefixLength: 64,
      difficultyPeriodMin: 0,
      difficultyMinRequests: 100,
      difficultyOverloadFactor: 2,
      difficultyStep: 1,
      difficultyMax: 20,
      difficultyLatencyP99Ms: 1000,
      difficultyEventLoopUtilization: 0.85,
      difficultyMemoryRatio: 0.8,
      difficultyReleaseRatio: 0.75,
      difficultyLeaseMs: 10_000,
      difficultyCacheMs: 1000,
      adminPort: null,
      logClientIps: false,
      tlsCertFile: null,
      tlsKeyFile: null,
      tlsWatchIntervalMs: 1000,
      hstsMaxAgeSec: 31536000,
      requireHttps: false,
      coreCaFile: null,
      dashboard: false,
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('reads the throttling, proxy, adaptive-difficulty and admin settings', () => {
    const c = loadConfig({
      ...BASE,
      HANDSHAKE_BURST_PER_IP: '1',
      HANDSHAKE_RATE_PER_IP_PER_MIN: '6',
      REQUEST_BURST_PER_IP: '0',
      MAX_IN_FLIGHT_REQUESTS: '500',
      TRUSTED_PROXIES: '10.0.0.0/8, 192.168.1.7 ,fd00::/8,::1',
      TRUSTED_PROXY_HEADER: 'Forwarded',
      IPV6_PREFIX_LENGTH: '56',
      DIFFICULTY: '4',
      DIFFICULTY_PERIOD_MIN: '0.05',
      DIFFICULTY_MIN_REQUESTS: '10',
      DIFFICULTY_OVERLOAD_FACTOR: '1.5',
      DIFFICULTY_STEP: '3',
      DIFFICULTY_MAX: '12',
      ADMIN_PORT: '9090',
      LOG_CLIENT_IPS: 'true',
    });
    expect(c).toMatchObject({
      handshakeBurstPerIp: 1,
      handshakeRatePerIpPerMin: 6,
      requestBurstPerIp: 0,
      maxInFlightRequests: 500,
      trustedProxyHeader: 'forwarded',
      ipv6PrefixLength: 56,
      difficultyPeriodMin: 0.05,
      difficultyMinRequests: 10,
      difficultyOverloadFactor: 1.5,
      difficultyStep: 3,
      difficultyMax: 12,
      adminPort: 9090,
      logClientIps: true,
    });
    expect(c.trustedProxies).toEqual([
      { family: 'ipv4', address: '10.0.0.0', prefix: 8 },
      { family: 'ipv4', address: '192.168.1.7', prefix: 32 },
      { family: 'ipv6', address: 'fd00::', prefix: 8 },
      { family: 'ipv6', address: '::1', prefix: 128 },
    ]);
  });

  it('reads and checks the memory bounds (budgets, body rate, write timeout, public metrics)', () => {
    const c = loadConfig({
      ...BASE,
      MAX_BODY_BYTES_IN_FLIGHT: '67108864',
      MAX_BODY_BYTES_IN_FLIGHT_PER_IP: '8388608',
      BODY_MIN_BYTES_PER_SEC: '1000',
      BODY_GRACE_MS: '0',
      BODY_IDLE_TIMEOUT_MS: '700',
      MAX_RESPONSE_BYTES_HELD: '0',
      WRITE_TIMEOUT_MS: '2000',
      METRICS_ON_PUBLIC_PORT: 'true',
    });
    expect(c).toMatchObject({
      maxBodyBytesInFlight: 67108864,
      maxBodyBytesInFlightPerIp: 8388608,
      bodyMinBytesPerSec: 1000,
      bodyGraceMs: 0,
      bodyIdleTimeoutMs: 700,
      maxResponseBytesHeld: 0,
      writeTimeoutMs: 2000,
      metricsOnPublicPort: true,
    });
    expect(problems({ ...BASE, MAX_BODY_BYTES_IN_FLIGHT_PER_IP: '1000' })).toEqual([
      'MAX_BODY_BYTES_IN_FLIGHT_PER_IP: must be at least MAX_COMMAND_BODY_BYTES (1048576)',
    ]);
    expect(problems({ ...BASE, MAX_BODY_BYTES_IN_FLIGHT: '2000000', MAX_BODY_BYTES_IN_FLIGHT_PER_IP: '4000000' })).toEqual([
      'MAX_BODY_BYTES_IN_FLIGHT: must be at least MAX_BODY_BYTES_IN_FLIGHT_PER_IP (4000000)',
    ]);
    const bad = problems({ ...BASE, BODY_MIN_BYTES_PER_SEC: '0', BODY_IDLE_TIMEOUT_MS: 'soon', WRITE_TIMEOUT_MS: '-1', METRICS_ON_PUBLIC_PORT: 'yes' });
    for (const name of ['BODY_MIN_BYTES_PER_SEC', 'BODY_IDLE_TIMEOUT_MS', 'WRITE_TIMEOUT_MS', 'METRICS_ON_PUBLIC_PORT']) {
      expect(bad.some((p) => p.startsWith(`${name}:`)), name).toBe(true);
    }
  });

  it('refuses bad throttling, proxy and adaptive settings, each with its name', () => {
    const list = problems({
      ...BASE,
      HANDSHAKE_RATE_PER_IP_PER_MIN: '0',
      TRUSTED_PROXIES: '10.0.0.0/33',
      TRUSTED_PROXY_HEADER: 'x-real-ip',
      IPV6_PREFIX_LENGTH: '0',
      DIFFICULTY_PERIOD_MIN: '-1',
      DIFFICULTY_OVERLOAD_FACTOR: '1',
      DIFFICULTY_MAX: '256',
      ADMIN_PORT: 'x',
      LOG_CLIENT_IPS: 'yes',
    }).join('\n');
    for (const name of [
      'HANDSHAKE_RATE_PER_IP_PER_MIN',
      'TRUSTED_PROXIES',
      'TRUSTED_PROXY_HEADER',
      'IPV6_PREFIX_LENGTH',
      'DIFFICULTY_PERIOD_MIN',
      'DIFFICULTY_OVERLOAD_FACTOR',
      'DIFFICULTY_MAX',
      'ADMIN_PORT',
      'LOG_CLIENT_IPS',
    ]) {
      expect(list).toMatch(new RegExp(`^${name}: `, 'm'));
    }
    expect(problems({ ...BASE, DIFFICULTY: '8', DIFFICULTY_MAX: '6', DIFFICULTY_PERIOD_MIN: '1' })).toEqual([
      'DIFFICULTY_MAX: must be at least DIFFICULTY (8) when adaptive difficulty is on',
    ]);
    // with adaptive difficulty off, a static difficulty above DIFFICULTY_MAX is fine
    expect(loadConfig({ ...BASE, DIFFICULTY: '24' }).difficulty).toBe(24);
    expect(problems({ ...BASE, PORT: '9000', ADMIN_PORT: '9000' })).toEqual(['ADMIN_PORT: must differ from PORT']);
  });

  it('derives the edge prefix from REDIS_PREFIX, and prefers EDGE_REDIS_URL and EDGE_REDIS_PREFIX', () => {
    expect(loadConfig({ ...BASE, REDIS_PREFIX: 'r1:' }).edgeRedisPrefix).toBe('r1:edge:');
    const c = loadConfig({ ...BASE, EDGE_REDIS_URL: 'redis://edge:6380', EDGE_REDIS_PREFIX: 'e:' });
    expect(c.edgeRedis).toEqual({ kind: 'single', url: 'redis://edge:6380' });
    expect(c.edgeRedisPrefix).toBe('e:');
    expect(loadConfig({ EDGE_REDIS_URL: 'redis://edge:6380', INTERNAL_SECRET: BASE.INTERNAL_SECRET }).edgeRedis).toEqual({ kind: 'single', url: 'redis://edge:6380' });
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
    expect(list.join('\n')).toMatch(/^REDIS_URL: must be a redis:\/\/ or rediss:\/\/ URL/m);
    expect(list.join('\n')).toMatch(/^INTERNAL_SECRET: must be at least 16 characters/m);
    expect(list.join('\n')).toMatch(/^LOG_LEVEL: /m);
    expect(list.join('\n')).not.toContain('short-secret');
  });

  it('requires INTERNAL_SECRET and a Redis URL', () => {
    expect(problems({ REDIS_URL: BASE.REDIS_URL })).toEqual(['INTERNAL_SECRET: is required (at least 16 characters)']);
    expect(problems({ INTERNAL_SECRET: BASE.INTERNAL_SECRET })).toEqual([
      'EDGE_REDIS_URL: is required (or REDIS_URL, or a cluster or sentinel topology: EDGE_REDIS_CLUSTER_NODES, EDGE_REDIS_SENTINELS, …)',
    ]);
  });

  it('checks MAX_COMMAND_BODY_BYTES against the chunk size it must carry', () => {
    expect(problems({ ...BASE, MAX_COMMAND_BODY_BYTES: '100000' })).toEqual([
      'MAX_COMMAND_BODY_BYTES: must be at least 4·⌈MAX_CHUNK_SIZE/3⌉ + 4096 = 686764',
    ]);
    expect(loadConfig({ ...BASE, MAX_COMMAND_BODY_BYTES: '100000', MAX_CHUNK_SIZE: '60000' }).maxCommandBodyBytes).toBe(100000);
  });

  it('reads the HTTPS settings', () => {
    const c = loadConfig({
      ...BASE,
      TLS_CERT_FILE: '/tls/tls.crt',
      TLS_KEY_FILE: '/tls/tls.key',
      TLS_WATCH_INTERVAL_MS: '0',
      HSTS_MAX_AGE_SEC: '0',
      REQUIRE_HTTPS: 'true',
      CORE_URL: 'https://core.internal:8443/',
      CORE_CA_FILE: '/tls/core-ca.pem',
    });
    expect(c).toMatchObject({
      tlsCertFile: '/tls/tls.crt',
      tlsKeyFile: '/tls/tls.key',
      tlsWatchIntervalMs: 0,
      hstsMaxAgeSec: 0,
      requireHttps: true,
      coreUrl: 'https://core.internal:8443',
      coreCaFile: '/tls/core-ca.pem',
    });
    expect(loadConfig({ ...BASE, REQUIRE_HTTPS: '1', HSTS_MAX_AGE_SEC: '63072000' })).toMatchObject({ requireHttps: true, hstsMaxAgeSec: 63072000 });
    // an https core without an extra CA: the system roots (a public or mesh CA) are enough
    expect(loadConfig({ ...BASE, CORE_URL: 'https://core' }).coreCaFile).toBeNull();
  });

  it('refuses half a TLS pair, a CA for a plain-HTTP core, and bad HTTPS values', () => {
    expect(problems({ ...BASE, TLS_CERT_FILE: '/tls/tls.crt' })).toEqual(['TLS_KEY_FILE: must be set together with TLS_CERT_FILE']);
    expect(problems({ ...BASE, TLS_KEY_FILE: '/tls/tls.key' })).toEqual(['TLS_CERT_FILE: must be set together with TLS_KEY_FILE']);
    // an empty variable is unset, so this is half a pair too
    expect(problems({ ...BASE, TLS_CERT_FILE: '/tls/tls.crt', TLS_KEY_FILE: '' })).toEqual(['TLS_KEY_FILE: must be set together with TLS_CERT_FILE']);
    expect(problems({ ...BASE, CORE_CA_FILE: '/tls/ca.pem' })).toEqual(['CORE_CA_FILE: is only used with an https:// CORE_URL']);
    expect(problems({ ...BASE, CORE_URL: 'HTTP://core:8081', CORE_CA_FILE: '/tls/ca.pem' })).toEqual(['CORE_CA_FILE: is only used with an https:// CORE_URL']);
    expect(loadConfig({ ...BASE, CORE_URL: 'HTTPS://core:8443', CORE_CA_FILE: '/tls/ca.pem' }).coreCaFile).toBe('/tls/ca.pem');
    const list = problems({ ...BASE, REQUIRE_HTTPS: 'yes', HSTS_MAX_AGE_SEC: '63072001', TLS_WATCH_INTERVAL_MS: '-1', CORE_URL: 'ftp://core' }).join('\n');
    for (const name of ['REQUIRE_HTTPS', 'HSTS_MAX_AGE_SEC', 'TLS_WATCH_INTERVAL_MS']) expect(list).toMatch(new RegExp(`^${name}: `, 'm'));
    expect(list).toMatch(/^CORE_URL: must start with http:\/\/ or https:\/\//m);
  });

  it('reads DASHBOARD as a boolean, off by default', () => {
    expect(loadConfig({ ...BASE, DASHBOARD: '1' }).dashboard).toBe(true);
    expect(loadConfig({ ...BASE, DASHBOARD: 'false' }).dashboard).toBe(false);
    expect(problems({ ...BASE, DASHBOARD: 'on' })).toEqual(['DASHBOARD: must be true or false, got "on"']);
  });

  it('treats an empty variable as unset and strips a trailing slash from CORE_URL', () => {
    expect(loadConfig({ ...BASE, DIFFICULTY: '', CORE_URL: 'http://core:9000/' })).toMatchObject({ difficulty: 0, coreUrl: 'http://core:9000' });
  });
});
