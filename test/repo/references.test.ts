/**
 * The repository stands alone, and what it cites exists. Over every tracked file (`git ls-files`,
 * the lockfile aside):
 *
 * - nothing points outside the repository: every relative path (a run of parent steps, in an import,
 *   a link, a config file or prose) resolves inside the root, one that names a `shared` folder must
 *   exist, and no absolute path of a build machine appears (the checkout's home anywhere, the
 *   temporary directory in documentation);
 * - every relative markdown link resolves to a file or folder of the repository;
 * - every section sign cites a heading of docs/PROTOCOL.md (a quoted name or a step number written
 *   right after it must be found in that section), every DEVIATION tag is a row of the deviation
 *   table, every checklist item cited (as section 8.n, or as the word item with numbers and ranges)
 *   is an item of section 8, and every quoted heading cited after DESIGN.md is a heading of
 *   docs/DESIGN.md.
 *
 * Reads files only: no Redis, no processes. A problem is reported as `path:line: what`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SECTION = '\u00a7';

interface Source {
  /** Repository-relative path, with forward slashes. */
  readonly path: string;
  readonly text: string;
}

/** Every tracked text file (the lockfile aside), as git lists it. */
function trackedFiles(): Source[] {
  const out = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const files: Source[] = [];
  for (const path of out.split('\0')) {
    if (path === '' || path === 'pnpm-lock.yaml') continue;
    const abs = resolve(ROOT, path);
    if (!existsSync(abs)) continue; // deleted in the working tree, not yet in the index
    const text = readFileSync(abs, 'utf8');
    if (text.includes('\0')) continue; // binary
    files.push({ path, text });
  }
  return files;
}

const lineOf = (text: string, index: number): number => text.slice(0, index).split('\n').length;
const where = (src: Source, index: number): string => `${src.path}:${lineOf(src.text, index)}`;

/** Whether an absolute path lies inside the repository root. */
function inside(abs: string): boolean {
  const rel = relative(ROOT, abs);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

// ---------- the two documents ----------

interface ProtocolDoc {
  /** Section number ("4", "4.0", "5.11") → its text, from its heading to the next heading of its level or above. */
  readonly sections: ReadonlyMap<string, string>;
  readonly deviations: ReadonlySet<number>;
  readonly items: ReadonlySet<number>;
}

const HEADING = /^(#{1,6})\s+(.*?)\s*$/;

function parseProtocol(text: string): ProtocolDoc {
  const lines = text.split('\n');
  const heads: { level: number; number: string | null; at: number }[] = [];
  lines.forEach((line, at) => {
    const m = HEADING.exec(line);
    if (m === null) return;
    const n = /^(\d+(?:\.\d+)*)\.?\s/.exec(`${m[2]} `);
    heads.push({ level: m[1]!.length, number: n === null ? null : n[1]!, at });
  });
  const sections = new Map<string, string>();
  heads.forEach((h, i) => {
    if (h.number === null) return;
    const next = heads.slice(i + 1).find((o) => o.level <= h.level);
    sections.set(h.number, lines.slice(h.at, next === undefined ? lines.length : next.at).join('\n'));
  });
  const deviations = new Set<number>();
  for (const m of (sections.get('1') ?? '').matchAll(/^\|\s*D(\d+)\s*\|/gm)) deviations.add(Number(m[1]));
  const items = new Set<number>();
  for (const m of (sections.get('8') ?? '').matchAll(/^(\d+)\.\s/gm)) items.add(Number(m[1]));
  return { sections, deviations, items };
}

function parseHeadings(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const m = HEADING.exec(line);
    if (m !== null) names.add(m[2]!);
  }
  return names;
}

/** A quoted name that a comment wrapped over lines: the comment leaders go, spaces collapse. */
const unwrap = (s: string): string => s.replace(/\s*\n\s*(?:\*|--|\/\/|#)?\s*/g, ' ').trim();

// ---------- the checks ----------

const files = trackedFiles();
/** The two documents are read from the working tree, tracked yet or not. */
const readDoc = (path: string): Source | undefined =>
  existsSync(resolve(ROOT, path)) ? { path, text: readFileSync(resolve(ROOT, path), 'utf8') } : undefined;
const protocolSource = readDoc('docs/PROTOCOL.md');
const designSource = readDoc('docs/DESIGN.md');
const protocol = parseProtocol(protocolSource?.text ?? '');
const designHeadings = parseHeadings(designSource?.text ?? '');
const isMarkdown = (path: string): boolean => path.endsWith('.md');
const underTest = (path: string): boolean => /(^|\/)test\//.test(path);

/** A relative path: parent steps, then path characters (no quote, bracket, space or glob star). */
const RELATIVE_PATH = /(?<![\w./-])((?:\.\.\/)+[^\s'"`()[\]<>,;*|]*)/g;
/** The checkout's home, as an absolute path (written so that this file does not match itself). */
const MACHINE_HOME = new RegExp(`(?<![\\w.-])/${'wor'}k/`, 'g');
const MACHINE_TMP = new RegExp(`(?<![\\w.$-])/${'tm'}p/`, 'g');

function outsideReferences(src: Source): string[] {
  const problems: string[] = [];
  for (const m of src.text.matchAll(RELATIVE_PATH)) {
    const target = m[1]!;
    const abs = resolve(ROOT, dirname(src.path), target.replace(/[#?].*$/, ''));
    if (!inside(abs)) problems.push(`${where(src, m.index)}: "${target}" leaves the repository`);
    else if (/^(?:\.\.\/)+shared(?:\/|$)/.test(target) && !existsSync(abs)) {
      problems.push(`${where(src, m.index)}: "${target}" names a shared folder that is not in the repository`);
    }
  }
  for (const m of src.text.matchAll(MACHINE_HOME)) problems.push(`${where(src, m.index)}: an absolute machine path`);
  if (isMarkdown(src.path)) {
    for (const m of src.text.matchAll(MACHINE_TMP)) problems.push(`${where(src, m.index)}: an absolute temporary path in documentation`);
  }
  return problems;
}

const MD_LINK = /\[[^\]\n]*\]\(\s*([^)\s]+)(?:\s+"[^"]*")?\s*\)/g;

function brokenLinks(src: Source): string[] {
  if (!isMarkdown(src.path)) return [];
  const problems: string[] = [];
  for (const m of src.text.matchAll(MD_LINK)) {
    const target = m[1]!;
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) continue; // URLs, anchors on the page
    const path = decodeURI(target.replace(/[#?].*$/, ''));
    const abs = path.startsWith('/') ? resolve(ROOT, `.${path}`) : resolve(ROOT, dirname(src.path), path);
    if (!inside(abs)) problems.push(`${where(src, m.index)}: link "${target}" leaves the repository`);
    else if (!existsSync(abs)) problems.push(`${where(src, m.index)}: link "${target}" names no file`);
  }
  return problems;
}

/** "§4.2", "§5.1–5.6", each optionally followed by a quoted name or a step number. */
const SECTION_CITE = new RegExp(`${SECTION}\\s*(\\d+(?:\\.\\d+)?)(?:\\s*[–-]\\s*(\\d+(?:\\.\\d+)?))?`, 'g');

function sectionCites(src: Source): string[] {
  const problems: string[] = [];
  for (const m of src.text.matchAll(SECTION_CITE)) {
    // Another document's numbering: "RFC 6797 §7.2", "the paper's §2.3".
    if (/(?:RFC\s*\d+|paper(?:'s)?)\s*$/i.test(src.text.slice(Math.max(0, m.index - 16), m.index))) continue;
    const at = where(src, m.index);
    const cited = [m[1]!, ...(m[2] !== undefined ? [m[2]] : [])];
    for (const n of cited) {
      const item = /^8\.(\d+)$/.exec(n);
      if (item !== null) {
        if (!protocol.items.has(Number(item[1]))) problems.push(`${at}: ${SECTION}${n} is no item of the checklist`);
      } else if (!protocol.sections.has(n)) {
        problems.push(`${at}: ${SECTION}${n} is no section of docs/PROTOCOL.md`);
      }
    }
    const body = protocol.sections.get(m[1]!);
    if (body === undefined || m[2] !== undefined) continue;
    const rest = src.text.slice(m.index + m[0].length, m.index + m[0].length + 120);
    const quoted = /^\s*(?:"([^"]+)"|`([^`\n]+)`)/.exec(rest);
    if (quoted !== null) {
      const name = unwrap(quoted[1] ?? quoted[2]!);
      if (!body.toLowerCase().includes(name.toLowerCase())) problems.push(`${at}: "${name}" is not in ${SECTION}${m[1]}`);
    }
    const step = /^\s*(?:steps?|checks?)\s+(\d+)(?:\s*[–-]\s*(\d+))?/.exec(rest);
    if (step !== null) {
      for (const s of [step[1]!, ...(step[2] !== undefined ? [step[2]] : [])]) {
        if (!new RegExp(`^(?:\\|\\s*${s}\\s*\\||\\s*${s}\\.\\s)`, 'm').test(body)) problems.push(`${at}: ${SECTION}${m[1]} has no step ${s}`);
      }
    }
  }
  return problems;
}

const DEVIATION_CITE = /DEVIATION:?\s+D(\d+)/g;

function deviationCites(src: Source): string[] {
  const problems: string[] = [];
  for (const m of src.text.matchAll(DEVIATION_CITE)) {
    if (!protocol.deviations.has(Number(m[1]))) problems.push(`${where(src, m.index)}: D${m[1]} is not in the deviation table`);
  }
  return problems;
}

/** The word item(s), then numbers and ranges ("28–30, 32–34 and 99"), possibly across a comment line break. */
const ITEM_CITE = /(?<![/\w])items?[\s*]+(\d+(?:\s*[–-]\s*\d+)?(?:\s*(?:,|and)[\s*]*\d+(?:\s*[–-]\s*\d+)?)*)/gi;

function itemCites(src: Source): string[] {
  // Only where "item" means a checklist item: tests, and files that cite the protocol.
  if (!underTest(src.path) && !src.text.includes('PROTOCOL.md')) return [];
  const problems: string[] = [];
  for (const m of src.text.matchAll(ITEM_CITE)) {
    for (const r of m[1]!.matchAll(/(\d+)(?:\s*[–-]\s*(\d+))?/g)) {
      const from = Number(r[1]);
      const to = r[2] === undefined ? from : Number(r[2]);
      if (to < from) problems.push(`${where(src, m.index)}: items ${from}–${to} is no range`);
      for (const n of from === to ? [from] : [from, to]) {
        if (!protocol.items.has(n)) problems.push(`${where(src, m.index)}: item ${n} is not in the checklist`);
      }
    }
  }
  return problems;
}

const DESIGN_CITE = /DESIGN\.md\)?,?\s*"([^"]+)"/g;

function designCites(src: Source): string[] {
  const problems: string[] = [];
  for (const m of src.text.matchAll(DESIGN_CITE)) {
    const name = unwrap(m[1]!);
    if (!designHeadings.has(name)) problems.push(`${where(src, m.index)}: docs/DESIGN.md has no heading "${name}"`);
  }
  return problems;
}

const check = (f: (src: Source) => string[]): string[] => files.flatMap(f);

describe('the repository stands alone', () => {
  it('lists its files, and has both documents with a deviation table and a checklist', () => {
    expect(files.length).toBeGreaterThan(100);
    expect(protocolSource, 'docs/PROTOCOL.md').toBeDefined();
    expect(designSource, 'docs/DESIGN.md').toBeDefined();
    expect([...protocol.deviations].sort((a, b) => a - b)).toEqual(Array.from({ length: 19 }, (_, i) => i + 1));
    expect(protocol.items.size).toBeGreaterThanOrEqual(99);
    for (const n of ['1', '2.1', '3.4', '4.0', '5.11', '6.3', '7.1', '8']) expect(protocol.sections.has(n), n).toBe(true);
  });

  it('no file points outside the repository', () => {
    expect(check(outsideReferences)).toEqual([]);
  });

  it('every relative markdown link names a file of the repository', () => {
    expect(check(brokenLinks)).toEqual([]);
  });

  it(`every ${SECTION} citation names a section (and the quoted name or step in it) or a checklist item`, () => {
    expect(check(sectionCites)).toEqual([]);
  });

  it('every DEVIATION tag is in the deviation table', () => {
    expect(check(deviationCites)).toEqual([]);
  });

  it('every checklist item cited exists', () => {
    expect(check(itemCites)).toEqual([]);
  });

  it('every docs/DESIGN.md heading cited exists', () => {
    expect(check(designCites)).toEqual([]);
  });
});
