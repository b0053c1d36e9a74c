/** Loads the protocol test vectors kept in `packages/protocol/test/vectors/` (see its README for provenance). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const VECTORS_DIR = fileURLToPath(new URL('../../packages/protocol/test/vectors/', import.meta.url));

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function loadVector<T = any>(name: string): T {
  return JSON.parse(readFileSync(join(VECTORS_DIR, name), 'utf8')) as T;
}

export const hex = (s: string): Buffer => Buffer.from(s, 'hex');
export const unb64 = (s: string): Buffer => Buffer.from(s, 'base64');
