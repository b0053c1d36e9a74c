/**
 * The built `zax` executable (`node packages/client/dist/cli.js`, so run `tsc -b packages/client`
 * first): help texts, usage errors (exit 2), readable runtime errors (exit 1, no stack trace), a
 * full keygen → send → inbox → status → delete flow against the in-memory fake relay, and network
 * and TLS mistakes against real servers (a relay from test/support/relay.ts with a certificate from
 * a throwaway CA, a self-signed HTTPS server, a Caddy TLS port when caddy is installed), each
 * answered with its cause and its fix.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { makeCa, type IssuedCert, type TestCa } from '../../../test/https/certs.js';
import { freePort } from '../../../test/support/redis-server.js';
import { Relay } from '../../../test/support/relay.js';
import { sanitizeForTerminal } from '../src/cli-app.js';
import { startFakeRelay, type FakeRelay } from './support/fake-relay.js';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const KEY = 'nmcleV6x7lkltFJmByQa1ixuf5Fc/S4glJh4yu2mUj4=';
const NONCE = 'AAAAAGVT8QDg4eLj5OXm5+jp6uvs7e7v';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let home: string;

/** Runs the CLI in a clean environment (HOME in a temp dir, no ZAX_* from the caller). */
function zax(args: string[], options: { env?: Record<string, string>; input?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: home, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx tsc -b packages/client" first`);
  home = await mkdtemp(join(tmpdir(), 'zax-cli-'));
});
afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

const COMMANDS = ['keygen', 'id', 'send', 'inbox', 'delete', 'status'];

describe('help', () => {
  it('zax --help lists every command and the exit codes', async () => {
    const r = await zax(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^zax: /);
    expect(r.stdout).toContain('Usage: zax <command> [options]');
    for (const c of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    expect(r.stdout).toContain('Exit codes: 0 success, 1 error, 2 usage error.');
    expect(r.stderr).toBe('');
  });

  for (const c of COMMANDS) {
    it(`zax ${c} --help and zax help ${c} show its usage`, async () => {
      const r = await zax([c, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: zax ${c}`));
      expect((await zax(['help', c])).stdout).toBe(r.stdout);
    });
  }

  it('zax with no arguments prints help to stderr and exits 2', async () => {
    const r = await zax([]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Usage: zax <command>');
  });

  it('zax --version prints the package version', async () => {
    const r = await zax(['--version']);
    expect(r).toMatchObject({ code: 0, stdout: '0.1.0\n' });
  });
});

describe('usage errors exit 2 with a pointer to help', () => {
  const cases: [string, string[], RegExp][] = [
    ['unknown command', ['frobnicate'], /unknown command "frobnicate"/],
    ['unknown option', ['send', '--bogus'], /^zax: unknown option "--bogus" for zax send \(a message that starts with "-" goes after "--"/],
    ['send --file', ['send', '--file', 'notes.txt'], /^zax: unknown option "--file" for zax send \(send takes the message as one argument, or "-" to read it from standard input: zax send \.\.\. - < FILE\)\n/],
    ['unknown option with a value', ['inbox', '--bogus=1'], /^zax: unknown option "--bogus" for zax inbox\n/],
    ['unknown short option', ['keygen', '-x'], /^zax: unknown option "-x" for zax keygen\n/],
    ['option without value', ['send', '--to'], /^zax: --to needs a value\n/],
    ['option whose value is another option', ['keygen', '--out', '--force'], /^zax: --out needs a value \(one that starts with "-" is written --out=--force\)\n/],
    ['boolean option with a value', ['keygen', '--force=yes'], /^zax: --force takes no value\n/],
    ['send without --to', ['send', '--relay', 'http://r', 'hi'], /--to PUBKEY is required/],
    ['send with a bad key', ['send', '--relay', 'http://r', '--to', 'abc', 'hi'], /--to: expected 44 characters/],
    ['send without message', ['send', '--relay', 'http://r', '--to', KEY], /MESSAGE is required/],
    ['send with two messages', ['send', '--relay', 'http://r', '--to', KEY, 'a', 'b'], /one argument/],
    ['send without relay', ['send', '--to', KEY, 'hi'], /--relay URL is required/],
    ['send with a bad relay URL', ['send', '--relay', 'relay.example', '--to', KEY, 'hi'], /not a URL/],
    ['send of an empty message', ['send', '--relay', 'http://r', '--to', KEY, ''], /empty/],
    ['inbox --only without --from', ['inbox', '--relay', 'http://r', '--only'], /--only needs/],
    ['inbox with a bad --from', ['inbox', '--relay', 'http://r', '--from', 'x'], /--from: expected/],
    ['inbox with a positional', ['inbox', '--relay', 'http://r', 'x'], /unexpected argument "x"/],
    ['delete without nonces', ['delete', '--relay', 'http://r'], /NONCE of each message/],
    ['delete with nonces and --all', ['delete', '--relay', 'http://r', '--all', NONCE], /not both/],
    ['delete with a bad nonce', ['delete', '--relay', 'http://r', 'abc'], /not a message nonce/],
    ['status without token', ['status', '--relay', 'http://r'], /exactly one TOKEN/],
    ['status with a bad token', ['status', '--relay', 'http://r', NONCE], /not a storage token/],
  ];
  for (const [name, args, message] of cases) {
    it(name, async () => {
      const r = await zax(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(/Run "zax (\w+ )?--help" for usage\.\n$/);
      // Every quote the message opens, it closes (apostrophes inside words aside).
      const first = r.stderr.split('\n')[0]!;
      expect(first.split('"').length % 2).toBe(1);
      expect(first.replace(/(?<=\w)'(?=\w)/g, '').split("'").length % 2).toBe(1);
      expect(r.stdout).toBe('');
    });
  }
});

describe('runtime errors exit 1 without a stack trace', () => {
  it('a missing identity file', async () => {
    const r = await zax(['inbox', '--relay', 'http://127.0.0.1:9', '--id', join(home, 'none.json')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^zax: error: no identity file at .*none\.json \(create one with "zax keygen"\)\n$/);
  });

  it('an unreachable relay', async () => {
    const id = join(home, 'unreachable.json');
    expect((await zax(['keygen', '--out', id])).code).toBe(0);
    const relay = await startFakeRelay();
    const url = relay.url;
    await relay.close();
    const r = await zax(['inbox', '--relay', url, '--id', id]);
    expect(r.code).toBe(1);
    const port = new URL(url).port;
    expect(r.stderr).toBe(
      `zax: error: cannot reach ${url}/start_session: connection refused at 127.0.0.1:${port} (nothing listens there): is the relay running, and is that its address and port?\n`,
    );
  });

  it('keygen onto an existing file', async () => {
    const id = join(home, 'twice.json');
    expect((await zax(['keygen', '--out', id])).code).toBe(0);
    const r = await zax(['keygen', '--out', id]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/already exists \(use --force/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect((await zax(['keygen', '--out', id, '--force'])).code).toBe(0);
  });
});

describe('a full flow against a relay', () => {
  let relay: FakeRelay;
  beforeAll(async () => {
    relay = await startFakeRelay();
  });
  afterAll(async () => {
    await relay.close();
  });

  const keyOf = (out: string): string => /^public key: (\S+)$/m.exec(out)![1]!;

  it('keygen, send (argument and stdin), inbox, status, delete --all', async () => {
    const alice = await zax(['keygen'], { env: { ZAX_IDENTITY: join(home, 'alice.json') } });
    expect(alice.code).toBe(0);
    expect(alice.stdout).toMatch(/^public key: \S{44}\nhpk:        \S{44}\n$/);
    // What to share and what to keep.
    expect(alice.stderr).toBe(
      `identity written to ${join(home, 'alice.json')}\n` +
        'Share your public key (above) with the people who will write to you; the hpk is your mailbox address.\n' +
        'Keep the identity file secret (and backed up): it holds your secret key; whoever has it can read your mail and write as you.\n',
    );
    expect((await stat(join(home, 'alice.json'))).mode & 0o777).toBe(0o600);
    // the default location under $HOME
    const bob = await zax(['keygen']);
    expect(bob.code).toBe(0);
    expect(bob.stderr).toContain(join(home, '.config', 'zax', 'identity.json'));
    expect((await zax(['id'])).stdout).toBe(bob.stdout);

    const asAlice = { ZAX_IDENTITY: join(home, 'alice.json'), ZAX_RELAY: relay.url };
    const sent = await zax(['send', '--to', keyOf(bob.stdout), 'hello \x1b[31mBob\x1b[0m'], { env: asAlice });
    expect(sent.code).toBe(0);
    const token = sent.stdout.trim();
    expect(token).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    const piped = await zax(['send', '--relay', relay.url, '--to', keyOf(bob.stdout), '--json', '-'], { env: asAlice, input: 'line one\nline two\n' });
    expect(piped.code).toBe(0);
    expect(JSON.parse(piped.stdout)).toMatchObject({ token: expect.any(String), nonce: expect.any(String) });

    const json = await zax(['inbox', '--relay', relay.url, '--from', keyOf(alice.stdout), '--json']);
    expect(json.code).toBe(0);
    const items = JSON.parse(json.stdout) as { status: string; text: string; sender: string }[];
    expect(items.map((i) => [i.status, i.text, i.sender])).toEqual([
      ['decrypted', 'hello \x1b[31mBob\x1b[0m', keyOf(alice.stdout)],
      ['decrypted', 'line one\nline two', keyOf(alice.stdout)],
    ]);

    const human = await zax(['inbox', '--relay', relay.url, '--from', keyOf(alice.stdout)]);
    expect(human.stdout).toContain('2 messages');
    expect(human.stdout).toContain('  hello \\x1b[31mBob\\x1b[0m');
    expect(human.stdout).toContain('  line one\n  line two\n');
    expect(human.stdout).not.toContain('\x1b');
    const unknown = await zax(['inbox', '--relay', relay.url]);
    expect(unknown.stdout).toContain('(unknown sender)');

    const status = await zax(['status', '--relay', relay.url, token], { env: asAlice });
    expect(status.stdout).toMatch(/^live, expires in 4d 23h 59m \d+s \(\d+ s\)\n$/);

    const del = await zax(['delete', '--relay', relay.url, '--all']);
    expect(del).toMatchObject({ code: 0, stdout: '0 messages left\n' });
    const gone = await zax(['status', '--relay', relay.url, '--json', token], { env: asAlice });
    expect(JSON.parse(gone.stdout)).toEqual({ token, ttlSec: -2 });
    expect((await zax(['inbox', '--relay', relay.url])).stdout).toBe('no messages\n');
  });
});

describe('network and TLS errors name the cause and the fix (real servers)', () => {
  let ca: TestCa;
  let otherCa: TestCa;
  let cert: IssuedCert;
  let relay: Relay;
  let selfSigned: { server: HttpsServer; url: string; certFile: string };
  let idFile: string;
  let peerKey: string;

  /** A self-signed certificate for 127.0.0.1 (openssl), and an HTTPS server with it that answers 404. */
  async function startSelfSigned(dir: string): Promise<{ server: HttpsServer; url: string; certFile: string }> {
    const certFile = join(dir, 'self.pem');
    const keyFile = join(dir, 'self.key');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile,
        '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const server = createHttpsServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (req, res) => {
      req.resume();
      res.writeHead(404, { 'content-length': 0 }).end();
    });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('no port');
    return { server, url: `https://127.0.0.1:${addr.port}`, certFile };
  }

  beforeAll(async () => {
    ca = makeCa('Zax CLI test CA');
    otherCa = makeCa('Some other CA');
    cert = ca.issue('gatekeeper');
    // The gatekeeper serves HTTPS with a certificate of a CA no one trusts by default; the core
    // behind it serves plain HTTP, and refuses callers without the relay's internal secret.
    relay = await Relay.start({ redisUrl: inject('redisUrl'), tls: cert });
    selfSigned = await startSelfSigned(ca.dir);
    idFile = join(home, 'tls-alice.json');
    expect((await zax(['keygen', '--out', idFile])).code).toBe(0);
    peerKey = /^public key: (\S+)$/m.exec((await zax(['keygen', '--out', join(home, 'tls-bob.json')])).stdout)![1]!;
  });
  afterAll(async () => {
    await new Promise((res) => selfSigned?.server.close(res));
    await relay?.stop();
    ca?.remove();
    otherCa?.remove();
  });

  /** One line on stderr, exit 1, nothing on stdout. */
  const failsWith = async (args: string[], env: Record<string, string> = {}): Promise<string> => {
    const r = await zax(args, { env });
    expect(r).toMatchObject({ code: 1, stdout: '' });
    expect(r.stderr).toMatch(/^zax: error: [^\n]+\n$/);
    return r.stderr;
  };

  it('a certificate from an unknown CA: "not trusted", with --ca FILE and NODE_EXTRA_CA_CERTS as the fix', async () => {
    const err = await failsWith(['inbox', '--relay', relay.url, '--id', idFile]);
    expect(err).toBe(
      `zax: error: cannot reach ${relay.url}/start_session: the relay's TLS certificate is not trusted (UNABLE_TO_VERIFY_LEAF_SIGNATURE). ` +
        'If this is your relay, trust its certificate for this run with --ca FILE (FILE: the PEM certificate of the CA that signed it, ' +
        'or the self-signed certificate itself), or set NODE_EXTRA_CA_CERTS=FILE\n',
    );
  });

  it('--ca with the right CA: send and inbox work over HTTPS; with NODE_EXTRA_CA_CERTS too', async () => {
    const sent = await zax(['send', '--relay', relay.url, '--ca', ca.caFile, '--id', idFile, '--to', peerKey, 'over TLS with --ca']);
    expect(sent).toMatchObject({ code: 0, stderr: '' });
    const inbox = await zax(['inbox', '--relay', relay.url, '--id', join(home, 'tls-bob.json'), '--json'], { env: { NODE_EXTRA_CA_CERTS: ca.caFile } });
    expect(inbox.code).toBe(0);
    expect((JSON.parse(inbox.stdout) as unknown[]).length).toBe(1);
  });

  it('--ca with the wrong CA says so', async () => {
    const err = await failsWith(['inbox', '--relay', relay.url, '--ca', otherCa.caFile, '--id', idFile]);
    expect(err).toContain(`the relay's TLS certificate is not trusted (UNABLE_TO_VERIFY_LEAF_SIGNATURE), not even with --ca ${otherCa.caFile}`);
  });

  it('--ca with a file that is not a certificate, or is missing', async () => {
    expect(await failsWith(['inbox', '--relay', relay.url, '--ca', idFile, '--id', idFile])).toBe(
      `zax: error: --ca ${idFile} is not a PEM certificate ("-----BEGIN CERTIFICATE-----" ...)\n`,
    );
    expect(await failsWith(['inbox', '--relay', relay.url, '--ca', join(home, 'none.pem'), '--id', idFile])).toBe(
      `zax: error: cannot read --ca ${join(home, 'none.pem')} (ENOENT)\n`,
    );
  });

  it('a self-signed certificate: DEPTH_ZERO_SELF_SIGNED_CERT, and --ca with that certificate trusts it', async () => {
    const err = await failsWith(['inbox', '--relay', selfSigned.url, '--id', idFile]);
    expect(err).toContain(`cannot reach ${selfSigned.url}/start_session: the relay's TLS certificate is not trusted (DEPTH_ZERO_SELF_SIGNED_CERT). If this is your relay`);
    // Trusted, the request reaches the server (which is no relay).
    const reached = await failsWith(['inbox', '--relay', selfSigned.url, '--ca', selfSigned.certFile, '--id', idFile]);
    expect(reached).toBe('zax: error: relay answered 404 to /start_session (is the URL a Zax relay?)\n');
  });

  it('http:// against the TLS port: the relay speaks HTTPS there; use https://', async () => {
    const port = relay.gatekeeper.port;
    const err = await failsWith(['inbox', '--relay', `http://127.0.0.1:${port}`, '--id', idFile]);
    expect(err).toBe(
      `zax: error: cannot reach http://127.0.0.1:${port}/start_session: the relay speaks HTTPS at 127.0.0.1:${port}, not plain HTTP; use https://127.0.0.1:${port}\n`,
    );
  });

  it('https:// against a plain HTTP port: the relay speaks plain HTTP there; use http://', async () => {
    const port = relay.core.port;
    const err = await failsWith(['inbox', '--relay', `https://127.0.0.1:${port}/`, '--id', idFile]);
    expect(err).toMatch(
      new RegExp(`^zax: error: cannot reach https://127\\.0\\.0\\.1:${port}/start_session: the relay speaks plain HTTP at 127\\.0\\.0\\.1:${port}, not HTTPS \\(\\w+: [^)]*\\); use http://127\\.0\\.0\\.1:${port}\\n$`),
    );
  });

  it('https:// against a node:http server (it answers the TLS hello with a plain 400): use http://', async () => {
    const plain = await startFakeRelay();
    try {
      const port = new URL(plain.url).port;
      const err = await failsWith(['inbox', '--relay', `https://127.0.0.1:${port}`, '--id', idFile]);
      expect(err).toMatch(
        new RegExp(`^zax: error: cannot reach https://127\\.0\\.0\\.1:${port}/start_session: the relay speaks plain HTTP at 127\\.0\\.0\\.1:${port}, not HTTPS \\(\\w+: [^)]*\\); use http://127\\.0\\.0\\.1:${port}\\n$`),
      );
    } finally {
      await plain.close();
    }
  });

  it("a 403 from the core port: looks like the relay's core port, not the public gatekeeper port", async () => {
    const err = await failsWith(['inbox', '--relay', `http://127.0.0.1:${relay.core.port}`, '--id', idFile]);
    expect(err).toBe(
      "zax: error: relay answered 403 to /start_session (this looks like the relay's core port, which only the relay's gatekeeper may call: use the public gatekeeper port, 8080 by default)\n",
    );
  });

  it('connection refused names host:port', async () => {
    const port = await freePort();
    const err = await failsWith(['inbox', '--relay', `http://127.0.0.1:${port}`, '--id', idFile]);
    expect(err).toContain(`connection refused at 127.0.0.1:${port} (nothing listens there)`);
  });

  const caddy = (() => {
    try {
      execFileSync('caddy', ['version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  it.skipIf(!caddy)('http:// against a Caddy TLS port (it answers 400 in plain HTTP): the relay speaks HTTPS there', async () => {
    const port = await freePort();
    const dir = await mkdtemp(join(tmpdir(), 'zax-cli-caddy-'));
    writeFileSync(
      join(dir, 'Caddyfile'),
      `{\n\tadmin off\n\tauto_https off\n\tstorage file_system ${dir}\n}\nhttps://127.0.0.1:${port} {\n\ttls ${cert.certFile} ${cert.keyFile}\n\trespond "front" 200\n}\n`,
    );
    let child: ChildProcess | null = null;
    try {
      child = spawn('caddy', ['run', '--config', join(dir, 'Caddyfile'), '--adapter', 'caddyfile'], {
        env: { PATH: process.env.PATH ?? '', HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir },
        stdio: 'ignore',
      });
      await tlsListening(port, child);
      const err = await failsWith(['inbox', '--relay', `http://127.0.0.1:${port}`, '--id', idFile]);
      expect(err).toBe(
        `zax: error: cannot reach http://127.0.0.1:${port}/start_session: the relay speaks HTTPS at 127.0.0.1:${port}, not plain HTTP; use https://127.0.0.1:${port}\n`,
      );
    } finally {
      if (child !== null && child.exitCode === null) {
        const c = child;
        await new Promise((res) => {
          c.once('exit', res);
          c.kill('SIGTERM');
        });
      }
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** Resolves once a TLS handshake with 127.0.0.1:port succeeds; rejects if `child` exits first. */
async function tlsListening(port: number, child: ChildProcess): Promise<void> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`process exited with ${child.exitCode} before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false });
      s.once('secureConnect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((res) => setTimeout(res, 50));
  }
}

describe('sanitizeForTerminal', () => {
  it('escapes control characters and bidi overrides, keeps newlines, tabs and Unicode', () => {
    expect(sanitizeForTerminal('a\x1b[2Jb\r\x07\x9b\u202e\tc\nü🎉')).toBe('a\\x1b[2Jb\\x0d\\x07\\x9b\\u202e\tc\nü🎉');
  });
});
