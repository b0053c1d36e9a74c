import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * The compose end-to-end checks (test/compose/stack.test.ts). They need the stack that
 * deploy/compose-e2e.sh brings up, so `pnpm test` leaves them out; that script runs them.
 */
export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/compose/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
    server: { deps: { inline: ['glow.ts'] } },
  },
});
