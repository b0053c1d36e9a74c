/**
 * Optional TLS on the core link (CORE_TLS_CERT_FILE + CORE_TLS_KEY_FILE): the core then serves
 * HTTPS (TLS ≥ 1.2) instead of plain HTTP on CORE_PORT, and the gatekeeper reaches it with an
 * `https://` CORE_URL, trusting the CA in its CORE_CA_FILE. The shared secret stays required on top:
 * TLS hides it on the wire and authenticates the core to the gatekeeper; the secret authenticates
 * the gatekeeper to the core. The pair is read once at start-up (rotate by restarting the core
 * replicas one by one); an unreadable or unusable pair is a ConfigError, so the process exits 1
 * with the reason, never the file's contents.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { ConfigError, type Config } from './config.js';

/** TLS 1.0 and 1.1 are refused (RFC 8996). Node defaults to 1.2 too; set here so NODE_OPTIONS=--tls-min-v1.0 cannot lower it. */
export const TLS_MIN_VERSION: tls.SecureVersion = 'TLSv1.2';

export type CoreTlsOptions = tls.SecureContextOptions & { readonly minVersion: tls.SecureVersion };

/** Reads and checks the pair; null when TLS is off. Throws ConfigError listing the problems. */
export function loadCoreTls(
  config: Pick<Config, 'tlsCertFile' | 'tlsKeyFile'>,
  readFile: (path: string) => Buffer = readFileSync,
): CoreTlsOptions | null {
  if (config.tlsCertFile === null || config.tlsKeyFile === null) return null;
  const problems: string[] = [];
  const read = (name: string, path: string): Buffer | null => {
    try {
      return readFile(path);
    } catch (err) {
      problems.push(`${name}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      return null;
    }
  };
  const cert = read('CORE_TLS_CERT_FILE', config.tlsCertFile);
  const key = read('CORE_TLS_KEY_FILE', config.tlsKeyFile);
  if (cert !== null) {
    try {
      new X509Certificate(cert);
    } catch {
      problems.push('CORE_TLS_CERT_FILE: is not a PEM certificate');
    }
  }
  if (key !== null) {
    try {
      createPrivateKey(key);
    } catch {
      problems.push('CORE_TLS_KEY_FILE: is not an unencrypted PEM private key');
    }
  }
  if (problems.length > 0 || cert === null || key === null) throw new ConfigError(problems);
  const options: CoreTlsOptions = { cert, key, minVersion: TLS_MIN_VERSION };
  try {
    tls.createSecureContext(options);
  } catch (err) {
    const m = err instanceof Error ? err.message : String(err);
    const reason = m.slice(m.lastIndexOf('::') + 2 || 0).slice(0, 120);
    throw new ConfigError([`CORE_TLS_KEY_FILE: does not make a usable pair with CORE_TLS_CERT_FILE (${reason})`]);
  }
  return options;
}

/** The core's server: plain HTTP, or HTTPS with `tlsOptions`; one handler either way. */
export function createCoreServer(tlsOptions: CoreTlsOptions | null, handler: http.RequestListener): http.Server {
  if (tlsOptions === null) return http.createServer(handler);
  // Only the gatekeeper connects, over keep-alive: a handshake that takes 10 s is not one.
  return https.createServer({ ...tlsOptions, handshakeTimeout: 10_000 }, handler);
}
