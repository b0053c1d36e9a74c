/**
 * The `zax` file commands and several relays, against real relays (test/support/relay.ts):
 * send-file → files → receive-file round trips of multi-chunk files (SHA-256 equal), progress on
 * standard error (a redrawn line on a terminal — a fake TTY in process, and a real one under
 * `script` —, plain lines otherwise, NDJSON with --json), the JSON documents, safe local names,
 * no overwriting without --force, an upload interrupted through the io's interrupt hook and
 * continued with --resume, and send/inbox/status/delete/send-file/files/receive-file through 3
 * (and 4, one of them down) independent relays with --copies 2.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort, startRedisServer, type RedisServer } from '../../../test/support/redis-server.js';
import { Relay } from '../../../test/support/relay.js';
import { runCli, type CliIo } from '../src/cli-app.js';
import { safeFileName } from '../src/cli-files.js';
import { generateIdentity, pickRelays } from '../src/index.js';
import { saveIdentityFile } from '../src/identity-file.js';
import { CLI, runZax, type Run } from './support/run-cli.js';


let home: string;

/** The CLI in a clean environment: in this process unless the run needs its own (`runZax`). */
function zax(args: string[], env: Record<string, string> = {}, cwd?: string): Promise<Run> {
  return runZax(args, { home, env, ...(cwd !== undefined ? { cwd } : {}) });
}

/** runCli in this process: stderr as given (a fake TTY, or one that interrupts), stdout gathered. */
async function zaxIn(args: string[], stderr: CliIo['stderr'], onInterrupt?: CliIo['onInterrupt']): Promise<{ code: number; stdout: string }> {
  let stdout = '';
  const io: CliIo = {
    stdout: { write: (s: string | Uint8Array) => (stdout += typeof s === 'string' ? s : Buffer.from(s).toString()) },
    stderr,
    stdin: (async function* () {})(),
    env: { HOME: home },
    ...(onInterrupt ? { onInterrupt } : {}),
  };
  return { code: await runCli(args, io), stdout };
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const doc = <T>(r: Run | { stdout: string }): T => JSON.parse(r.stdout) as T;
const jsonLines = (s: string): Record<string, Record<string, unknown>>[] =>
  s
    .trimEnd()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, Record<string, unknown>>);

interface SentDoc {
  uploadID: string;
  nonce: string;
  token: string;
  to: string;
  publicKey: string;
  contact: string | null;
  name: string;
  size: number;
  chunks: number;
  resumedFrom: number;
}
interface FileDoc {
  uploadID: string;
  nonce: string;
  name: string | null;
  size: number | null;
  sender: string | null;
  contact: string | null;
  status: string | null;
  bytesStored: number | null;
}
interface ReceivedDoc {
  uploadID: string;
  nonce: string;
  name: string;
  path: string | null;
  size: number;
  sha256: string;
  deleted: boolean;
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx tsc -b packages/client" first`);
  home = await mkdtemp(join(tmpdir(), 'zax-cli-files-'));
});
afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

describe('safeFileName', () => {
  it('keeps the last path component, without controls, leading dots or reserved characters', () => {
    expect(safeFileName('../../etc/passwd')).toBe('passwd');
    expect(safeFileName('..\\..\\windows\\system.ini')).toBe('system.ini');
    expect(safeFileName('..')).toBe('file');
    expect(safeFileName('/')).toBe('file');
    expect(safeFileName('')).toBe('file');
    expect(safeFileName('.bashrc')).toBe('bashrc');
    expect(safeFileName('a\x1b[31mred\x07.txt')).toBe('a[31mred.txt');
    expect(safeFileName('evil\u202etxt.exe')).toBe('eviltxt.exe');
    expect(safeFileName('con:fig?.txt. ')).toBe('config.txt');
    expect(safeFileName('photo 1.jpg')).toBe('photo 1.jpg');
    expect(new TextEncoder().encode(safeFileName('é'.repeat(300))).length).toBeLessThanOrEqual(200);
  });
});

describe('send-file, files, receive-file through one relay', () => {
  let relay: Relay;
  let alice: string;
  let bob: string;
  let aliceKey: string;
  let bobKey: string;
  let work: string;
  beforeAll(async () => {
    relay = await Relay.start({ redisUrl: inject('redisUrl') });
    alice = join(home, 'alice', 'identity.json');
    bob = join(home, 'bob', 'identity.json');
    aliceKey = doc<{ publicKey: string }>(await zax(['keygen', '--out', alice, '--json'])).publicKey;
    bobKey = doc<{ publicKey: string }>(await zax(['keygen', '--out', bob, '--json'])).publicKey;
    expect((await zax(['contacts', 'add', 'alice', aliceKey, '--id', bob])).code).toBe(0);
    expect((await zax(['contacts', 'add', 'bob', bobKey, '--id', alice])).code).toBe(0);
    work = await mkdtemp(join(home, 'work-'));
  });
  afterAll(async () => {
    await relay?.stop();
  });

  const asAlice = (): string[] => ['--relay', relay.url, '--id', alice];
  const asBob = (): string[] => ['--relay', relay.url, '--id', bob];
  const bytesFile = (name: string, size: number): { path: string; bytes: Buffer } => {
    const bytes = randomBytes(size);
    const path = join(work, name);
    writeFileSync(path, bytes);
    return { path, bytes };
  };
  const clearBob = async (): Promise<void> => {
    for (const f of doc<FileDoc[]>(await zax(['files', ...asBob(), '--json']))) await zax(['receive-file', ...asBob(), '--out', join(work, 'trash'), '--force', '--delete', f.uploadID]);
    expect((await zax(['delete', ...asBob(), '--all'])).code).toBe(0);
  };

  it('round trip of a multi-chunk file with --json: documents, NDJSON progress, SHA-256 equal; --delete', async () => {
    const { path, bytes } = bytesFile('report.bin', 600 * 1024 + 123);
    const sent = await zax(['send-file', ...asAlice(), '--to', 'bob', '--chunk-size', '65536', '--json', path]);
    expect(sent.code).toBe(0);
    const s = doc<SentDoc>(sent);
    expect(s).toMatchObject({ name: 'report.bin', size: bytes.length, chunks: 10, contact: 'bob', publicKey: bobKey, resumedFrom: 0 });
    expect(s.uploadID).toEqual(expect.any(String));
    const progress = jsonLines(sent.stderr).map((l) => l.progress!);
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress.at(-1)).toMatchObject({ bytes: bytes.length, totalBytes: bytes.length, totalChunks: 10, percent: 100, done: true });
    expect(progress.slice(0, -1).every((p) => p.done === false && (p.percent as number) < 100)).toBe(true);
    // The checkpoint is gone once the file is sent.
    expect(await readdir(join(home, 'alice', 'uploads')).catch(() => [])).toEqual([]);

    const files = await zax(['files', ...asBob(), '--json']);
    expect(files).toMatchObject({ code: 0, stderr: '' });
    expect(doc<FileDoc[]>(files)).toEqual([
      expect.objectContaining({ uploadID: s.uploadID, nonce: s.nonce, name: 'report.bin', size: bytes.length, sender: aliceKey, contact: 'alice', status: 'COMPLETE', bytesStored: expect.any(Number) }),
    ]);
    const human = await zax(['files', ...asBob()]);
    expect(human.stdout).toContain(`1 file\n\nreport.bin  600 KiB  COMPLETE  from alice (${aliceKey})\n  uploadID ${s.uploadID}  nonce ${s.nonce}\n`);

    const out = join(work, 'in');
    await mkdir(out);
    const got = await zax(['receive-file', ...asBob(), '--out', out, '--json', s.uploadID]);
    expect(got.code).toBe(0);
    const r = doc<ReceivedDoc>(got);
    expect(r).toEqual({ uploadID: s.uploadID, nonce: s.nonce, name: 'report.bin', path: join(out, 'report.bin'), size: bytes.length, sha256: sha256(bytes), deleted: false });
    expect(sha256(readFileSync(join(out, 'report.bin')))).toBe(sha256(bytes));
    expect(jsonLines(got.stderr).at(-1)!.progress).toMatchObject({ bytes: bytes.length, done: true });
    expect((await readdir(out)).sort()).toEqual(['report.bin']); // no temporary file left

    // Never over an existing file without --force; by nonce too; --delete removes file and message.
    const again = await zax(['receive-file', ...asBob(), '--out', out, s.nonce]);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`zax: error: ${join(out, 'report.bin')} already exists: use --force to replace it, or --out another path\n`);
    writeFileSync(join(out, 'report.bin'), 'old');
    const forced = await zax(['receive-file', ...asBob(), '--out', out, '--force', '--delete', '--json', s.nonce]);
    expect(doc<ReceivedDoc>(forced)).toMatchObject({ sha256: sha256(bytes), deleted: true });
    expect(sha256(readFileSync(join(out, 'report.bin')))).toBe(sha256(bytes));
    expect(doc<FileDoc[]>(await zax(['files', ...asBob(), '--json']))).toEqual([]);
    expect(doc<{ ttlSec: number }>(await zax(['status', ...asAlice(), '--json', s.token])).ttlSec).toBe(-2);
  });

  it('plain progress lines without a terminal; text output; default destination is the current directory', async () => {
    const { path, bytes } = bytesFile('notes.txt', 300 * 1024);
    const sent = await zax(['send-file', ...asAlice(), '--to', bobKey, '--chunk-size', '16384', path]);
    expect(sent.code).toBe(0);
    expect(sent.stdout).toMatch(/^uploadID: \S+\nnonce:    \S{32}\ntoken:    \S{44}\n$/);
    expect(sent.stderr).not.toContain('\r');
    const lines = sent.stderr.trimEnd().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const l of lines.slice(0, -1)) expect(l).toMatch(/^sent [\d.]+ (B|KiB) of 300 KiB \(\d{1,2} %\)$/);
    expect(lines.at(-1)).toMatch(/^sent 300 KiB in \d+\.\d s/);

    const cwd = await mkdtemp(join(work, 'cwd-'));
    const got = await zax(['receive-file', ...asBob(), /^uploadID: (\S+)$/m.exec(sent.stdout)![1]!], {}, cwd);
    expect(got.code).toBe(0);
    expect(got.stdout).toBe(`${join(cwd, 'notes.txt')}\n`);
    expect(got.stderr).toMatch(/^received 300 KiB in \d+\.\d s/m);
    expect(readFileSync(join(cwd, 'notes.txt')).equals(bytes)).toBe(true);
    await clearBob();
  });

  it('a redrawn progress line on a (fake) terminal, ending with a final line', async () => {
    const { path } = bytesFile('tty.bin', 2 * 1024 * 1024);
    let err = '';
    const r = await zaxIn(['send-file', ...asAlice(), '--to', 'bob', '--chunk-size', '32768', path], { isTTY: true, columns: 100, write: (s: string) => (err += s) });
    expect(r.code).toBe(0);
    expect(err).toMatch(/^\rsending \[[#-]+\] +\d+ %/);
    expect(err).toMatch(/\r[^\r\n]*sending [^\r\n]* \d+ % /);
    expect(err).toMatch(/\rsent 2 MiB in \d+\.\d s[^\n]*\x1b\[K\n$/);
    expect(err.split('\n')).toHaveLength(2); // one line, redrawn, then the final one
    await clearBob();
  });

  it("a sender-chosen name like ../../etc/passwd lands as a safe name inside the directory", async () => {
    const { path, bytes } = bytesFile('innocent.txt', 1000);
    const s = doc<SentDoc>(await zax(['send-file', ...asAlice(), '--to', 'bob', '--name', '../../etc/passwd', '--json', path]));
    expect(s.name).toBe('../../etc/passwd');
    const listed = doc<FileDoc[]>(await zax(['files', ...asBob(), '--json']));
    expect(listed[0]!.name).toBe('../../etc/passwd');
    const deep = join(work, 'a', 'b');
    await mkdir(deep, { recursive: true });
    const got = doc<ReceivedDoc>(await zax(['receive-file', ...asBob(), '--out', deep, '--json', s.uploadID]));
    expect(got.path).toBe(join(deep, 'passwd'));
    expect(readFileSync(join(deep, 'passwd')).equals(bytes)).toBe(true);
    expect(await readdir(join(work, 'a'))).toEqual(['b']);
    // An explicit --out FILE is the reader's choice, used as given.
    const named = doc<ReceivedDoc>(await zax(['receive-file', ...asBob(), '--out', join(work, 'chosen.txt'), '--json', s.uploadID]));
    expect(named.path).toBe(join(work, 'chosen.txt'));
    await clearBob();
  });

  it('--out - writes the file to standard output', async () => {
    const { path, bytes } = bytesFile('stdout.bin', 70_000);
    const s = doc<SentDoc>(await zax(['send-file', ...asAlice(), '--to', 'bob', '--json', path]));
    const child = spawn(process.execPath, [CLI, 'receive-file', ...asBob(), '--out', '-', s.uploadID], { env: { PATH: process.env.PATH ?? '', HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => chunks.push(d));
    const code = await new Promise((res) => child.on('close', res));
    expect(code).toBe(0);
    expect(sha256(Buffer.concat(chunks))).toBe(sha256(bytes));
    await clearBob();
  });

  it('an upload interrupted after some chunks (exit 130, checkpoint 0600) continues with --resume', async () => {
    const { path, bytes } = bytesFile('big.bin', 40 * 16384 + 5);
    let handler: (() => void) | null = null;
    let err = '';
    const r = await zaxIn(
      ['send-file', ...asAlice(), '--to', 'bob', '--chunk-size', '16384', '--json', path],
      {
        write: (s: string) => {
          err += s;
          // Ctrl-C at the first progress event (10 %).
          if (s.startsWith('{"progress"') && handler !== null) {
            const h = handler;
            handler = null;
            h();
          }
        },
      },
      (h) => {
        handler = h;
        return () => (handler = null);
      },
    );
    expect(r).toEqual({ code: 130, stdout: '' });
    const last = jsonLines(err).at(-1)!;
    expect(last.error).toMatchObject({ kind: 'interrupted', resume: expect.stringContaining('zax send-file --resume --relay') });
    expect(last.error!.message).toMatch(/^upload interrupted: [\d.]+ KiB of 640 KiB acknowledged by the relay\. To continue it: zax send-file --resume /);
    const uploads = join(home, 'alice', 'uploads');
    const [cpFile, ...more] = await readdir(uploads);
    expect(more).toEqual([]);
    expect((await stat(join(uploads, cpFile!))).mode & 0o777).toBe(0o600);
    expect((await stat(uploads)).mode & 0o777).toBe(0o700);
    const state = JSON.parse(readFileSync(join(uploads, cpFile!), 'utf8')) as { file: string; checkpoint: { nextPart: number; skey: string } };
    expect(state.file).toBe(path);
    expect(state.checkpoint.nextPart).toBeGreaterThan(0);
    expect(state.checkpoint.nextPart).toBeLessThan(41);
    // Not complete: the recipient sees it, but cannot download it yet.
    const listed = doc<FileDoc[]>(await zax(['files', ...asBob(), '--json']));
    expect(listed).toEqual([expect.objectContaining({ name: 'big.bin', status: 'UPLOADING' })]);
    const early = await zax(['receive-file', ...asBob(), '--out', join(work, 'early.bin'), listed[0]!.uploadID]);
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(/is UPLOADING, not COMPLETE: the sender has not finished/);
    expect(existsSync(join(work, 'early.bin'))).toBe(false);
    expect((await readdir(work)).filter((n) => n.endsWith('.part'))).toEqual([]);

    const resumed = await zax(['send-file', '--resume', ...asAlice(), '--to', 'bob', '--json', path]);
    expect(resumed.code).toBe(0);
    const s = doc<SentDoc>(resumed);
    expect(s.uploadID).toBe(listed[0]!.uploadID);
    expect(s.resumedFrom).toBe(state.checkpoint.nextPart * 16384);
    expect(await readdir(uploads)).toEqual([]);
    const got = doc<ReceivedDoc>(await zax(['receive-file', ...asBob(), '--out', join(work, 'big.bin.received'), '--json', s.uploadID]));
    expect(got.sha256).toBe(sha256(bytes));
    expect(sha256(readFileSync(join(work, 'big.bin.received')))).toBe(sha256(bytes));

    // Nothing left to resume.
    const none = await zax(['send-file', '--resume', ...asAlice(), '--to', 'bob', path]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^zax: error: no interrupted upload of .*big\.bin to bob to resume/);
    await clearBob();
  });

  it('usage errors: --resume with several relays or with --name, --json with --out -, a missing file', async () => {
    const several = await zax(['send-file', '--resume', '--relay', relay.url, '--relay', 'http://127.0.0.1:9', '--to', 'bob', '--id', alice, 'x']);
    expect(several.code).toBe(2);
    expect(several.stderr).toMatch(/^zax: --resume works with one relay: an upload through several relays is not resumed/);
    expect((await zax(['send-file', ...asAlice(), '--to', 'bob', '--resume', '--name', 'n', 'x'])).stderr).toMatch(/--resume keeps the name/);
    expect((await zax(['receive-file', ...asBob(), '--out', '-', '--json', 'x'])).stderr).toMatch(/"kind":"usage"/);
    expect((await zax(['send-file', ...asAlice(), '--to', 'bob', '--chunk-size', '0', 'x'])).code).toBe(2);
    const missing = await zax(['send-file', ...asAlice(), '--to', 'bob', join(work, 'nope')]);
    expect(missing).toMatchObject({ code: 1, stderr: `zax: error: cannot read ${join(work, 'nope')} (ENOENT)\n` });
    const unknown = await zax(['receive-file', ...asBob(), 'AAAA']);
    expect(unknown.stderr).toBe('zax: error: no file with uploadID or nonce "AAAA" in your mailbox (see "zax files")\n');
  });

  it('a real terminal (script): \\r frames with a percentage, then the final line', async () => {
    let script = true;
    try {
      execFileSync('script', ['--version'], { stdio: 'ignore' });
    } catch {
      script = false;
    }
    if (!script) {
      console.warn('skipped: "script" (util-linux) is not installed');
      return;
    }
    const { path } = bytesFile('term.bin', 4 * 1024 * 1024);
    const cmd = [process.execPath, CLI, 'send-file', ...asAlice(), '--to', 'bob', '--chunk-size', '32768', path].map((a) => `'${a}'`).join(' ');
    const out = execFileSync('script', ['-qec', cmd, '/dev/null'], { env: { PATH: process.env.PATH ?? '', HOME: home, COLUMNS: '100' }, encoding: 'utf8', timeout: 60_000 });
    expect(out).toMatch(/\rsending [^\r\n]*\d+ %/);
    expect(out).toMatch(/\rsent 4 MiB in \d+\.\d s[^\n]*\n/);
    expect(out).toMatch(/uploadID: \S+/);
    await clearBob();
  });
});

describe('several relays: --relay A --relay B --relay C --copies 2', () => {
  let stores: RedisServer[] = [];
  let relays: Relay[] = [];
  let urls: string[] = [];
  let alice: string;
  let aliceKey: string;
  beforeAll(async () => {
    stores = await Promise.all([0, 1, 2].map(() => startRedisServer()));
    relays = await Promise.all(stores.map((s) => Relay.start({ redisUrl: s.url })));
    urls = relays.map((r) => r.url);
    alice = join(home, 'm-alice.json');
    aliceKey = doc<{ publicKey: string }>(await zax(['keygen', '--out', alice, '--json'])).publicKey;
  });
  afterAll(async () => {
    await Promise.all(relays.map((r) => r.stop()));
    await Promise.all(stores.map((s) => s.stop()));
  });

  /** A recipient whose 2 relays among `list` satisfy `ok`. */
  async function recipient(list: string[], ok: (chosen: string[]) => boolean): Promise<{ path: string; key: string; chosen: string[] }> {
    for (;;) {
      const id = generateIdentity();
      const chosen = pickRelays(list, id.hpk, 2);
      if (!ok(chosen)) continue;
      const path = join(home, `m-${Buffer.from(id.hpk).toString('hex').slice(0, 8)}.json`);
      await saveIdentityFile(path, id);
      expect((await zax(['contacts', 'add', 'alice', aliceKey, '--id', path])).code).toBe(0);
      return { path, key: Buffer.from(id.publicKey).toString('base64'), chosen };
    }
  }

  it('send stores on the 2 chosen relays; inbox (ZAX_RELAY list, another order) shows the message once', async () => {
    const bob = await recipient(urls, () => true);
    const relayArgs = urls.flatMap((u) => ['--relay', u]);
    const sent = await zax(['send', ...relayArgs, '--copies', '2', '--id', alice, '--to', bob.key, '--json', 'hello twice']);
    expect(sent).toMatchObject({ code: 0, stderr: '' });
    const s = doc<{ token: string; nonce: string; relays: { url: string; token: string }[] }>(sent);
    expect(s.relays).toEqual(bob.chosen.map((url) => ({ url, token: s.token })));

    const inbox = await zax(['inbox', '--id', bob.path, '--json'], { ZAX_RELAY: [...urls].reverse().join(',') });
    expect(inbox).toMatchObject({ code: 0, stderr: '' });
    const items = doc<{ text: string; contact: string; relays: string[]; nonce: string }[]>(inbox);
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ text: 'hello twice', contact: 'alice', nonce: s.nonce });
    expect([...items[0]!.relays].sort()).toEqual([...bob.chosen].sort());
    // Each chosen relay has it, the third does not.
    for (const u of urls) {
      const one = doc<unknown[]>(await zax(['inbox', '--relay', u, '--id', bob.path, '--json']));
      expect(one).toHaveLength(bob.chosen.includes(u) ? 1 : 0);
    }
    // status asks every relay: live on two, gone on the third.
    const st = doc<{ ttlSec: number; relays: { url: string; ttlSec: number }[] }>(await zax(['status', ...relayArgs, '--id', alice, '--json', s.token]));
    expect(st.ttlSec).toBeGreaterThan(0);
    expect(st.relays.filter((r) => r.ttlSec > 0).map((r) => r.url).sort()).toEqual([...bob.chosen].sort());

    // A file through the same 2 relays: listed once, with both uploads; received from one.
    const work = await mkdtemp(join(home, 'm-work-'));
    const bytes = randomBytes(200_000);
    writeFileSync(join(work, 'multi.bin'), bytes);
    const sf = await zax(['send-file', ...relayArgs, '--id', alice, '--to', bob.key, '--chunk-size', '65536', '--json', join(work, 'multi.bin')]);
    expect(sf.code).toBe(0);
    const sfDoc = doc<SentDoc & { relays: { url: string; uploadID: string; token: string }[] }>(sf);
    expect(sfDoc.relays.map((o) => o.url)).toEqual(bob.chosen);
    expect(sfDoc.relays.every((o) => typeof o.uploadID === 'string' && o.token === sfDoc.token)).toBe(true);
    const listed = doc<(FileDoc & { uploads: { url: string; uploadID: string }[] })[]>(await zax(['files', ...relayArgs, '--id', bob.path, '--json']));
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ name: 'multi.bin', size: 200_000, contact: 'alice', status: 'COMPLETE', nonce: sfDoc.nonce });
    expect(listed[0]!.uploads.map((u) => u.url).sort()).toEqual([...bob.chosen].sort());
    const rf = await zax(['receive-file', ...relayArgs, '--id', bob.path, '--out', join(work, 'got.bin'), '--delete', '--json', sfDoc.nonce]);
    expect(rf.code).toBe(0);
    expect(doc<ReceivedDoc>(rf)).toMatchObject({ sha256: sha256(bytes), deleted: true });
    expect(readFileSync(join(work, 'got.bin')).equals(bytes)).toBe(true);
    expect(doc<FileDoc[]>(await zax(['files', ...relayArgs, '--id', bob.path, '--json']))).toEqual([]);

    const del = await zax(['delete', ...relayArgs, '--id', bob.path, '--json', s.nonce]);
    expect(doc<{ left: number; relays: { url: string; left: number }[] }>(del)).toEqual({ deleted: [s.nonce], left: 0, relays: bob.chosen.map((url) => ({ url, left: 0 })) });
    expect(doc<unknown[]>(await zax(['inbox', ...relayArgs, '--id', bob.path, '--json']))).toEqual([]);
  });

  it('a chosen relay that is down: warnings (text and JSON), exit 0; watch prints the message once', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const list = [...urls, dead];
    const bob = await recipient(list, (chosen) => chosen.includes(dead));
    const relayArgs = list.flatMap((u) => ['--relay', u]);
    const sent = await zax(['send', ...relayArgs, '--id', alice, '--to', bob.key, 'through one']);
    expect(sent.code).toBe(0);
    expect(sent.stderr).toMatch(new RegExp(`^zax: warning: send failed on ${dead.replace(/\./g, '\\.')}: .*connection refused`, 'i'));
    const inbox = await zax(['inbox', ...relayArgs, '--id', bob.path, '--json']);
    expect(inbox.code).toBe(0);
    expect(jsonLines(inbox.stderr)).toEqual([{ warning: expect.objectContaining({ url: dead, kind: 'network', message: expect.stringContaining(`reading the mailbox failed on ${dead}`) }) }]);
    expect(doc<{ text: string }[]>(inbox).map((m) => m.text)).toEqual(['through one']);
    // A file through the live one of the two; received from it.
    const work = await mkdtemp(join(home, 'd-work-'));
    const bytes = randomBytes(100_000);
    writeFileSync(join(work, 'd.bin'), bytes);
    const sf = await zax(['send-file', ...relayArgs, '--id', alice, '--to', bob.key, '--json', join(work, 'd.bin')]);
    expect(sf.code).toBe(0);
    expect(jsonLines(sf.stderr).filter((l) => l.warning !== undefined)).toEqual([{ warning: expect.objectContaining({ url: dead, message: expect.stringContaining(`sendFile failed on ${dead}`) }) }]);
    const rf = await zax(['receive-file', ...relayArgs, '--id', bob.path, '--out', join(work, 'got.bin'), '--delete', '--json', doc<SentDoc>(sf).uploadID]);
    expect(rf.code).toBe(0);
    expect(doc<ReceivedDoc>(rf).sha256).toBe(sha256(bytes));

    const watch = await zax(['watch', ...relayArgs, '--id', bob.path, '--json', '--interval', '0.1', '--max-polls', '3']);
    expect(watch.code).toBe(0);
    expect(jsonLines(watch.stdout).map((m) => m.text)).toEqual(['through one']);
    expect(jsonLines(watch.stderr)).toHaveLength(1); // the dead relay is reported when it starts failing, not at every poll

    const copies = await zax(['send', ...relayArgs, '--copies', '5', '--id', alice, '--to', bob.key, 'x']);
    expect(copies.code).toBe(2);
    expect(copies.stderr).toMatch(/--copies: expected a whole number from 1 to the number of relays \(4\), got "5"/);
  });
});
