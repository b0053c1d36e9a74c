/** Command-line parsing shared by the load tools: strict options, `--help`, one way to fail. */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export type CliValues = Record<string, string | boolean | string[] | undefined>;

/**
 * Parses `args` against `options` (strict; `-h`/`--help` added). On a bad option it prints the
 * error and `usage` to stderr and returns 2; on `--help` (or any of `helpAlso`) it prints `usage`
 * and returns 0; otherwise it returns the values.
 */
export function parseCli(args: string[], options: NonNullable<ParseArgsConfig['options']>, usage: string, helpAlso: readonly string[] = []): CliValues | number {
  let values: CliValues;
  try {
    ({ values } = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h', default: false } }, strict: true }));
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n${usage}\n`);
    return 2;
  }
  if (values.help === true || helpAlso.some((k) => values[k] === true)) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  return values;
}

/** Runs a tool's `main` and exits with its code; an unexpected error is printed and exits 2. */
export function runMain(main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(2);
    },
  );
}
