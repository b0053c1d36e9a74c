/**
 * The CLI's contacts (Node only): names for correspondents' public keys, kept per identity in a
 * file next to the identity file (`identity.json` → `identity.contacts.json`; any other FILE →
 * FILE without `.json`, plus `.contacts.json`). It is a separate file so that editing contacts
 * never rewrites the file that holds the secret key. JSON:
 * `{"type":"zax-contacts","version":1,"contacts":[{"name","publicKey"}, …]}` sorted by name; written
 * with mode 0600 (to a temporary file in the same directory, then renamed over the old one), in
 * a 0700 directory. A missing file is an empty list. Changes go through `updateContacts`, which
 * holds a lock file (`<file>.lock`, created exclusively) from the read to the rename, so two
 * `zax contacts add` at once both land instead of the later write dropping the other's contact.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { b64, decodeFixed } from '@zax/protocol';
import { ZaxClientError } from './errors.js';
import { hpkOf } from './identity.js';

const FILE_TYPE = 'zax-contacts';
const FILE_VERSION = 1;

/** Letters, digits, `.`, `_`, `-`; 1 to 64 of them; not starting with `-` (it would read as an option). */
export const CONTACT_NAME = /^[A-Za-z0-9._][A-Za-z0-9._-]{0,63}$/;

export interface Contact {
  name: string;
  /** b64 of the correspondent's public key */
  publicKey: string;
}

/** A contacts file that cannot be read or written, or a name or key that cannot be used. */
export class ContactsError extends ZaxClientError {
  override readonly name = 'ContactsError';
}

/** The contacts file of an identity file. */
export function contactsPathFor(identityPath: string): string {
  const base = basename(identityPath);
  const stem = base.endsWith('.json') && base.length > 5 ? base.slice(0, -5) : base;
  return join(dirname(identityPath), `${stem}.contacts.json`);
}

/** Why `name` cannot be a contact name, or null when it can. */
export function contactNameProblem(name: string): string | null {
  if (!CONTACT_NAME.test(name)) {
    return `contact name ${JSON.stringify(name.length > 70 ? `${name.slice(0, 70)}…` : name)} is not 1 to 64 letters, digits, ".", "_" or "-" (not starting with "-")`;
  }
  if (decodeFixed(name, 32) !== null) return `contact name "${name}" looks like a public key: choose a name that does not`;
  return null;
}

export async function loadContacts(path: string): Promise<Contact[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    throw new ContactsError(`cannot read contacts file ${path}: ${code ?? String(e)}`);
  }
  const bad = (why: string): ContactsError => new ContactsError(`contacts file ${path}: ${why} (fix or remove it)`);
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  const file = o as { type?: unknown; version?: unknown; contacts?: unknown } | null;
  if (typeof file !== 'object' || file === null || file.type !== FILE_TYPE) throw bad(`not a contacts file (no "type": "${FILE_TYPE}")`);
  if (file.version !== FILE_VERSION) throw bad(`unsupported version ${JSON.stringify(file.version)}`);
  if (!Array.isArray(file.contacts)) throw bad('"contacts" is not an array');
  const seen = new Set<string>();
  return file.contacts.map((c: unknown, i) => {
    const entry = c as { name?: unknown; publicKey?: unknown } | null;
    if (typeof entry !== 'object' || entry === null || typeof entry.name !== 'string' || typeof entry.publicKey !== 'string') {
      throw bad(`entry ${i} lacks "name" or "publicKey"`);
    }
    const problem = contactNameProblem(entry.name);
    if (problem !== null) throw bad(problem);
    if (decodeFixed(entry.publicKey, 32) === null) throw bad(`"${entry.name}": "publicKey" is not 44 characters of base64`);
    if (seen.has(entry.name)) throw bad(`"${entry.name}" is listed twice`);
    seen.add(entry.name);
    return { name: entry.name, publicKey: entry.publicKey };
  });
}

/** Writes the list (sorted by name) with mode 0600: temporary file, then rename. */
export async function saveContacts(path: string, contacts: readonly Contact[]): Promise<void> {
  const sorted = [...contacts].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const text = `${JSON.stringify({ type: FILE_TYPE, version: FILE_VERSION, contacts: sorted }, null, 2)}\n`;
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await writeFile(tmp, text, { mode: 0o600, flag: 'wx' });
    await chmod(tmp, 0o600); // whatever the umask
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    const code = (e as NodeJS.ErrnoException).code;
    throw new ContactsError(`cannot write contacts file ${path}: ${code ?? String(e)}`);
  }
}

/** How long `updateContacts` waits for another writer's lock before giving up. */
const LOCK_WAIT_MS = 10_000;
/** A lock older than this was left by a process that died mid-update: it is taken over. */
const LOCK_STALE_MS = 30_000;

/**
 * Reads the list, lets `change` compute the new one, and writes it, all under the file's lock; the
 * result of `change` is returned. `change` may throw (nothing is written then).
 */
export async function updateContacts<T>(path: string, change: (list: Contact[]) => { contacts: readonly Contact[]; result: T }): Promise<T> {
  const lock = `${path}.lock`;
  await mkdir(dirname(path), { recursive: true, mode: 0o700 }).catch(() => undefined);
  await acquireLock(lock, path);
  try {
    const { contacts, result } = change(await loadContacts(path));
    await saveContacts(path, contacts);
    return result;
  } finally {
    await rm(lock, { force: true }).catch(() => undefined);
  }
}

async function acquireLock(lock: string, path: string): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (let delay = 5; ; delay = Math.min(2 * delay, 200)) {
    try {
      await writeFile(lock, `${process.pid}\n`, { mode: 0o600, flag: 'wx' });
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw new ContactsError(`cannot lock contacts file ${path}: ${code ?? String(e)}`);
    }
    const age = await stat(lock).then((st) => Date.now() - st.mtimeMs, () => 0);
    if (age > LOCK_STALE_MS) {
      await rm(lock, { force: true }).catch(() => undefined);
      continue;
    }
    if (Date.now() >= deadline) throw new ContactsError(`contacts file ${path} is locked by another zax (remove ${lock} if none is running)`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** b64(hpk) of a contact: the address their messages come from. */
export const contactHpk = (c: Contact): string => b64(hpkOf(decodeFixed(c.publicKey, 32)!));
