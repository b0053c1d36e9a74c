/**
 * Prints one plain closing line after vitest's own summary:
 *
 *   505 passed, 3 failed, 2 skipped; 1 test file failed to load: test/a.test.ts; 1 test file errored outside a test: test/b.test.ts
 *
 * The test counts are vitest's "Tests" counts (a todo test is counted apart, as vitest does, and
 * named only when there is one). Test files that could not be loaded (an error while importing or
 * collecting them, so no test ran) and files with an error outside any test (a failing beforeAll
 * or afterAll hook) are named apart, by path from the project root: they hold no failed test, so a
 * count of tests alone would hide them. Errors vitest could not tie to a file are counted last.
 */
import { relative } from 'node:path';
import type { Reporter, SerializedError, TestModule, Vitest } from 'vitest/node';

export interface Summary {
  passed: number;
  failed: number;
  skipped: number;
  todo: number;
  /** Files that failed while loading: errors and no test collected. */
  failedToLoad: string[];
  /** Files with tests and an error outside them (hooks of the file or of a suite). */
  erroredOutsideTests: string[];
  unhandledErrors: number;
}

export function summarize(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>, root: string): Summary {
  const s: Summary = { passed: 0, failed: 0, skipped: 0, todo: 0, failedToLoad: [], erroredOutsideTests: [], unhandledErrors: unhandledErrors.length };
  for (const m of modules) {
    let tests = 0;
    for (const t of m.children.allTests()) {
      tests++;
      const state = t.result().state;
      if (state === 'passed') s.passed++;
      else if (state === 'failed') s.failed++;
      else if (state === 'skipped') {
        if (t.options.mode === 'todo') s.todo++;
        else s.skipped++;
      }
      // 'pending' (never ran: a bail or a cancelled run) is not counted, as vitest does not.
    }
    let errored = m.errors().length > 0;
    for (const suite of m.children.allSuites()) if (suite.errors().length > 0) errored = true;
    if (!errored) continue;
    const file = relative(root, m.moduleId) || m.moduleId;
    if (tests === 0) s.failedToLoad.push(file);
    else s.erroredOutsideTests.push(file);
  }
  return s;
}

const files = (n: number): string => `${n} test file${n === 1 ? '' : 's'}`;

export function summaryLine(s: Summary): string {
  let line = `${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped${s.todo > 0 ? `, ${s.todo} todo` : ''}`;
  if (s.failedToLoad.length > 0) line += `; ${files(s.failedToLoad.length)} failed to load: ${s.failedToLoad.join(', ')}`;
  if (s.erroredOutsideTests.length > 0) line += `; ${files(s.erroredOutsideTests.length)} errored outside a test: ${s.erroredOutsideTests.join(', ')}`;
  if (s.unhandledErrors > 0) line += `; ${s.unhandledErrors} unhandled error${s.unhandledErrors === 1 ? '' : 's'}`;
  return line;
}

export default class SummaryReporter implements Reporter {
  private root = process.cwd();

  onInit(vitest: Vitest): void {
    this.root = vitest.config.root;
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>, errors: ReadonlyArray<SerializedError>): void {
    const line = summaryLine(summarize(modules, errors, this.root));
    // After the default reporter's summary, so it is the closing line.
    process.once('exit', () => process.stdout.write(`\n${line}\n`));
  }
}
