/**
 * TLS for both tiers' listening ports: reading and checking a certificate/key pair, and reloading
 * it on SIGHUP or when either file changes, without a restart and without dropping connections. A
 * pair that cannot be used (unreadable, not PEM, key not matching the certificate) is refused with
 * a readable reason naming the variable, never the files' contents: at start-up the process exits
 * 1, on a reload the server keeps serving the pair it has and the failure is logged.
 *
 * Files are watched by polling their path (`fs.watchFile`), not with `fs.watch`: certificate tools
 * and Kubernetes Secret volumes replace files by renaming or by swapping a symlink, which leaves an
 * inode watch on the old file; a stat of the path follows the swap. Changes are debounced, so a
 * certificate and key written one after the other are read once, together.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import tls from 'node:tls';
import type { Logger } from './log.js';

/** TLS 1.0 and 1.1 are refused (RFC 8996). Node defaults to 1.2 too; set here so NODE_OPTIONS=--tls-min-v1.0 cannot lower it. */
export const TLS_MIN_VERSION: tls.SecureVersion = 'TLSv1.2';

/** What the logs and metrics say about a certificate: never the key, never the whole PEM. */
export interface CertInfo {
  /** SHA-256 fingerprint of the leaf certificate, `AB:CD:…`. */
  readonly fingerprint256: string;
  readonly serialNumber: string;
  /** End of validity of the leaf certificate, ms since the epoch. */
  readonly validToMs: number;
}

export interface TlsPair {
  /** Options for `https.createServer` / `server.setSecureContext` (certificate, key, TLS ≥ 1.2). */
  readonly options: tls.SecureContextOptions & { minVersion: tls.SecureVersion };
  readonly info: CertInfo;
}

/** A pair that cannot be used; each problem names the variable and the reason, never the contents. */
export class TlsPairError extends Error {
  override readonly name = 'TlsPairError';
  constructor(readonly problems: readonly string[]) {
    super(problems.join('; '));
  }
}

export type ReadFile = (path: string) => Buffer;

/** The variables that name the two files, for the problems (the core's are CORE_TLS_*). */
export interface TlsVars {
  readonly cert: string;
  readonly key: string;
}

/** The public port's variables. */
export const TLS_VARS: TlsVars = { cert: 'TLS_CERT_FILE', key: 'TLS_KEY_FILE' };

export interface ReadTlsPairOptions {
  /** @default TLS_VARS */
  readonly vars?: TlsVars;
  readonly readFile?: ReadFile;
}

const errCode = (err: unknown): string =>
  typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : 'error';

/** OpenSSL's reason without its numeric prefix ("error:05800074:x509 …::key values mismatch"). */
const opensslReason = (err: unknown): string => {
  const m = err instanceof Error ? err.message : String(err);
  const cut = m.lastIndexOf('::');
  return (cut === -1 ? m : m.slice(cut + 2)).slice(0, 120);
};

/**
 * Reads `certFile` (PEM chain, leaf first) and `keyFile` (PEM key) and checks that they make a
 * usable server context. Throws TlsPairError.
 */
export function readTlsPair(certFile: string, keyFile: string, opts: ReadTlsPairOptions = {}): TlsPair {
  const { vars = TLS_VARS, readFile = readFileSync } = opts;
  const problems: string[] = [];
  const read = (name: string, path: string): Buffer | null => {
    try {
      return readFile(path);
    } catch (err) {
      problems.push(`${name}: cannot read it (${errCode(err)})`);
      return null;
    }
  };
  const cert = read(vars.cert, certFile);
  const key = read(vars.key, keyFile);
  let x509: X509Certificate | null = null;
  if (cert !== null) {
    try {
      x509 = new X509Certificate(cert);
    } catch {
      problems.push(`${vars.cert}: is not a PEM certificate`);
    }
  }
  if (key !== null) {
    try {
      createPrivateKey(key);
    } catch {
      problems.push(`${vars.key}: is not an unencrypted PEM private key`);
    }
  }
  if (problems.length > 0 || cert === null || key === null || x509 === null) throw new TlsPairError(problems);
  const options = { cert, key, minVersion: TLS_MIN_VERSION };
  try {
    tls.createSecureContext(options);
  } catch (err) {
    throw new TlsPairError([`${vars.key}: does not make a usable pair with ${vars.cert} (${opensslReason(err)})`]);
  }
  return {
    options,
    info: { fingerprint256: x509.fingerprint256, serialNumber: x509.serialNumber, validToMs: Date.parse(x509.validTo) },
  };
}

/** Reads a CA bundle (CORE_CA_FILE) at start-up. Throws TlsPairError. */
export function readCaFile(path: string, readFile: ReadFile = readFileSync): Buffer {
  let pem: Buffer;
  try {
    pem = readFile(path);
  } catch (err) {
    throw new TlsPairError([`CORE_CA_FILE: cannot read it (${errCode(err)})`]);
  }
  try {
    new X509Certificate(pem);
  } catch {
    throw new TlsPairError(['CORE_CA_FILE: is not a PEM certificate']);
  }
  return pem;
}

export interface TlsReloaderOptions {
  readonly certFile: string;
  readonly keyFile: string;
  /** The pair in use now (from readTlsPair at start-up). */
  readonly initial: TlsPair;
  /** Installs a new pair: `server.setSecureContext(options)`. Only called with a checked pair. */
  readonly apply: (options: TlsPair['options']) => void;
  readonly log: Logger;
  /** Told about every reload attempt (metrics). */
  readonly onReload?: (outcome: 'ok' | 'failed', info: CertInfo) => void;
  /** Poll period of the file watch; 0 = no watch (SIGHUP only). @default 1000 */
  readonly watchIntervalMs?: number;
  /** Quiet time after a change before the files are read. @default 300 */
  readonly debounceMs?: number;
  readonly readFile?: ReadFile;
  /** @default TLS_VARS */
  readonly vars?: TlsVars;
}

export interface TlsReloader {
  /** The certificate being served. */
  readonly current: CertInfo;
  /** Reads the files now; true when the new pair is in use, false when the old one stays. */
  reload(reason: string): boolean;
  /** Stops watching. */
  close(): void;
}

const changed = (a: Stats, b: Stats): boolean =>
  a.mtimeMs !== b.mtimeMs || a.ctimeMs !== b.ctimeMs || a.ino !== b.ino || a.dev !== b.dev || a.size !== b.size;

export function tlsReloader(opts: TlsReloaderOptions): TlsReloader {
  let current = opts.initial.info;
  const interval = opts.watchIntervalMs ?? 1000;
  const debounceMs = opts.debounceMs ?? 300;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;

  const reload = (reason: string): boolean => {
    let pair: TlsPair;
    try {
      pair = readTlsPair(opts.certFile, opts.keyFile, opts);
      opts.apply(pair.options);
    } catch (err) {
      const why = err instanceof TlsPairError ? err.message : opensslReason(err);
      opts.log.error({ reason, problem: why, fingerprint256: current.fingerprint256 }, 'tls reload failed; keeping the current certificate');
      opts.onReload?.('failed', current);
      return false;
    }
    const previous = current;
    current = pair.info;
    opts.log.info(
      {
        reason,
        fingerprint256: current.fingerprint256,
        validTo: new Date(current.validToMs).toISOString(),
        changed: previous.fingerprint256 !== current.fingerprint256,
      },
      'tls certificate loaded',
    );
    warnValidity(current, opts.log);
    opts.onReload?.('ok', current);
    return true;
  };

  const onChange = (curr: Stats, prev: Stats): void => {
    if (closed || !changed(curr, prev)) return;
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      if (!closed) reload('file changed');
    }, debounceMs);
    timer.unref();
  };

  if (interval > 0) {
    for (const f of [opts.certFile, opts.keyFile]) watchFile(f, { interval, persistent: false }, onChange);
  }
  warnValidity(current, opts.log);

  return {
    get current() {
      return current;
    },
    reload,
    close() {
      closed = true;
      if (timer !== null) clearTimeout(timer);
      if (interval > 0) for (const f of [opts.certFile, opts.keyFile]) unwatchFile(f, onChange);
    },
  };
}

/** Expired, or expiring within two weeks: worth a line in the log at every load. */
function warnValidity(info: CertInfo, log: Logger): void {
  const left = info.validToMs - Date.now();
  if (left <= 0) log.error({ fingerprint256: info.fingerprint256 }, 'tls certificate has expired');
  else if (left < 14 * 86_400_000) log.warn({ fingerprint256: info.fingerprint256, daysLeft: Math.floor(left / 86_400_000) }, 'tls certificate expires soon');
}
