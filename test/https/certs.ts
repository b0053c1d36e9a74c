/**
 * Throwaway certificates for the HTTPS tests, made with the `openssl` binary at test time: a CA, and
 * server certificates it signs (EC P-256, valid 30 days, SANs for 127.0.0.1 and localhost plus
 * whatever a test adds). Everything lives in a fresh temp directory; nothing is checked in.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TlsFiles } from '../support/relay.js';

const openssl = (args: string[], cwd: string): void => {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
};

export interface IssuedCert extends TlsFiles {
  /** Hex serial as X509Certificate reports it (upper case). */
  readonly serialNumber: string;
  readonly fingerprint256: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface IssueOptions {
  /** Extra IP SANs (127.0.0.1 is always in). */
  ips?: string[];
  /** Extra DNS SANs (localhost is always in). */
  dns?: string[];
}

export interface TestCa {
  readonly dir: string;
  readonly caFile: string;
  readonly caPem: string;
  /** Issues a server certificate into `<dir>/<name>.pem` and `<name>.key`. */
  issue(name: string, opts?: IssueOptions): IssuedCert;
  /** Removes the directory. */
  remove(): void;
}

export function makeCa(name = 'Zax test CA'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'zax-tls-'));
  openssl(
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30', '-subj', `/CN=${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  const caFile = join(dir, 'ca.pem');
  return {
    dir,
    caFile,
    caPem: readFileSync(caFile, 'utf8'),
    issue(certName, opts = {}) {
      const ips = ['127.0.0.1', ...(opts.ips ?? [])];
      const dns = ['localhost', ...(opts.dns ?? [])];
      const san = [...ips.map((a) => `IP:${a}`), ...dns.map((d) => `DNS:${d}`)].join(',');
      writeFileSync(
        join(dir, `${certName}.ext`),
        `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`,
      );
      openssl(
        ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
          '-keyout', `${certName}.key`, '-out', `${certName}.csr`, '-subj', '/CN=localhost'],
        dir,
      );
      // A random positive serial, so every issue is told apart by serial and fingerprint.
      const serial = `0x${(randomBytes(8)[0]! & 0x7f).toString(16).padStart(2, '0')}${randomBytes(7).toString('hex')}`;
      openssl(
        ['x509', '-req', '-in', `${certName}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', serial,
          '-days', '30', '-out', `${certName}.pem`, '-extfile', `${certName}.ext`],
        dir,
      );
      const certFile = join(dir, `${certName}.pem`);
      const keyFile = join(dir, `${certName}.key`);
      const certPem = readFileSync(certFile, 'utf8');
      const x = new X509Certificate(certPem);
      return { certFile, keyFile, caFile, serialNumber: x.serialNumber, fingerprint256: x.fingerprint256, certPem, keyPem: readFileSync(keyFile, 'utf8') };
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Replaces `path` by a rename (as certificate tools and Secret volumes do), never a partial write. */
export function replaceFile(path: string, contents: string): void {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, contents);
  renameSync(tmp, path);
}
