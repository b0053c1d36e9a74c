/**
 * HTTPS end to end on real processes: a throwaway CA and certificates made with openssl at test
 * time; the gatekeeper terminating TLS (REQUIRE_HTTPS on), the core serving HTTPS to it with a
 * certificate from a second CA that only the gatekeeper trusts (CORE_CA_FILE). @zax/client (with a
 * fetch that trusts the test CA) and the published glow.ts (in a child process with
 * NODE_EXTRA_CA_CERTS) complete full exchanges; HSTS, the TLS floor and the core link are checked.
 */
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { Mailbox, RelayHttpError, RelaySession, generateIdentity } from '@zax/client';
import { GATEKEEPER_MAIN, Relay, ServiceProcess } from '../support/relay.js';
import { freePort } from '../support/redis-server.js';
import { makeCa, type IssuedCert, type TestCa } from './certs.js';
import { bundleGlowExchange, runGlowExchange } from './glow-child.js';
import { caFetch, rawRequest } from './https-fetch.js';

let ca: TestCa;
let coreCa: TestCa;
let gkCert: IssuedCert;
let relay: Relay;
let corePort: number;
let glowScript: string;
const extra: ServiceProcess[] = [];

beforeAll(async () => {
  ca = makeCa('Zax test CA');
  coreCa = makeCa('Zax core-link CA');
  gkCert = ca.issue('gatekeeper');
  const coreCert = coreCa.issue('core');
  [relay, glowScript] = await Promise.all([
    Relay.start({ redisUrl: inject('redisUrl'), tls: gkCert, coreTls: coreCert, adminPorts: true, env: { REQUIRE_HTTPS: 'true' } }),
    bundleGlowExchange(ca.dir),
  ]);
  corePort = relay.core.port;
});

afterAll(async () => {
  await Promise.all(extra.map((p) => p.stop()));
  await relay?.stop();
  ca?.remove();
  coreCa?.remove();
});

/** TLS handshake only: the protocol the server agreed to, or the error it caused. */
function tlsProbe(port: number, opts: tls.ConnectionOptions): Promise<{ protocol: string | null; fingerprint256: string } | { error: string }> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: ca.caPem, ...opts });
    s.once('secureConnect', () => {
      const r = { protocol: s.getProtocol(), fingerprint256: s.getPeerCertificate().fingerprint256 };
      s.destroy();
      resolve(r);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve({ error: `${e.code ?? ''} ${e.message}` }));
  });
}

describe('HTTPS at the gatekeeper', () => {
  it('serves its URLs over https', () => {
    expect(relay.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it('@zax/client: handshake, send, receive and delete over verified TLS, every answer with HSTS', async () => {
    const f = caFetch(ca.caPem);
    try {
      const alice = generateIdentity();
      const bob = generateIdentity();
      const a = Mailbox.create({ url: relay.url, identity: alice, guests: [bob.publicKey], fetch: f.fetch });
      const b = Mailbox.create({ url: relay.url, identity: bob, guests: [alice.publicKey], fetch: f.fetch });
      const { token } = await a.send(bob.publicKey, 'hello over TLS');
      expect(await b.count()).toBe(1);
      const got = await b.receive();
      expect(got.map((m) => m.text)).toEqual(['hello over TLS']);
      expect(got[0]!.status).toBe('decrypted');
      expect(await b.delete([got[0]!.nonce])).toBe(0); // messages left
      expect(await a.messageStatus(token)).toBe(-2);

      const paths = new Set(f.seen.map((s) => new URL(s.url).pathname));
      expect(paths).toEqual(new Set(['/start_session', '/verify_session', '/prove', '/command']));
      for (const s of f.seen) {
        expect(s.status).toBe(200);
        expect(s.authorized).toBe(true);
        expect(s.protocol).toBe('TLSv1.3');
        expect(s.hsts).toBe('max-age=31536000');
      }
    } finally {
      f.close();
    }
  });

  it('glow.ts: connect, upload to a guest, the guest downloads and reads it, delete (child process, NODE_EXTRA_CA_CERTS)', async () => {
    const r = await runGlowExchange(glowScript, relay.url, { NODE_EXTRA_CA_CERTS: ca.caFile });
    expect(r).toEqual({
      ok: true,
      connected: 0,
      tokenLength: 44,
      countBefore: 1,
      data: ['over TLS, ünïcødé ✓'],
      senderTags: ['Alice'],
      leftAfterDelete: 0,
      countAfter: 0,
    });
  });

  it('glow.ts without the test CA cannot connect: the certificate is really checked', async () => {
    const r = await runGlowExchange(glowScript, relay.url, {});
    expect(r.ok).toBe(false);
  });

  it('accepts TLS 1.2 and 1.3; the server itself refuses TLS 1.1', async () => {
    expect(await tlsProbe(relay.gatekeeper.port, { maxVersion: 'TLSv1.2' })).toMatchObject({ protocol: 'TLSv1.2', fingerprint256: gkCert.fingerprint256 });
    expect(await tlsProbe(relay.gatekeeper.port, {})).toMatchObject({ protocol: 'TLSv1.3' });
    // The client offers 1.0–1.1 (its own floor lowered): the refusal is the server's protocol_version alert.
    const old = await tlsProbe(relay.gatekeeper.port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
    expect(old).toMatchObject({ error: expect.stringMatching(/alert protocol version/) });
  });

  it('HSTS on errors over TLS too; HSTS_MAX_AGE_SEC is the max-age', async () => {
    const r = await rawRequest({ url: `${relay.url}/verify_session`, body: 'x', ca: ca.caPem });
    expect(r.status).toBe(400);
    expect(r.headers['strict-transport-security']).toBe('max-age=31536000');
  });

  it('the admin port stays plain HTTP (probes need no TLS) and reports the certificate', async () => {
    const admin = relay.adminUrls[0]!;
    expect(admin).toMatch(/^http:\/\//);
    const ready = await fetch(`${admin}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.headers.get('strict-transport-security')).toBeNull();
    const metrics = await (await fetch(`${admin}/metrics`)).text();
    const notAfter = Number(/^zax_gatekeeper_tls_certificate_not_after_seconds (\d+)$/m.exec(metrics)?.[1]);
    expect(notAfter * 1000).toBeGreaterThan(Date.now() + 29 * 86_400_000);
    expect(metrics).toMatch(/^zax_gatekeeper_tls_certificate_loads_total\{outcome="ok"\} 1$/m);
    // /readyz on the TLS port as well, for load balancers that probe the public port.
    expect((await rawRequest({ url: `${relay.url}/readyz`, method: 'GET', ca: ca.caPem })).status).toBe(200);
  });

  it('a client that speaks plain HTTP to the TLS port gets no answer', async () => {
    await expect(rawRequest({ url: `http://127.0.0.1:${relay.gatekeeper.port}/start_session`, body: 'x' })).rejects.toThrow();
  });
});

describe('TLS on the core link', () => {
  it('the core serves only HTTPS, with the core-link CA', async () => {
    await expect(rawRequest({ url: `http://127.0.0.1:${corePort}/livez`, method: 'GET' })).rejects.toThrow();
    // The client CA does not vouch for the core's certificate.
    await expect(rawRequest({ url: `https://127.0.0.1:${corePort}/livez`, method: 'GET', ca: ca.caPem })).rejects.toThrow(/certificate/);
    const live = await rawRequest({ url: `https://127.0.0.1:${corePort}/livez`, method: 'GET', ca: coreCa.caPem });
    expect(live.status).toBe(200);
  });

  it('the shared secret is still required over TLS', async () => {
    const r = await rawRequest({ url: `https://127.0.0.1:${corePort}/internal/sessions`, body: '{}', ca: coreCa.caPem, headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(403);
  });

  it('carries a full session (the client test above went through it); a gatekeeper that does not trust the core answers 503', async () => {
    const port = await freePort();
    const wrongCa = new ServiceProcess(
      'gatekeeper-wrong-ca',
      GATEKEEPER_MAIN,
      { ...relay.gatekeeper.env, PORT: String(port), ADMIN_PORT: '', CORE_CA_FILE: ca.caFile },
      port,
      { ca: ca.caPem },
    );
    extra.push(wrongCa);
    await wrongCa.start();
    const unverified = /"reason":"(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)"[^\n]*"msg":"core unavailable"/;
    const logged = wrongCa.waitForLog((l) => unverified.test(l));
    const f = caFetch(ca.caPem);
    try {
      const s = new RelaySession({ url: `https://127.0.0.1:${port}`, identity: generateIdentity(), fetch: f.fetch });
      const err = await s.connect().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RelayHttpError);
      expect((err as RelayHttpError).status).toBe(503);
      expect((err as RelayHttpError).path).toBe('verify_session');
    } finally {
      f.close();
    }
    await logged; // the "core unavailable" line names the certificate problem
    // and the relay's own gatekeeper, which trusts the core CA, is fine
    const f2 = caFetch(ca.caPem);
    try {
      expect(await new RelaySession({ url: relay.url, identity: generateIdentity(), fetch: f2.fetch }).connect()).toBe(0);
    } finally {
      f2.close();
    }
  });
});
