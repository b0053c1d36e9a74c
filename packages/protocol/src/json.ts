/**
 * JSON rules for command plaintexts (docs/PROTOCOL.md §2.5): a top-level object, `null` = absent,
 * integers are whole JSON numbers within ±(2^53 − 1), strings are never numbers.
 */
import { RelayError } from './errors.js';

export type JsonObject = Record<string, unknown>;

/** Made on first use, so the module loads where TextDecoder is missing (k6 never parses plaintexts). */
let utf8: TextDecoder | null = null;

/** Parses plaintext bytes as a JSON object, else 400 G. */
export function parseJsonObject(bytes: Uint8Array): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse((utf8 ??= new TextDecoder('utf-8', { fatal: true })).decode(bytes));
  } catch {
    throw new RelayError('invalid', 'plaintext is not UTF-8 JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RelayError('invalid', 'plaintext is not a JSON object');
  }
  return value as JsonObject;
}

export const isInteger = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

/** The field's value with `null` read as absent. */
export function field(obj: JsonObject, key: string): unknown {
  const v = Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : undefined;
  return v === null ? undefined : v;
}
