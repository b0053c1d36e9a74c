/**
 * Module resolution hook (node:module register) that maps `k6` and `k6/*` imports of the bundled
 * scripts to this stand-in. Any other k6 module fails loudly: the stand-in must grow with the scripts.
 */
const MODULES: Record<string, string> = {
  k6: './k6.js',
  'k6/http': './http.js',
  'k6/metrics': './metrics.js',
  'k6/crypto': './crypto.js',
  'k6/execution': './execution.js',
};

type Next = (specifier: string, context: unknown) => Promise<{ url: string }>;

export async function resolve(specifier: string, context: unknown, next: Next): Promise<{ url: string; shortCircuit?: boolean }> {
  if (specifier === 'k6' || specifier.startsWith('k6/')) {
    const file = MODULES[specifier];
    if (file === undefined) throw new Error(`the k6 stand-in has no module ${specifier}: add it under test/load/src/k6-standin`);
    return { url: new URL(file, import.meta.url).href, shortCircuit: true };
  }
  return next(specifier, context);
}
