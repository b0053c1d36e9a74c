/**
 * The `zax` CLI, mostly run in this process (`runCli`, as the executable does) and, where the
 * process itself matters (exit codes, NODE_* variables, signals), as the built executable
 * (`node packages/client/dist/cli.js`, so run `tsc -b packages/client` first): help texts, usage errors (exit 2), readable runtime errors (exit 1, no stack trace), a
 * full keygen → send → inbox → status → delete flow against the in-memory fake relay, and network
 * and TLS mistakes against real servers (a relay from test/support/relay.ts with a certificate from
 * a throwaway CA, a self-signed HTTPS server, a Caddy TLS port when caddy is installed), each
 * answered with its cause and its fix.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { chmod, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as netConnect, createServer as createNetServer, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { makeCa, type IssuedCert, type TestCa } from '../../../test/https/certs.js';
import { freePort } from '../../../test/support/redis-server.js';
import { Relay } from '../../../test/support/relay.js';
import { sanitizeForTerminal } from '../src/cli-app.js';
import { startFakeRelay, type FakeRelay } from './support/fake-relay.js';
import { CLI, runCliProcess, runZax, type Run } from './support/run-cli.js';

const KEY = 'nmcleV6x7lkltFJmByQa1ixuf5Fc/S4glJh4yu2mUj4=';
const NONCE = 'AAAAAGVT8QDg4eLj5OXm5+jp6uvs7e7v';

let home: string;

/**
 * Runs the CLI in a clean environment (HOME in a temp dir, no ZAX_* from the caller): in this
 * process unless the run needs its own (support/run-cli.ts `runZax`).
 */
function zax(args: string[], options: { env?: Record<string, string>; input?: string } = {}): Promise<Run> {
  return runZax(args, { home, ...options, input: options.input ?? '' });
}

/** The built executable as a process: its exit codes and streams, as a shell sees them. */
function zaxBinary(args: string[]): Promise<Run> {
  return runCliProcess(args, { home, input: '' });
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx tsc -b packages/client" first`);
  home = await mkdtemp(join(tmpdir(), 'zax-cli-'));
});
afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

const COMMANDS = ['keygen', 'id', 'send', 'inbox', 'watch', 'delete', 'status', 'send-file', 'files', 'receive-file', 'contacts'];

describe('help', () => {
  it('zax --help lists every command and the exit codes', async () => {
    const r = await zaxBinary(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^zax: /);
    expect(r.stdout).toContain('Usage: zax <command> [options]');
    for (const c of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    expect(r.stdout).toContain('Exit codes: 0 success, 1 error, 2 usage error, 130 transfer interrupted (send-file, receive-file).');
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
    const r = await zaxBinary([]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Usage: zax <command>');
  });

  it('zax --version prints the package version', async () => {
    const r = await zaxBinary(['--version']);
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
    ['send without --to', ['send', '--relay', 'http://r', 'hi'], /--to WHO is required \(a contact name or a public key\)/],
    ['send with a bad key', ['send', '--relay', 'http://r', '--to', 'abc+', 'hi'], /--to: expected 44 characters/],
    ['send to an unknown contact', ['send', '--relay', 'http://r', '--to', 'carol', 'hi'], /^zax: --to: no contact named "carol" \(see "zax contacts list"\), and not a public key/],
    ['send without message', ['send', '--relay', 'http://r', '--to', KEY], /MESSAGE is required/],
    ['send with two messages', ['send', '--relay', 'http://r', '--to', KEY, 'a', 'b'], /one argument/],
    ['send without relay', ['send', '--to', KEY, 'hi'], /--relay URL is required/],
    ['send with a bad relay URL', ['send', '--relay', 'relay.example', '--to', KEY, 'hi'], /not a URL/],
    ['send of an empty message', ['send', '--relay', 'http://r', '--to', KEY, ''], /empty/],
    ['inbox --only without --from', ['inbox', '--relay', 'http://r', '--only'], /--only needs/],
    ['inbox with a bad --from', ['inbox', '--relay', 'http://r', '--from', 'x/'], /--from: expected/],
    ['inbox from an unknown contact', ['inbox', '--relay', 'http://r', '--from', 'x'], /--from: no contact named "x"/],
    ['inbox with a positional', ['inbox', '--relay', 'http://r', 'x'], /unexpected argument "x"/],
    ['delete without nonces', ['delete', '--relay', 'http://r'], /NONCE of each message/],
    ['delete with nonces and --all', ['delete', '--relay', 'http://r', '--all', NONCE], /not both/],
    ['delete with a bad nonce', ['delete', '--relay', 'http://r', 'abc'], /not a message nonce/],
    ['status without token', ['status', '--relay', 'http://r'], /exactly one TOKEN/],
    ['status with a bad token', ['status', '--relay', 'http://r', NONCE], /not a storage token/],
    ['contacts without a subcommand', ['contacts'], /give a subcommand: add, list or remove/],
    ['contacts with an unknown subcommand', ['contacts', 'show'], /unknown subcommand "show"/],
    ['contacts add with a bad name', ['contacts', 'add', 'bob smith', KEY], /contact name "bob smith" is not 1 to 64 letters/],
    ['contacts add with a long name', ['contacts', 'add', 'b'.repeat(65), KEY], /is not 1 to 64 letters/],
    ['contacts add with a bad key', ['contacts', 'add', 'bob', 'abc'], /PUBKEY: expected 44 characters/],
    ['contacts add without a key', ['contacts', 'add', 'bob'], /takes NAME PUBKEY/],
    ['contacts remove of an unknown name', ['contacts', 'remove', 'nobody'], /no contact named "nobody"/],
    ['contacts list --force', ['contacts', 'list', '--force'], /--force goes with "zax contacts add" only/],
    ['watch with a bad --interval', ['watch', '--relay', 'http://r', '--interval', 'soon'], /--interval: expected a number of seconds from 0.1 to 3600, got "soon"/],
    ['watch with too short an --interval', ['watch', '--relay', 'http://r', '--interval', '0.01'], /--interval: expected/],
    ['watch with a bad --max-polls', ['watch', '--relay', 'http://r', '--max-polls', '0'], /--max-polls: expected a whole number of at least 1, got "0"/],
    ['watch with a bad --exit-after', ['watch', '--relay', 'http://r', '--exit-after', '1.5'], /--exit-after: expected a whole number/],
    ['watch without relay', ['watch'], /--relay URL is required/],
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
    const r = await zaxBinary(['inbox', '--relay', 'http://127.0.0.1:9', '--id', join(home, 'none.json')]);
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
    expect(status.stdout).toMatch(/^live, expires in (4d 23h 59m \d+s|5d 0h 0m 0s) \(\d+ s\)\n$/); // within a second of the send: not a second has gone

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

/** A `zax` child left running (watch): its output so far, a wait for some of it, and its end. */
function zaxRunning(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', HOME: home, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<Run>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return {
    child,
    exit,
    stdout: () => stdout,
    /** Resolves once stdout (or stderr) satisfies `ok`; fails after `ms` with what was printed. */
    async until(ok: (out: string) => boolean, ms = 15_000, on: 'stdout' | 'stderr' = 'stdout'): Promise<void> {
      const deadline = Date.now() + ms;
      while (!ok(on === 'stdout' ? stdout : stderr)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`watch did not print the expected output; stdout: ${stdout}; stderr: ${stderr}`);
        await new Promise((res) => setTimeout(res, 25));
      }
    },
  };
}

const occurrences = (s: string, sub: string): number => s.split(sub).length - 1;
const keyOfOut = (out: string): string => /^public key: (\S+)$/m.exec(out)![1]!;

/** Exactly one line of stdout, as JSON. */
function oneDoc(r: Run): unknown {
  expect(r.stdout.endsWith('\n')).toBe(true);
  expect(r.stdout.slice(0, -1)).not.toContain('\n');
  return JSON.parse(r.stdout);
}

/** Exactly one line of stderr, as JSON. */
function oneErr(r: Run): { error: Record<string, unknown> } {
  expect(r.stderr.endsWith('\n')).toBe(true);
  expect(r.stderr.slice(0, -1)).not.toContain('\n');
  return JSON.parse(r.stderr) as { error: Record<string, unknown> };
}

interface IdJson {
  publicKey: string;
  hpk: string;
  path: string;
}

describe('--json: one JSON document on stdout; errors one JSON line on stderr, same exit codes', () => {
  let relay: FakeRelay;
  beforeAll(async () => {
    relay = await startFakeRelay();
  });
  afterAll(async () => {
    await relay.close();
  });

  it('keygen, id, send, inbox, status and delete', async () => {
    const a = join(home, 'json-alice.json');
    const b = join(home, 'json-bob.json');
    const ka = await zax(['keygen', '--out', a, '--json']);
    expect(ka).toMatchObject({ code: 0, stderr: '' });
    const alice = oneDoc(ka) as IdJson;
    expect(alice).toEqual({ publicKey: expect.stringMatching(/^[A-Za-z0-9+/]{43}=$/), hpk: expect.stringMatching(/^[A-Za-z0-9+/]{43}=$/), path: a });
    const bob = oneDoc(await zax(['keygen', '--out', b, '--json'])) as IdJson;
    expect(oneDoc(await zax(['id', '--id', a, '--json']))).toEqual(alice);

    const at = ['--relay', relay.url, '--json'];
    const sentRun = await zax(['send', ...at, '--id', a, '--to', bob.publicKey, 'hi']);
    expect(sentRun).toMatchObject({ code: 0, stderr: '' });
    const sent = oneDoc(sentRun) as { token: string };
    expect(sent).toEqual({ token: expect.any(String), nonce: expect.any(String), to: bob.hpk, publicKey: bob.publicKey, contact: null });

    const items = oneDoc(await zax(['inbox', ...at, '--id', b, '--from', alice.publicKey])) as { nonce: string }[];
    expect(items).toEqual([
      { nonce: expect.any(String), time: expect.any(Number), from: alice.hpk, kind: 'message', status: 'decrypted', sender: alice.publicKey, contact: null, text: 'hi', data: expect.any(String) },
    ]);
    expect(oneDoc(await zax(['status', ...at, '--id', a, sent.token]))).toEqual({ token: sent.token, ttlSec: expect.any(Number) });
    expect(oneDoc(await zax(['delete', ...at, '--id', b, items[0]!.nonce]))).toEqual({ deleted: [items[0]!.nonce], left: 0 });
    expect(oneDoc(await zax(['delete', ...at, '--id', b, '--all']))).toEqual({ deleted: 'all', left: 0 });
    expect(oneDoc(await zax(['inbox', ...at, '--id', b]))).toEqual([]);
  });

  it('usage errors: {"error":{"message","kind":"usage"}}, exit 2, nothing on stdout', async () => {
    for (const args of [
      ['send', '--json', '--relay', 'http://r', '--to', 'carol', 'hi'],
      ['inbox', '--bogus', '--json'],
      ['frobnicate', '--json'],
      ['contacts', 'add', 'bad name', KEY, '--json'],
    ]) {
      const r = await zax(args);
      expect(r).toMatchObject({ code: 2, stdout: '' });
      expect(oneErr(r)).toEqual({ error: { message: expect.any(String), kind: 'usage' } });
    }
    expect(oneErr(await zax(['send', '--json', '--relay', 'http://r', '--to', 'carol', 'hi'])).error.message).toMatch(/^--to: no contact named "carol"/);
  });

  it('runtime errors: exit 1, with the kind, and the HTTP status and Retry-After of a relay refusal', async () => {
    const missing = await zax(['inbox', '--relay', relay.url, '--id', join(home, 'none.json'), '--json']);
    expect(missing).toMatchObject({ code: 1, stdout: '' });
    expect(oneErr(missing)).toEqual({ error: { kind: 'identity', message: `no identity file at ${join(home, 'none.json')} (create one with "zax keygen")` } });

    const id = join(home, 'json-errors.json');
    expect((await zax(['keygen', '--out', id])).code).toBe(0);
    relay.failNext('/command', 'throttled', 1, 7);
    const throttled = await zax(['inbox', '--relay', relay.url, '--id', id, '--json']);
    expect(throttled).toMatchObject({ code: 1, stdout: '' });
    expect(oneErr(throttled)).toEqual({
      error: { kind: 'relay', status: 429, retryAfterSec: 7, message: expect.stringMatching(/^relay answered 429 to \/command.* \(slow down\)$/) },
    });

    const port = await freePort();
    const refused = await zax(['status', '--relay', `http://127.0.0.1:${port}`, '--id', id, '--json', KEY]);
    expect(refused).toMatchObject({ code: 1, stdout: '' });
    expect(oneErr(refused)).toEqual({ error: { kind: 'network', reason: 'connection-refused', message: expect.stringContaining(`connection refused at 127.0.0.1:${port}`) } });
  });

  it('warnings are {"warning":{"message"}} lines; keygen advice is left out', async () => {
    const id = join(home, 'json-exposed.json');
    const k = await zax(['keygen', '--out', id, '--json']);
    expect(k.stderr).toBe('');
    await chmod(id, 0o644);
    const r = await zax(['id', '--id', id, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stderr)).toEqual({ warning: { message: `${id} is readable by other users (chmod 600 it)` } });
    expect((await zax(['id', '--id', id])).stderr).toBe(`zax: warning: ${id} is readable by other users (chmod 600 it)\n`);
  });
});

describe('contacts', () => {
  const KEY2 = 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=';

  it('add writes a mode 0600 file next to the identity file; list, --force and remove round-trip', async () => {
    const id = join(home, 'c-alice.json');
    expect((await zax(['keygen', '--out', id])).code).toBe(0);
    const file = join(home, 'c-alice.contacts.json');
    const added = await zax(['contacts', 'add', 'bob', KEY, '--id', id]);
    expect(added).toEqual({ code: 0, stdout: `added bob (${KEY})\n`, stderr: '' });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(id)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ type: 'zax-contacts', version: 1, contacts: [{ name: 'bob', publicKey: KEY }] });

    const second = oneDoc(await zax(['contacts', 'add', 'Al.ice_2-x', KEY2, '--id', id, '--json']));
    expect(second).toEqual({ name: 'Al.ice_2-x', publicKey: KEY2, hpk: expect.stringMatching(/^\S{44}$/) });
    expect((await zax(['contacts', 'list', '--id', id])).stdout).toBe(`Al.ice_2-x  ${KEY2}\nbob         ${KEY}\n`);
    expect(oneDoc(await zax(['contacts', 'list', '--id', id, '--json']))).toEqual([second, { name: 'bob', publicKey: KEY, hpk: expect.any(String) }]);

    const dup = await zax(['contacts', 'add', 'bob', KEY2, '--id', id]);
    expect(dup).toMatchObject({ code: 1, stdout: '' });
    expect(dup.stderr).toBe(`zax: error: a contact named "bob" already exists (${KEY}); use --force to replace it\n`);
    const forced = await zax(['contacts', 'add', 'bob', KEY2, '--force', '--id', id]);
    expect(forced.stdout).toBe(`replaced bob (was ${KEY}, now ${KEY2})\n`);
    expect(forced.stderr).toBe('zax: warning: "Al.ice_2-x" has the same public key; inbox shows one of the two names\n');
    expect((await stat(file)).mode & 0o777).toBe(0o600);

    expect(oneDoc(await zax(['contacts', 'remove', 'bob', '--id', id, '--json']))).toMatchObject({ name: 'bob', publicKey: KEY2 });
    expect((await zax(['contacts', 'list', '--id', id])).stdout).toBe(`Al.ice_2-x  ${KEY2}\n`);
    expect((await zax(['contacts', 'remove', 'Al.ice_2-x', '--id', id])).stdout).toBe(`removed Al.ice_2-x (${KEY2})\n`);
    expect((await zax(['contacts', 'list', '--id', id])).stdout).toBe('no contacts (add one with "zax contacts add NAME PUBKEY")\n');
    expect(oneDoc(await zax(['contacts', 'list', '--id', id, '--json']))).toEqual([]);
    // written by rename: no temporary file left behind
    expect((await readdir(home)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('the default contacts file is identity.contacts.json beside the default identity file, mode 0600', async () => {
    const config = join(home, 'xdg');
    const r = await zax(['contacts', 'add', 'bob', KEY], { env: { XDG_CONFIG_HOME: config } });
    expect(r.code).toBe(0);
    expect((await stat(join(config, 'zax', 'identity.contacts.json'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(config, 'zax'))).mode & 0o777).toBe(0o700);
  });

  it('a damaged contacts file is an error that names it', async () => {
    const id = join(home, 'c-damaged.json');
    writeFileSync(join(home, 'c-damaged.contacts.json'), '{"type":"zax-contacts","version":1,"contacts":[{"name":"bob"}]}');
    const r = await zax(['contacts', 'list', '--id', id]);
    expect(r).toMatchObject({ code: 1, stdout: '' });
    expect(r.stderr).toBe(`zax: error: contacts file ${join(home, 'c-damaged.contacts.json')}: entry 0 lacks "name" or "publicKey" (fix or remove it)\n`);
  });

  it('send --to NAME sends to that key; inbox decrypts every contact and names them; --from NAME', async () => {
    const relay = await startFakeRelay();
    try {
      const a = join(home, 'cs-alice.json');
      const b = join(home, 'cs-bob.json');
      const aliceKey = keyOfOut((await zax(['keygen', '--out', a])).stdout);
      const bobKey = keyOfOut((await zax(['keygen', '--out', b])).stdout);
      const carol = join(home, 'cs-carol.json');
      const carolKey = keyOfOut((await zax(['keygen', '--out', carol])).stdout);
      expect((await zax(['contacts', 'add', 'bob', bobKey, '--id', a])).code).toBe(0);
      expect((await zax(['contacts', 'add', 'alice', aliceKey, '--id', b])).code).toBe(0);

      const sent = oneDoc(await zax(['send', '--relay', relay.url, '--id', a, '--to', 'bob', '--json', 'hi bob'])) as { to: string };
      expect(sent).toMatchObject({ publicKey: bobKey, contact: 'bob' });
      expect(sent.to).toBe((oneDoc(await zax(['id', '--id', b, '--json'])) as IdJson).hpk);
      // a key that is a contact is named too
      expect(oneDoc(await zax(['send', '--relay', relay.url, '--id', a, '--to', bobKey, '--json', 'by key']))).toMatchObject({ contact: 'bob' });
      expect((await zax(['send', '--relay', relay.url, '--id', carol, '--to', bobKey, 'from carol'])).code).toBe(0);

      // no --from: the contact alice is decrypted and named, carol is not a contact
      const human = await zax(['inbox', '--relay', relay.url, '--id', b]);
      expect(human.stdout).toContain(`message  from alice (${aliceKey})\n  hi bob\n`);
      expect(human.stdout).toContain(`message  from alice (${aliceKey})\n  by key\n`);
      expect(human.stdout).toContain('(unknown sender)');
      const all = oneDoc(await zax(['inbox', '--relay', relay.url, '--id', b, '--json'])) as { contact: string | null; status: string; text: string | null }[];
      expect(all.map((m) => [m.contact, m.status, m.text])).toEqual([
        ['alice', 'decrypted', 'hi bob'],
        ['alice', 'decrypted', 'by key'],
        [null, 'unknown-sender', null],
      ]);
      // --from a key adds a sender; --from a name with --only filters by it
      const withCarol = oneDoc(await zax(['inbox', '--relay', relay.url, '--id', b, '--from', carolKey, '--json'])) as { text: string; sender: string }[];
      expect(withCarol.map((m) => m.text)).toEqual(['hi bob', 'by key', 'from carol']);
      const onlyAlice = oneDoc(await zax(['inbox', '--relay', relay.url, '--id', b, '--from', 'alice', '--only', '--json'])) as { text: string }[];
      expect(onlyAlice.map((m) => m.text)).toEqual(['hi bob', 'by key']);

      const unknown = await zax(['send', '--relay', relay.url, '--id', a, '--to', 'dave', 'hi']);
      expect(unknown).toMatchObject({ code: 2, stdout: '' });
      expect(unknown.stderr).toMatch(/^zax: --to: no contact named "dave" \(see "zax contacts list"\), and not a public key/);
    } finally {
      await relay.close();
    }
  });
});

describe('watch', () => {
  let relay: Relay;
  let alice: string;
  let bob: string;
  let bobKey: string;
  let aliceKey: string;
  beforeAll(async () => {
    relay = await Relay.start({ redisUrl: inject('redisUrl') });
    alice = join(home, 'w-alice.json');
    bob = join(home, 'w-bob.json');
    aliceKey = keyOfOut((await zax(['keygen', '--out', alice])).stdout);
    bobKey = keyOfOut((await zax(['keygen', '--out', bob])).stdout);
    expect((await zax(['contacts', 'add', 'alice', aliceKey, '--id', bob])).code).toBe(0);
  });
  afterAll(async () => {
    await relay?.stop();
  });

  const send = async (text: string): Promise<void> => {
    const r = await zax(['send', '--relay', relay.url, '--id', alice, '--to', bobKey, text]);
    expect(r.code).toBe(0);
  };

  it('prints each message once as it arrives (NDJSON), deletes with --delete, stops after --exit-after', async () => {
    const w = zaxRunning(['watch', '--relay', relay.url, '--id', bob, '--json', '--interval', '0.2', '--delete', '--exit-after', '3']);
    await send('one');
    await w.until((out) => out.includes('"one"'));
    await send('two');
    await send('three');
    const r = await w.exit;
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const lines = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { text: string; contact: string; sender: string; nonce: string });
    expect(lines.map((m) => m.text)).toEqual(['one', 'two', 'three']);
    expect(lines.every((m) => m.contact === 'alice' && m.sender === aliceKey)).toBe(true);
    expect(new Set(lines.map((m) => m.nonce)).size).toBe(3);
    expect(oneDoc(await zax(['inbox', '--relay', relay.url, '--id', bob, '--json']))).toEqual([]);
  });

  it('without --delete, a message is printed once over many polls; SIGINT stops it with exit 0', async () => {
    await send('already there');
    const w = zaxRunning(['watch', '--relay', relay.url, '--id', bob, '--interval', '0.1']);
    await w.until((out) => out.includes('already there'));
    await send('while watching');
    await w.until((out) => out.includes('while watching'));
    // Several more polls (0.1 s base, doubling while nothing is new) with both still in the mailbox.
    await new Promise((res) => setTimeout(res, 1500));
    w.child.kill('SIGINT');
    const r = await w.exit;
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(occurrences(r.stdout, '  already there\n')).toBe(1);
    expect(occurrences(r.stdout, '  while watching\n')).toBe(1);
    expect(r.stdout).toContain(`message  from alice (${aliceKey})\n`);
    expect(r.stdout).not.toContain('messages'); // no inbox header: one block per message
    expect((oneDoc(await zax(['inbox', '--relay', relay.url, '--id', bob, '--json'])) as unknown[]).length).toBe(2);
    expect((await zax(['delete', '--relay', relay.url, '--id', bob, '--all'])).code).toBe(0);
  });

  it('SIGTERM stops it too, with exit 0', async () => {
    const w = zaxRunning(['watch', '--relay', relay.url, '--id', bob, '--interval', '0.1', '--json']);
    await send('before term');
    await w.until((out) => out.includes('before term'));
    w.child.kill('SIGTERM');
    expect(await w.exit).toMatchObject({ code: 0, stderr: '' });
    expect((await zax(['delete', '--relay', relay.url, '--id', bob, '--all'])).code).toBe(0);
  });

  it('relay down: a warning line per failed poll and the watch goes on; --max-polls ends it (exit 1: the last poll failed)', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const r = await zax(['watch', '--relay', url, '--id', bob, '--interval', '0.1', '--max-polls', '3']);
    expect(r).toMatchObject({ code: 1, stdout: '' });
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    for (const l of lines.slice(0, 2)) expect(l).toMatch(new RegExp(`^zax: warning: cannot reach ${url}/start_session: connection refused at 127\\.0\\.0\\.1:${port} .*; next try in [\\d.]+ s$`));
    expect(lines[2]).toMatch(/^zax: error: cannot reach .*connection refused/);

    const j = await zax(['watch', '--relay', url, '--id', bob, '--interval', '0.1', '--max-polls', '2', '--json']);
    expect(j).toMatchObject({ code: 1, stdout: '' });
    const events = j.stderr.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, Record<string, unknown>>);
    expect(events).toEqual([
      { warning: { message: expect.stringContaining('connection refused'), kind: 'network', reason: 'connection-refused', retryInSec: expect.any(Number) } },
      { error: { message: expect.stringContaining('connection refused'), kind: 'network', reason: 'connection-refused' } },
    ]);
  });

  it('a relay that comes back: the watch goes on through the outage and prints what arrives', async () => {
    const port = await freePort();
    const w = zaxRunning(['watch', '--relay', `http://127.0.0.1:${port}`, '--id', bob, '--interval', '0.1', '--exit-after', '1', '--json']);
    // Refused polls first (warnings), then the relay appears at that port (a TCP proxy to it).
    await w.until((err) => occurrences(err, '"warning"') >= 2, 15_000, 'stderr');
    const target = new URL(relay.url);
    const sockets = new Set<Socket>();
    const proxy = createNetServer((socket) => {
      sockets.add(socket);
      const upstream = netConnect(Number(target.port), target.hostname);
      socket.pipe(upstream).pipe(socket);
      socket.on('error', () => upstream.destroy());
      upstream.on('error', () => socket.destroy());
    });
    await new Promise<void>((res) => proxy.listen(port, '127.0.0.1', res));
    try {
      await send('after the outage');
      const r = await w.exit;
      expect(r.code).toBe(0);
      expect((JSON.parse(r.stdout) as { text: string }).text).toBe('after the outage');
      const warnings = r.stderr.trimEnd().split('\n').map((l) => JSON.parse(l) as { warning?: { reason?: string } });
      expect(warnings.length).toBeGreaterThan(0);
      expect(warnings.every((x) => x.warning?.reason === 'connection-refused')).toBe(true);
      expect((await zax(['delete', '--relay', relay.url, '--id', bob, '--all'])).code).toBe(0);
    } finally {
      await new Promise((res) => {
        proxy.close(res);
        // keep-alive connections of the finished watch
        for (const c of sockets) c.destroy();
      });
    }
  });

  it("honours a relay's Retry-After", async () => {
    const fake = await startFakeRelay();
    try {
      fake.failNext('/command', 'throttled', 1, 2);
      const r = await zax(['watch', '--relay', fake.url, '--id', bob, '--interval', '0.1', '--max-polls', '2', '--json']);
      expect(r).toMatchObject({ code: 0, stdout: '' });
      expect(JSON.parse(r.stderr)).toEqual({
        warning: { message: expect.stringMatching(/^relay answered 429/), kind: 'relay', status: 429, retryAfterSec: 2, retryInSec: 2 },
      });
    } finally {
      await fake.close();
    }
  });

  it("a misconfiguration at the first poll ends the watch (the relay's core port: 403)", async () => {
    const r = await zax(['watch', '--relay', `http://127.0.0.1:${relay.core.port}`, '--id', bob, '--interval', '0.1']);
    expect(r).toMatchObject({ code: 1, stdout: '' });
    expect(r.stderr).toMatch(/^zax: error: relay answered 403 to \/start_session \(this looks like the relay's core port/);
  });
});

describe('sanitizeForTerminal', () => {
  it('escapes control characters and bidi overrides, keeps newlines, tabs and Unicode', () => {
    expect(sanitizeForTerminal('a\x1b[2Jb\r\x07\x9b\u202e\tc\nü🎉')).toBe('a\\x1b[2Jb\\x0d\\x07\\x9b\\u202e\tc\nü🎉');
  });
});
