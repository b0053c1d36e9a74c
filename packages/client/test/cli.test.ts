/**
 * The built `zax` executable (`node packages/client/dist/cli.js`, so run `tsc -b packages/client`
 * first): help texts, usage errors (exit 2), readable runtime errors (exit 1, no stack trace), and a
 * full keygen → send → inbox → status → delete flow against the in-memory fake relay.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
    ['unknown option', ['send', '--bogus'], /Unknown option '--bogus'/],
    ['option without value', ['send', '--to'], /argument missing/],
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
    expect(r.stderr).toMatch(/^zax: error: cannot reach .*\/start_session: ECONNREFUSED\n$/);
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

describe('sanitizeForTerminal', () => {
  it('escapes control characters and bidi overrides, keeps newlines, tabs and Unicode', () => {
    expect(sanitizeForTerminal('a\x1b[2Jb\r\x07\x9b\u202e\tc\nü🎉')).toBe('a\\x1b[2Jb\\x0d\\x07\\x9b\\u202e\tc\nü🎉');
  });
});
