/**
 * TLS in-process: reading and checking a pair, the reloader (explicit reload, a bad pair kept out,
 * the file watch), HSTS and REQUIRE_HTTPS on the app behind a real https server, and the core client
 * over TLS with an extra CA and keep-alive. Certificates come from openssl at test time.
 */
import { readFileSync, unwatchFile, watchFile, writeFileSync } from 'node:fs';
import type http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RelayError, b64 } from '@zax/protocol';
import { makeCa, replaceFile, type IssuedCert, type TestCa } from '../../../test/https/certs.js';
import { createCoreClient } from '../src/core-client.js';
import { TlsPairError, readCaFile, readTlsPair, tlsReloader, type TlsReloader } from '@zax/service';
import { SECRET, request, startGatekeeper, type Gatekeeper } from './helpers.js';

const silent = pino({ level: 'silent' });

let ca: TestCa;
let otherCa: TestCa;
let a: IssuedCert;
let b: IssuedCert;

beforeAll(() => {
  ca = makeCa();
  otherCa = makeCa('Other CA');
  a = ca.issue('a');
  b = ca.issue('b');
});
afterAll(() => {
  ca?.remove();
  otherCa?.remove();
});

const problemsOf = (f: () => unknown): readonly string[] => {
  try {
    f();
  } catch (err) {
    if (err instanceof TlsPairError) return err.problems;
    throw err;
  }
  throw new Error('expected a TlsPairError');
};

async function listenHttps(options: https.ServerOptions, handler: http.RequestListener): Promise<{ server: https.Server; port: number; handshakes: () => number }> {
  const server = https.createServer(options, handler);
  let handshakes = 0;
  server.on('secureConnection', () => handshakes++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, handshakes: () => handshakes };
}

async function closeHttps(server: https.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

function fingerprintAt(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: ca.caPem });
    s.once('secureConnect', () => {
      const fp = s.getPeerCertificate().fingerprint256;
      s.destroy();
      resolve(fp);
    });
    s.once('error', reject);
  });
}

describe('readTlsPair', () => {
  it('reads a good pair: TLS ≥ 1.2 options and the certificate facts', () => {
    const p = readTlsPair(a.certFile, a.keyFile);
    expect(p.options.minVersion).toBe('TLSv1.2');
    expect(p.info.fingerprint256).toBe(a.fingerprint256);
    expect(p.info.serialNumber).toBe(a.serialNumber);
    expect(p.info.validToMs).toBeGreaterThan(Date.now() + 29 * 86_400_000);
  });

  it('names every problem by variable, never the contents', () => {
    expect(problemsOf(() => readTlsPair('/nope/cert.pem', '/nope/key.pem'))).toEqual([
      'TLS_CERT_FILE: cannot read it (ENOENT)',
      'TLS_KEY_FILE: cannot read it (ENOENT)',
    ]);
    expect(problemsOf(() => readTlsPair(a.keyFile, a.certFile))).toEqual([
      'TLS_CERT_FILE: is not a PEM certificate',
      'TLS_KEY_FILE: is not an unencrypted PEM private key',
    ]);
    const mismatch = problemsOf(() => readTlsPair(a.certFile, b.keyFile));
    expect(mismatch).toHaveLength(1);
    expect(mismatch[0]).toMatch(/^TLS_KEY_FILE: does not make a usable pair with TLS_CERT_FILE \(key values mismatch\)$/);
    expect(problemsOf(() => readCaFile('/nope/ca.pem'))).toEqual(['CORE_CA_FILE: cannot read it (ENOENT)']);
    expect(problemsOf(() => readCaFile(a.keyFile))).toEqual(['CORE_CA_FILE: is not a PEM certificate']);
    expect(readCaFile(ca.caFile).toString()).toBe(ca.caPem);
  });
});

/**
 * Listens to the stat watch of `files`. node:fs keeps one watch per file and calls its listeners in
 * the order they were added, so a listener added after the reloader's hears every change in the
 * same call, just after it (and hears them alone once the reloader has stopped listening).
 */
function listenAfter(files: string[]): { bothChanged(): Promise<void>; stop(): void } {
  let pending = new Set<string>();
  let done: (() => void) | null = null;
  const listeners = new Map<string, () => void>();
  for (const f of files) {
    const l = (): void => {
      pending.delete(f);
      if (pending.size === 0 && done !== null) done();
    };
    listeners.set(f, l);
    watchFile(f, { persistent: false }, l);
  }
  return {
    bothChanged() {
      pending = new Set(files);
      return new Promise<void>((resolve) => (done = resolve));
    },
    stop: () => listeners.forEach((l, f) => unwatchFile(f, l)),
  };
}

const DEBOUNCE_MS = 30;

describe('tlsReloader', () => {
  let reloader: TlsReloader | null = null;
  let server: https.Server | null = null;
  afterEach(async () => {
    reloader?.close();
    reloader = null;
    if (server !== null) await closeHttps(server);
    server = null;
  });

  /** A server on copies of `a`'s files (tests overwrite them). */
  async function serve(watchIntervalMs: number): Promise<{ port: number; cert: string; key: string; outcomes: string[]; nextOutcome(): Promise<string> }> {
    const cert = `${ca.dir}/live-${Math.random().toString(36).slice(2)}.pem`;
    const key = cert.replace(/\.pem$/, '.key');
    writeFileSync(cert, a.certPem);
    writeFileSync(key, a.keyPem);
    const initial = readTlsPair(cert, key);
    const s = await listenHttps(initial.options, (_req, res) => res.end('ok'));
    server = s.server;
    const outcomes: string[] = [];
    const waiting: ((outcome: string) => void)[] = [];
    const srv = s.server;
    reloader = tlsReloader({
      certFile: cert,
      keyFile: key,
      initial,
      apply: (o) => srv.setSecureContext(o),
      log: silent,
      onReload: (outcome, info) => {
        outcomes.push(`${outcome}:${info.fingerprint256}`);
        for (const w of waiting.splice(0)) w(outcomes.at(-1)!);
      },
      watchIntervalMs,
      debounceMs: DEBOUNCE_MS,
    });
    const nextOutcome = (): Promise<string> => new Promise((resolve) => waiting.push(resolve));
    return { port: s.port, cert, key, outcomes, nextOutcome };
  }

  it('reload() serves the new pair to the next connection', async () => {
    const s = await serve(0);
    expect(await fingerprintAt(s.port)).toBe(a.fingerprint256);
    replaceFile(s.cert, b.certPem);
    replaceFile(s.key, b.keyPem);
    expect(reloader!.reload('test')).toBe(true);
    expect(reloader!.current.fingerprint256).toBe(b.fingerprint256);
    expect(await fingerprintAt(s.port)).toBe(b.fingerprint256);
    expect(s.outcomes).toEqual([`ok:${b.fingerprint256}`]);
  });

  it('a bad pair (half-written, mismatched, missing) keeps the current one', async () => {
    const s = await serve(0);
    replaceFile(s.cert, b.certPem); // the key is still a's
    expect(reloader!.reload('test')).toBe(false);
    replaceFile(s.key, 'garbage');
    expect(reloader!.reload('test')).toBe(false);
    expect(reloader!.current.fingerprint256).toBe(a.fingerprint256);
    expect(await fingerprintAt(s.port)).toBe(a.fingerprint256);
    expect(s.outcomes).toEqual([`failed:${a.fingerprint256}`, `failed:${a.fingerprint256}`]);
    replaceFile(s.key, b.keyPem);
    expect(reloader!.reload('test')).toBe(true);
    expect(await fingerprintAt(s.port)).toBe(b.fingerprint256);
  });

  it('the watch reloads after both files change, and stops on close()', async () => {
    const s = await serve(20);
    const witness = listenAfter([s.cert, s.key]);
    try {
      const reloaded = s.nextOutcome();
      replaceFile(s.cert, b.certPem);
      replaceFile(s.key, b.keyPem);
      // Both files were replaced back to back: the debounce reads them together, so no failed load.
      expect(await reloaded).toBe(`ok:${b.fingerprint256}`);
      expect(await fingerprintAt(s.port)).toBe(b.fingerprint256);
      reloader!.close();
      // After close, the watch sees both files change; a still-listening reloader would have
      // started its debounce timer in that same call, so it would fire before this one.
      const changed = witness.bothChanged();
      replaceFile(s.cert, a.certPem);
      replaceFile(s.key, a.keyPem);
      await changed;
      await new Promise((r) => setTimeout(r, DEBOUNCE_MS));
    } finally {
      witness.stop();
    }
    expect(s.outcomes).toHaveLength(1);
    expect(await fingerprintAt(s.port)).toBe(b.fingerprint256);
  });
});

describe('HSTS and REQUIRE_HTTPS on the app', () => {
  let gk: Gatekeeper | null = null;
  let server: https.Server | null = null;
  afterEach(async () => {
    if (server !== null) await closeHttps(server);
    server = null;
    await gk?.close();
    gk = null;
  });

  const httpsPost = (port: number, path: string, body: string): Promise<{ status: number; headers: Record<string, unknown> }> =>
    new Promise((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port, path, method: 'POST', ca: ca.caPem, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
      });
      req.on('error', reject);
      req.end(body);
    });

  async function tlsFront(env: Record<string, string>): Promise<{ tlsPort: number; plainPort: number }> {
    gk = await startGatekeeper({ env });
    const s = await listenHttps(readTlsPair(a.certFile, a.keyFile).options, gk.app.handler);
    server = s.server;
    return { tlsPort: s.port, plainPort: gk.port };
  }

  const START = b64(Buffer.alloc(32, 3));

  it('HSTS on every answer over TLS (API, errors, health), never over plain HTTP', async () => {
    const { tlsPort, plainPort } = await tlsFront({ REQUIRE_HTTPS: 'true' });
    for (const path of ['/start_session', '/verify_session', '/nope']) {
      expect((await httpsPost(tlsPort, path, START)).headers['strict-transport-security']).toBe('max-age=31536000');
    }
    const plain = await request(plainPort, { path: '/start_session', body: START });
    expect(plain.status).toBe(200); // loopback is allowed in production mode
    expect(plain.headers['strict-transport-security']).toBeUndefined();
  });

  it('HSTS_MAX_AGE_SEC sets the max-age; 0 turns the header off', async () => {
    const { tlsPort } = await tlsFront({ HSTS_MAX_AGE_SEC: '600' });
    expect((await httpsPost(tlsPort, '/start_session', START)).headers['strict-transport-security']).toBe('max-age=600');
    await closeHttps(server!);
    server = null;
    await gk!.close();
    const off = await tlsFront({ HSTS_MAX_AGE_SEC: '0' });
    const r = await httpsPost(off.tlsPort, '/start_session', START);
    expect(r.status).toBe(200);
    expect(r.headers['strict-transport-security']).toBeUndefined();
  });

  it('HSTS when a trusted proxy says the client used https', async () => {
    gk = await startGatekeeper({ env: { TRUSTED_PROXIES: '127.0.0.1', REQUIRE_HTTPS: 'true' } });
    const r = await request(gk.port, { path: '/start_session', body: START, headers: { 'x-forwarded-proto': 'https' } });
    expect(r.status).toBe(200);
    expect(r.headers['strict-transport-security']).toBe('max-age=31536000');
  });
});

describe('core client over TLS', () => {
  let server: https.Server | null = null;
  afterEach(async () => {
    if (server !== null) await closeHttps(server);
    server = null;
  });

  async function tlsCore(cert: IssuedCert) {
    const s = await listenHttps({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.headers['x-zax-internal-secret'] !== SECRET) return void res.writeHead(403).end();
        if (req.url === '/internal/sessions') {
          res.writeHead(200, { 'content-type': 'application/json' });
          return void res.end(JSON.stringify({ v: 1, status: 'ok', relaySessionPk: Buffer.alloc(32, 7).toString('base64') }));
        }
        res.writeHead(200, { 'content-type': 'text/plain' }).end('0');
      });
    });
    server = s.server;
    return s;
  }

  it('trusts the extra CA, sends the secret, and keeps TLS connections alive across requests', async () => {
    const core = await tlsCore(otherCa.issue('core'));
    const client = createCoreClient({ coreUrl: `https://127.0.0.1:${core.port}`, internalSecret: SECRET, timeoutMs: 2000, log: silent, ca: readFileSync(otherCa.caFile) });
    try {
      for (let i = 0; i < 5; i++) {
        const res = await client.send('/command', Buffer.from('x'), 'text/plain');
        expect(res.statusCode).toBe(200);
        res.body.resume();
        await new Promise((r) => res.body.on('end', r));
      }
      const mint = await client.mint({ v: 1, handshakeId: b64(Buffer.alloc(32, 1)), clientToken: b64(Buffer.alloc(32, 2)), relayToken: b64(Buffer.alloc(32, 3)), expiresAtMs: Date.now() + 60_000 });
      expect(mint.status).toBe('ok');
      // Six requests, kept alive: undici's pool may open a second connection when a request follows
      // the previous body's end in the same tick, but never one per request.
      expect(core.handshakes()).toBeLessThanOrEqual(2);
    } finally {
      client.close();
    }
  });

  it('a core certificate it cannot verify is "busy" (503), like any failure to reach the core', async () => {
    const core = await tlsCore(otherCa.issue('core2'));
    // Only the system roots: the test CA is unknown.
    const bare = createCoreClient({ coreUrl: `https://127.0.0.1:${core.port}`, internalSecret: SECRET, timeoutMs: 2000, log: silent });
    // The wrong extra CA.
    const wrong = createCoreClient({ coreUrl: `https://127.0.0.1:${core.port}`, internalSecret: SECRET, timeoutMs: 2000, log: silent, ca: ca.caPem });
    try {
      for (const c of [bare, wrong]) {
        const err = await c.send('/command', Buffer.from('x'), 'text/plain').then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(RelayError);
        expect((err as RelayError).code).toBe('busy');
      }
      expect(await bare.load()).toBeNull();
    } finally {
      bare.close();
      wrong.close();
    }
  });
});
