/** The answer-bound settings (DEVIATION D19): defaults, and readable refusals of bad values. */
import { describe, expect, it } from 'vitest';
import { ConfigError, downloadAnswerBound, loadConfig } from '../src/config.js';

const BASE = { REDIS_URL: 'redis://127.0.0.1:6379', INTERNAL_SECRET: 'x'.repeat(16) };
const problems = (env: Record<string, string>): string[] => {
  try {
    loadConfig({ ...BASE, ...env });
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return [...e.problems];
    throw e;
  }
};

describe('answer bounds config', () => {
  it('has the documented defaults', () => {
    const c = loadConfig(BASE);
    expect([c.maxDownloadBytes, c.maxDownloadsPerHpk, c.maxResponseBytesInFlight, c.writeTimeoutMs]).toEqual([4_194_304, 2, 67_108_864, 20_000]);
    expect(downloadAnswerBound(c.maxDownloadBytes, c.maxMessageBytes)).toBeLessThanOrEqual(c.maxResponseBytesInFlight);
  });

  it('refuses bad values with the variable named', () => {
    expect(problems({ MAX_DOWNLOAD_BYTES: '0' })).toEqual(['MAX_DOWNLOAD_BYTES: must be ≥ 1']);
    expect(problems({ MAX_DOWNLOADS_PER_HPK: 'two' })[0]).toMatch(/^MAX_DOWNLOADS_PER_HPK: /);
    expect(problems({ CORE_WRITE_TIMEOUT_MS: '5' })).toEqual(['CORE_WRITE_TIMEOUT_MS: must be ≥ 100']);
    expect(problems({ CORE_MAX_RESPONSE_BYTES_IN_FLIGHT: '1000000' })[0]).toMatch(/^CORE_MAX_RESPONSE_BYTES_IN_FLIGHT: must hold one download answer, ≥ \d+/);
  });
});
