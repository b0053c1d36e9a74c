/**
 * Loads the published glow.ts client (npm `glow.ts` 1.1.x) for tests. Vitest inlines it (see
 * vitest.config.ts), which fixes its ESM/CommonJS mix; this sets its in-memory storage and NaCl
 * driver once per process.
 */
import * as glow from 'glow.ts';

let ready = false;

export function loadGlow(): typeof glow {
  if (!ready) {
    glow.NaCl.setDefaultInstance();
    glow.CryptoStorage.setStorageDriver(new glow.InMemoryStorage());
    ready = true;
  }
  return glow;
}
