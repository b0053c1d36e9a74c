/**
 * Start-up refusals of the TLS settings on the compiled processes: a pair that is missing, half
 * configured or does not match, and an unreadable CORE_CA_FILE, stop the gatekeeper (and the same
 * for the core's CORE_TLS_*) with exit 1 and a line that names the variable and the reason.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { CORE_MAIN, GATEKEEPER_MAIN } from '../support/relay.js';
import { makeCa, type IssuedCert, type TestCa } from './certs.js';

let ca: TestCa;
let a: IssuedCert;
let b: IssuedCert;

beforeAll(() => {
  ca = makeCa();
  a = ca.issue('a');
  b = ca.issue('b');
});
afterAll(() => ca?.remove());

function run(main: string, env: Record<string, string>): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [main], {
      env: { PATH: process.env.PATH ?? '', REDIS_URL: inject('redisUrl'), INTERNAL_SECRET: 'x'.repeat(16), PORT: '0', CORE_PORT: '0', HOST: '127.0.0.1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      // Started after all: stop it so the test fails on the exit code, not a timeout.
      if (stdout.includes('"msg":"listening"')) child.kill('SIGKILL');
    });
    child.on('exit', (code) => resolve({ code, stderr, stdout }));
  });
}

describe('gatekeeper start-up with TLS settings', () => {
  it('exits 1 when TLS_CERT_FILE cannot be read', async () => {
    const r = await run(GATEKEEPER_MAIN, { TLS_CERT_FILE: join(ca.dir, 'missing.pem'), TLS_KEY_FILE: a.keyFile });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('TLS_CERT_FILE: cannot read it (ENOENT)');
  });

  it('exits 1 when only one of the pair is set', async () => {
    const r = await run(GATEKEEPER_MAIN, { TLS_CERT_FILE: a.certFile });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('TLS_KEY_FILE: must be set together with TLS_CERT_FILE');
  });

  it('exits 1 when the key does not belong to the certificate, without printing either', async () => {
    const r = await run(GATEKEEPER_MAIN, { TLS_CERT_FILE: a.certFile, TLS_KEY_FILE: b.keyFile });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/TLS_KEY_FILE: does not make a usable pair with TLS_CERT_FILE \(.*mismatch.*\)/);
    expect(r.stderr).not.toContain('PRIVATE KEY');
  });

  it('exits 1 when CORE_CA_FILE cannot be read, or is set for a plain-HTTP core', async () => {
    const unreadable = await run(GATEKEEPER_MAIN, { CORE_URL: 'https://127.0.0.1:1', CORE_CA_FILE: join(ca.dir, 'nope.pem') });
    expect(unreadable.code).toBe(1);
    expect(unreadable.stderr).toContain('CORE_CA_FILE: cannot read it (ENOENT)');
    const plain = await run(GATEKEEPER_MAIN, { CORE_URL: 'http://127.0.0.1:1', CORE_CA_FILE: ca.caFile });
    expect(plain.code).toBe(1);
    expect(plain.stderr).toContain('CORE_CA_FILE: is only used with an https:// CORE_URL');
  });
});

describe('core start-up with CORE_TLS_*', () => {
  it('exits 1 when CORE_TLS_KEY_FILE cannot be read, or does not match', async () => {
    const missing = await run(CORE_MAIN, { CORE_TLS_CERT_FILE: a.certFile, CORE_TLS_KEY_FILE: join(ca.dir, 'missing.key') });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('CORE_TLS_KEY_FILE: cannot read it (ENOENT)');
    const mismatch = await run(CORE_MAIN, { CORE_TLS_CERT_FILE: a.certFile, CORE_TLS_KEY_FILE: b.keyFile });
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toContain('CORE_TLS_KEY_FILE: does not make a usable pair with CORE_TLS_CERT_FILE');
  });

  it('exits 1 when only one of the pair is set', async () => {
    const r = await run(CORE_MAIN, { CORE_TLS_CERT_FILE: a.certFile });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('CORE_TLS_CERT_FILE, CORE_TLS_KEY_FILE: set both or neither');
  });
});
