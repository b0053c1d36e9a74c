/**
 * Certificate rotation at a running gatekeeper (real process, real TLS): SIGHUP reloads the pair and
 * the next TLS connection sees the new certificate; a bad new pair is logged and the old one kept;
 * with the file watch on, replacing the files (here the Kubernetes Secret way: a `..data` symlink
 * swapped to a new directory) is picked up without a signal.
 */
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { RelaySession, generateIdentity } from '@zax/client';
import { GATEKEEPER_MAIN, Relay, ServiceProcess } from '../support/relay.js';
import { freePort } from '../support/redis-server.js';
import { makeCa, replaceFile, type IssuedCert, type TestCa } from './certs.js';
import { caFetch } from './https-fetch.js';

let ca: TestCa;
let first: IssuedCert;
let relay: Relay;
const extra: ServiceProcess[] = [];

beforeAll(async () => {
  ca = makeCa();
  first = ca.issue('live');
  // The watch is off here (SIGHUP only), so what the signal does is seen alone.
  relay = await Relay.start({ redisUrl: inject('redisUrl'), tls: first, adminPorts: true, env: { TLS_WATCH_INTERVAL_MS: '0' } });
});

afterAll(async () => {
  await Promise.all(extra.map((p) => p.stop()));
  await relay?.stop();
  ca?.remove();
});

/** The certificate a new TLS connection is served: fingerprint and serial. */
function served(port: number): Promise<{ fingerprint256: string; serialNumber: string }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: ca.caPem });
    s.once('secureConnect', () => {
      const c = s.getPeerCertificate();
      s.destroy();
      resolve({ fingerprint256: c.fingerprint256, serialNumber: c.serialNumber.toUpperCase() });
    });
    s.once('error', reject);
  });
}

async function connects(url: string): Promise<boolean> {
  const f = caFetch(ca.caPem);
  try {
    return (await new RelaySession({ url, identity: generateIdentity(), fetch: f.fetch }).connect()) === 0;
  } finally {
    f.close();
  }
}

const metric = async (name: string): Promise<number> => {
  const text = await (await fetch(`${relay.adminUrls[0]}/metrics`)).text();
  return Number(new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
};

describe('certificate reload', () => {
  it('SIGHUP: the next TLS connection sees the new certificate (serial and fingerprint)', async () => {
    const port = relay.gatekeeper.port;
    expect(await served(port)).toEqual({ fingerprint256: first.fingerprint256, serialNumber: first.serialNumber });
    const next = ca.issue('next');
    replaceFile(first.certFile, next.certPem);
    replaceFile(first.keyFile, next.keyPem);
    // Without the signal (and with the watch off) nothing changes: here, and at the end of the
    // suite no reload was ever caused by a file change.
    expect((await served(port)).fingerprint256).toBe(first.fingerprint256);

    // The gatekeeper logs the reload once the new pair is in use: the next connection gets it.
    const reloaded = /"reason":"SIGHUP","fingerprint256":"[0-9A-F:]+"[^\n]*"changed":true[^\n]*"msg":"tls certificate loaded"/;
    const logged = relay.gatekeeper.waitForLog((l) => reloaded.test(l));
    relay.gatekeeper.signal('SIGHUP');
    await logged;
    const now = await served(port);
    expect(now.fingerprint256).toBe(next.fingerprint256);
    expect(now.serialNumber).toBe(next.serialNumber);
    expect(now.serialNumber).not.toBe(first.serialNumber);
    expect(await connects(relay.url)).toBe(true);
    expect(await metric('zax_gatekeeper_tls_certificate_loads_total{outcome="ok"}')).toBe(2);
  });

  it('a bad new pair is logged and the certificate in use is kept', async () => {
    const port = relay.gatekeeper.port;
    const before = await served(port);
    const other = ca.issue('other');
    // The new certificate with a key that does not belong to it.
    replaceFile(first.certFile, other.certPem);
    replaceFile(first.keyFile, ca.issue('unrelated').keyPem);
    const failed = (l: string): boolean => l.includes('"msg":"tls reload failed; keeping the current certificate"');
    let logged = relay.gatekeeper.waitForLog(failed);
    relay.gatekeeper.signal('SIGHUP');
    expect(await logged).toMatch(/does not make a usable pair/);
    expect((await served(port)).fingerprint256).toBe(before.fingerprint256);
    expect(await connects(relay.url)).toBe(true);
    expect(await metric('zax_gatekeeper_tls_certificate_loads_total{outcome="failed"}')).toBe(1);

    // A key file that is not PEM is the same: logged, old pair kept.
    replaceFile(first.keyFile, 'not a key');
    logged = relay.gatekeeper.waitForLog(failed);
    relay.gatekeeper.signal('SIGHUP');
    await logged;
    expect(await metric('zax_gatekeeper_tls_certificate_loads_total{outcome="failed"}')).toBe(2);
    expect((await served(port)).fingerprint256).toBe(before.fingerprint256);

    // Fixed files and another SIGHUP: in use at once.
    replaceFile(first.keyFile, other.keyPem);
    logged = relay.gatekeeper.waitForLog((l) => l.includes('"reason":"SIGHUP"') && l.includes('"msg":"tls certificate loaded"'));
    relay.gatekeeper.signal('SIGHUP');
    await logged;
    expect((await served(port)).fingerprint256).toBe(other.fingerprint256);
    // The watch is off: no reload in this suite came from a file change.
    expect(relay.gatekeeper.logs.filter((l) => l.includes('"reason":"file changed"'))).toEqual([]);
  });

  it('the file watch picks up a Kubernetes-style Secret update (symlink swap) without a signal', async () => {
    // <dir>/tls.crt → ..data/tls.crt, ..data → ..v1; an update writes ..v2 and renames a new ..data link over the old one.
    const dir = join(ca.dir, 'secret');
    const v1 = ca.issue('watched-1');
    const v2 = ca.issue('watched-2');
    const version = (name: string, cert: IssuedCert): void => {
      mkdirSync(join(dir, name), { recursive: true });
      writeFileSync(join(dir, name, 'tls.crt'), cert.certPem);
      writeFileSync(join(dir, name, 'tls.key'), cert.keyPem);
    };
    version('..v1', v1);
    symlinkSync('..v1', join(dir, '..data'));
    symlinkSync('..data/tls.crt', join(dir, 'tls.crt'));
    symlinkSync('..data/tls.key', join(dir, 'tls.key'));

    const port = await freePort();
    const gk = new ServiceProcess(
      'gatekeeper-watching',
      GATEKEEPER_MAIN,
      {
        ...relay.gatekeeper.env,
        PORT: String(port),
        ADMIN_PORT: '',
        TLS_CERT_FILE: join(dir, 'tls.crt'),
        TLS_KEY_FILE: join(dir, 'tls.key'),
        TLS_WATCH_INTERVAL_MS: '200',
      },
      port,
      { ca: ca.caPem },
    );
    extra.push(gk);
    await gk.start();
    expect((await served(port)).fingerprint256).toBe(v1.fingerprint256);

    const logged = gk.waitForLog((l) => /"reason":"file changed"[^\n]*"msg":"tls certificate loaded"/.test(l));
    version('..v2', v2);
    symlinkSync('..v2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));

    await logged; // picked up by the watch, without a signal
    expect((await served(port)).fingerprint256).toBe(v2.fingerprint256);
    expect(await connects(`https://127.0.0.1:${port}`)).toBe(true);
  });
});
