/**
 * The Lua script registry of both tiers, in one shape: each tier lists its scripts (command name →
 * file in its package's `lua/` folder, kebab-case, and fixed key count) and gets them read once, as
 * the ScriptDefs its connection registers. A `-- @include name` line is replaced by
 * `lua/include/name.lua`, so scripts share helpers without a module system.
 */
import { readFileSync } from 'node:fs';
import type { ScriptDef } from './redis.js';

/** A script's file and fixed key count (undefined: the caller passes the key count first). */
export interface ScriptFile {
  readonly file: `${string}.lua`;
  readonly keys: number | undefined;
}

const INCLUDE_RE = /^-- @include ([a-z-]+)\s*$/m;

/** Reads `file` from the folder `luaDir` (a URL ending in `/`), inlining its includes. */
export function readLua(luaDir: URL, file: string): string {
  let src = readFileSync(new URL(file, luaDir), 'utf8');
  for (let m = INCLUDE_RE.exec(src); m !== null; m = INCLUDE_RE.exec(src)) {
    src = src.replace(m[0], readFileSync(new URL(`include/${m[1]}.lua`, luaDir), 'utf8'));
  }
  return src;
}

/** The scripts of `files`, read from `luaDir` on first use and kept. */
export function scriptRegistry<N extends string>(luaDir: URL, files: Readonly<Record<N, ScriptFile>>): () => Readonly<Record<N, ScriptDef>> {
  let defs: Readonly<Record<N, ScriptDef>> | null = null;
  return () =>
    (defs ??= Object.fromEntries(
      (Object.entries(files) as [N, ScriptFile][]).map(([name, s]) => [name, { lua: readLua(luaDir, s.file), keys: s.keys }]),
    ) as Record<N, ScriptDef>);
}
