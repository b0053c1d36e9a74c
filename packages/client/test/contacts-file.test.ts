/** The contacts file: concurrent updates all land, a failed change writes nothing, a stale lock is taken over. */
import { mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { b64 } from '@zax/protocol';
import { ContactsError, loadContacts, updateContacts, type Contact } from '../src/contacts-file.js';

let dir: string;
let path: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'zax-contacts-'));
  path = join(dir, 'zax', 'identity.contacts.json');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const key = (i: number): string => b64(new Uint8Array(32).fill(i + 1));
const add = (c: Contact) => (list: Contact[]) => ({ contacts: [...list.filter((k) => k.name !== c.name), c], result: undefined });

describe('updateContacts', () => {
  it('lets concurrent updates all land, and leaves no lock or temporary file behind', async () => {
    await Promise.all(Array.from({ length: 20 }, (_, i) => updateContacts(path, add({ name: `c${String(i).padStart(2, '0')}`, publicKey: key(i) }))));
    const list = await loadContacts(path);
    expect(list.map((c) => c.name)).toEqual(Array.from({ length: 20 }, (_, i) => `c${String(i).padStart(2, '0')}`));
    expect(await readdir(join(dir, 'zax'))).toEqual(['identity.contacts.json']);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('writes nothing when the change throws, and releases the lock', async () => {
    await updateContacts(path, add({ name: 'bob', publicKey: key(1) }));
    const before = await loadContacts(path);
    await expect(
      updateContacts(path, () => {
        throw new ContactsError('no');
      }),
    ).rejects.toThrow('no');
    expect(await loadContacts(path)).toEqual(before);
    await updateContacts(path, add({ name: 'carol', publicKey: key(2) }));
    expect((await loadContacts(path)).map((c) => c.name)).toEqual(['bob', 'carol']);
  });

  it('takes over a lock left by a process that died mid-update', async () => {
    await updateContacts(path, add({ name: 'bob', publicKey: key(1) }));
    const lock = `${path}.lock`;
    await writeFile(lock, '99999\n');
    const old = new Date(Date.now() - 120_000);
    await utimes(lock, old, old);
    await updateContacts(path, add({ name: 'carol', publicKey: key(2) }));
    expect((await loadContacts(path)).map((c) => c.name)).toEqual(['bob', 'carol']);
    expect(await readdir(join(dir, 'zax'))).toEqual(['identity.contacts.json']);
  });
});
