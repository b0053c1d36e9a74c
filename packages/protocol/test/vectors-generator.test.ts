/**
 * The committed vectors are exactly what `vectors/generate.cjs` writes: the generator runs into a
 * temporary folder and every file must match the committed one byte for byte, with no file missing
 * or extra on either side. A vector edited by hand, or a generator changed without regenerating,
 * fails here.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { VECTORS_DIR } from '../../../test/support/vectors.js';

const out = mkdtempSync(join(tmpdir(), 'zax-vectors-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

const jsonFiles = (dir: string): string[] => readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

describe('vectors/generate.cjs', () => {
  it('reproduces every committed vector file byte for byte', () => {
    const run = spawnSync(process.execPath, [join(VECTORS_DIR, 'generate.cjs'), out], { encoding: 'utf8', timeout: 120_000 });
    expect(run.error).toBeUndefined();
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const committed = jsonFiles(VECTORS_DIR);
    expect(committed.length).toBeGreaterThan(0);
    expect(jsonFiles(out)).toEqual(committed);
    for (const f of committed) {
      const generated = readFileSync(join(out, f));
      expect(generated.equals(readFileSync(join(VECTORS_DIR, f))), `${f} differs from the generator's output`).toBe(true);
    }
  }, 120_000);
});
