/**
 * The identity file on disk (Node only): its default path, loading it, and writing it with mode 0600
 * in a 0700 directory. Its JSON is `serializeIdentity`/`parseIdentity` in `identity.ts`.
 */
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Crypto } from '@zax/protocol';
import { bestCrypto } from './crypto-backend.js';
import { IdentityError } from './errors.js';
import { parseIdentity, serializeIdentity, type Identity } from './identity.js';

/** `$ZAX_IDENTITY`, else `~/.config/zax/identity.json` (honouring `$XDG_CONFIG_HOME`). */
export function defaultIdentityPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ZAX_IDENTITY) return env.ZAX_IDENTITY;
  const config = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(config, 'zax', 'identity.json');
}

export async function loadIdentityFile(path: string, crypto: Crypto = bestCrypto()): Promise<Identity> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new IdentityError(`no identity file at ${path} (create one with "zax keygen")`);
    throw new IdentityError(`cannot read identity file ${path}: ${code ?? String(e)}`);
  }
  try {
    return parseIdentity(text, crypto);
  } catch (e) {
    if (e instanceof IdentityError) throw new IdentityError(`${path}: ${e.message}`);
    throw e;
  }
}

/** True when the file can be read by group or others (the CLI warns, like ssh). */
export async function isIdentityFileExposed(path: string): Promise<boolean> {
  if (process.platform === 'win32') return false;
  return ((await stat(path)).mode & 0o077) !== 0;
}

/**
 * Writes the identity with mode 0600 (parent directory created 0700). Refuses to replace an
 * existing file unless `overwrite`.
 */
export async function saveIdentityFile(path: string, id: Identity, options: { overwrite?: boolean } = {}): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  try {
    await writeFile(path, serializeIdentity(id), { mode: 0o600, flag: options.overwrite ? 'w' : 'wx' });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new IdentityError(`${path} already exists (use --force to replace it)`);
    throw new IdentityError(`cannot write identity file ${path}: ${code ?? String(e)}`);
  }
  // `mode` only applies when the file is created; an overwritten file keeps its old mode.
  await chmod(path, 0o600);
}
