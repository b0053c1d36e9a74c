/**
 * Configuration primitives of both tiers: the error that lists every problem, the log levels, and
 * zod parsers for environment variables (whole numbers, decimals, booleans, one-of, optional
 * strings), each answering a bad value with a readable problem `NAME: reason` that never echoes
 * more than the value itself. Each tier's config.ts declares its own variables with them and
 * checks the constraints between them.
 */
import { z } from 'zod';
import type { Env } from './topology.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** An unset variable and an empty one both mean "use the default". */
export const optional = z
  .string()
  .optional()
  .transform((s) => (s === undefined || s === '' ? undefined : s));

/**
 * How a bad whole number is worded: `bounds` names the broken rule alone ("must be ≥ 1", "must be
 * a non-negative decimal integer"), `range` the whole range and the value given ("must be a whole
 * number from 0 to 255, got "256""). Each tier keeps the wording its operators already see.
 */
export type IntWording = 'bounds' | 'range';

/** The whole-number parser of a tier: `int(default, min, max)`. */
export type IntParser = (def: number, min: number, max?: number) => z.ZodType<number, z.ZodTypeDef, string | undefined>;

/** A decimal integer of at most 16 digits that is also a safe integer, or null. */
function wholeNumber(s: string): number | null {
  if (!/^[0-9]{1,16}$/.test(s)) return null;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : null;
}

function intProblem(wording: IntWording, s: string, n: number | null, min: number, max: number): string {
  if (wording === 'range') return `must be a whole number from ${min} to ${max}, got "${s}"`;
  if (n === null) return 'must be a non-negative decimal integer';
  return n < min ? `must be ≥ ${min}` : `must be ≤ ${max}`;
}

/** Whole numbers in [min, max] (max: the largest safe integer unless given), worded per `wording`. */
export function intParser(wording: IntWording): IntParser {
  return (def, min, max = Number.MAX_SAFE_INTEGER) =>
    optional.transform((s, ctx): number => {
      if (s === undefined) return def;
      const n = wholeNumber(s);
      if (n === null || n < min || n > max) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: intProblem(wording, s, n, min, max) });
        return z.NEVER;
      }
      return n;
    });
}

/** A decimal number in [min, max] (`exclusiveMin`: strictly above min), digits with an optional fraction. */
export const num = (def: number, min: number, max: number, exclusiveMin = false) =>
  optional.transform((s, ctx): number => {
    if (s === undefined) return def;
    const n = /^\d+(\.\d+)?$/.test(s) ? Number(s) : NaN;
    if (!Number.isFinite(n) || n < min || n > max || (exclusiveMin && n === min)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: `must be a number ${exclusiveMin ? 'above' : 'from'} ${min}${exclusiveMin ? ' and at most' : ' to'} ${max}, got "${s}"`,
      });
      return z.NEVER;
    }
    return n;
  });

/** true/1 or false/0. */
export const bool = (def: boolean) =>
  optional.transform((s, ctx): boolean => {
    if (s === undefined) return def;
    if (s === 'true' || s === '1') return true;
    if (s === 'false' || s === '0') return false;
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `must be true or false, got "${s}"` });
    return z.NEVER;
  });

/** One of `values` (compared after `normalise`, e.g. lower-casing). */
export const oneOf = <T extends string>(values: readonly T[], def: T, normalise: (s: string) => string = (s) => s) =>
  optional.transform((s, ctx): T => {
    if (s === undefined) return def;
    const v = normalise(s);
    if ((values as readonly string[]).includes(v)) return v as T;
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `must be one of ${values.join(', ')}` });
    return z.NEVER;
  });

/** LOG_LEVEL. @default 'info' */
export const logLevel = oneOf(LOG_LEVELS, 'info');

/** The parsed value of every variable of a shape. */
export type EnvValues<S extends z.ZodRawShape> = { [K in keyof S]: z.output<S[K]> };

/** Parsed values of a shape, and the problems of the variables that did not parse. */
export interface ParsedEnv<S extends z.ZodRawShape> {
  /** Only the variables that parsed. */
  readonly values: Partial<EnvValues<S>>;
  /** `NAME: reason`, in the order of the shape. */
  readonly problems: string[];
}

/** Parses each variable on its own, so every bad variable is reported, not only the first. */
export function parseEnv<S extends z.ZodRawShape>(shape: S, env: Env): ParsedEnv<S> {
  const values: Partial<Record<keyof S, unknown>> = {};
  const problems: string[] = [];
  for (const [name, schema] of Object.entries(shape) as [keyof S & string, z.ZodTypeAny][]) {
    const r = schema.safeParse(env[name]);
    if (r.success) values[name] = r.data;
    else problems.push(...r.error.issues.map((i) => `${name}: ${i.message}`));
  }
  return { values: values as ParsedEnv<S>['values'], problems };
}
