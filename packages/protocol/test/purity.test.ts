/**
 * @zax/protocol stays pure, so the same code runs in Node, a browser and k6 (whose bundles include
 * it): no source file imports a Node module, the package depends on nothing Node-only, and it
 * compiles without Node's types.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const PKG = fileURLToPath(new URL('../', import.meta.url));
const SRC = join(PKG, 'src');
/** Dependencies checked to run in Node, browsers and k6 alike; a new one is added here only after that check. */
const PORTABLE_DEPENDENCIES = ['@noble/hashes', 'tweetnacl'];

const sources = readdirSync(SRC).filter((f) => f.endsWith('.ts'));
const builtins = new Set(builtinModules);

/** Every module specifier a file imports or re-exports, statically or dynamically, or requires. */
function specifiers(text: string): string[] {
  const found: string[] = [];
  for (const re of [/\b(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\b(?:import|require)\s*\(\s*['"]([^'"]+)['"]\s*\)/g]) {
    for (const m of text.matchAll(re)) found.push(m[1]!);
  }
  return found;
}

describe('@zax/protocol is pure', () => {
  it('has sources to check', () => {
    expect(sources.length).toBeGreaterThan(10);
  });
  for (const file of sources) {
    it(`${file} imports no Node module`, () => {
      const text = readFileSync(join(SRC, file), 'utf8');
      const node = specifiers(text).filter((s) => s.startsWith('node:') || builtins.has(s) || builtins.has(s.split('/')[0]!));
      expect(node).toEqual([]);
      expect(text).not.toMatch(/\brequire\s*\(|\bcreateRequire\b|\bprocess\./);
    });
  }
  it('depends only on portable packages, none of them native', () => {
    const pkg = JSON.parse(readFileSync(join(PKG, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
    expect(Object.keys(pkg.dependencies ?? {}).sort()).toEqual(PORTABLE_DEPENDENCIES);
    expect(pkg.optionalDependencies).toBeUndefined();
    expect(pkg.peerDependencies).toBeUndefined();
    expect(JSON.stringify(pkg)).not.toContain('sodium-native');
  });
  it('compiles without Node types', () => {
    const tsconfig = readFileSync(join(PKG, 'tsconfig.json'), 'utf8');
    expect(tsconfig).toMatch(/"types":\s*\[\]/);
  });
});
