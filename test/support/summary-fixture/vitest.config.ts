// The summary reporter's fixture run (summary-reporter.test.ts): these files only, no Redis.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('.', import.meta.url)),
    include: ['*.fixture.ts'],
    pool: 'forks',
    reporters: ['default', fileURLToPath(new URL('../summary-reporter.ts', import.meta.url))],
  },
});
