/**
 * Loads the published glow.ts 1.1.2 in vitest (the root config inlines it, since plain Node cannot
 * import its ESM build) and sets its NaCl driver and in-memory storage once per process.
 */
type Glow = typeof import('glow.ts');

let loaded: Promise<Glow> | null = null;

export function loadGlow(): Promise<Glow> {
  loaded ??= import('glow.ts').then((glow) => {
    glow.NaCl.setDefaultInstance();
    glow.CryptoStorage.setStorageDriver(new glow.InMemoryStorage());
    return glow;
  });
  return loaded;
}

let counter = 0;
/** A fresh glow.ts storage namespace, so mailboxes in one process never share keys. */
export const glowId = (tag: string): string => `${tag}-${process.pid}-${++counter}`;
