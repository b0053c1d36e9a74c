import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * Failover under load (test/failover/*.test.ts): each file starts its own Redis Cluster and
 * Sentinel group and kills primaries on purpose. Timing-sensitive (node timeouts of ~1.5 s), so
 * `pnpm test` leaves them out and `pnpm test:topologies` runs them alone, one file at a time.
 */
export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/failover/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
    server: { deps: { inline: ['glow.ts'] } },
  },
});
