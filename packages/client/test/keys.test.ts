/** Identities and identity files: derivation, serialisation, file mode 0600, and refusals. */
import { mkdtemp, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { b64, h2 } from '@zax/protocol';
import {
  defaultIdentityPath,
  generateIdentity,
  IdentityError,
  identityFromSecretKey,
  isIdentityFileExposed,
  loadIdentityFile,
  parseIdentity,
  parseKey,
  saveIdentityFile,
  serializeIdentity,
} from '../src/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'zax-keys-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('identity', () => {
  it('hpk is h2(publicKey)', () => {
    const id = generateIdentity();
    expect(Buffer.from(id.hpk)).toEqual(Buffer.from(h2(id.publicKey)));
    expect(identityFromSecretKey(id.secretKey).publicKey).toEqual(id.publicKey);
  });

  it('round-trips through the JSON file format', () => {
    const id = generateIdentity();
    const text = serializeIdentity(id);
    expect(JSON.parse(text)).toEqual({ type: 'zax-identity', version: 1, publicKey: b64(id.publicKey), hpk: b64(id.hpk), secretKey: b64(id.secretKey) });
    const back = parseIdentity(text);
    expect(back.secretKey).toEqual(id.secretKey);
    expect(back.hpk).toEqual(id.hpk);
  });

  it('refuses files it cannot trust', () => {
    const good = JSON.parse(serializeIdentity(generateIdentity())) as Record<string, unknown>;
    const other = generateIdentity();
    expect(() => parseIdentity('nope')).toThrow(IdentityError);
    expect(() => parseIdentity('[]')).toThrow(/not a JSON object/);
    expect(() => parseIdentity(JSON.stringify({ ...good, type: 'x' }))).toThrow(/"type"/);
    expect(() => parseIdentity(JSON.stringify({ ...good, version: 2 }))).toThrow(/version/);
    expect(() => parseIdentity(JSON.stringify({ ...good, secretKey: 'AAAA' }))).toThrow(/secretKey/);
    expect(() => parseIdentity(JSON.stringify({ ...good, publicKey: b64(other.publicKey) }))).toThrow(/does not match/);
    expect(() => parseIdentity(JSON.stringify({ ...good, hpk: b64(other.hpk) }))).toThrow(/does not match/);
    // publicKey and hpk are optional
    const { publicKey: _p, hpk: _h, ...minimal } = good;
    expect(() => parseIdentity(JSON.stringify(minimal))).not.toThrow();
  });

  it('parseKey takes strict base64 of 32 bytes or 32 raw bytes', () => {
    const id = generateIdentity();
    expect(parseKey(b64(id.publicKey))).toEqual(Buffer.from(id.publicKey));
    expect(() => parseKey(b64(id.publicKey).replace('=', ''))).toThrow(IdentityError);
    expect(() => parseKey(b64(new Uint8Array(24)))).toThrow(IdentityError);
    expect(() => parseKey(new Uint8Array(33))).toThrow(/32 bytes/);
  });
});

describe('identity files', () => {
  it('are written with mode 0600 in a 0700 directory, and load back', async () => {
    const path = join(dir, 'sub', 'identity.json');
    const id = generateIdentity();
    await saveIdentityFile(path, id);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'sub'))).mode & 0o777).toBe(0o700);
    expect((await loadIdentityFile(path)).publicKey).toEqual(id.publicKey);
    expect(await isIdentityFileExposed(path)).toBe(false);
  });

  it('are not replaced unless asked, and a replaced file is 0600 again', async () => {
    const path = join(dir, 'identity.json');
    await writeFile(path, 'old');
    await chmod(path, 0o644);
    expect(await isIdentityFileExposed(path)).toBe(true);
    await expect(saveIdentityFile(path, generateIdentity())).rejects.toThrow(/already exists/);
    expect(await readFile(path, 'utf8')).toBe('old');
    await saveIdentityFile(path, generateIdentity(), { overwrite: true });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('a missing or broken file is an IdentityError naming the path', async () => {
    await expect(loadIdentityFile(join(dir, 'missing.json'))).rejects.toThrow(/no identity file at .*missing\.json/);
    await writeFile(join(dir, 'bad.json'), '{');
    await expect(loadIdentityFile(join(dir, 'bad.json'))).rejects.toThrow(/bad\.json: identity file is not JSON/);
  });

  it('default path: $ZAX_IDENTITY, else $XDG_CONFIG_HOME/zax, else ~/.config/zax', () => {
    expect(defaultIdentityPath({ ZAX_IDENTITY: '/x/id.json' })).toBe('/x/id.json');
    expect(defaultIdentityPath({ XDG_CONFIG_HOME: '/cfg' })).toBe('/cfg/zax/identity.json');
    expect(defaultIdentityPath({})).toMatch(/\.config\/zax\/identity\.json$/);
  });
});
