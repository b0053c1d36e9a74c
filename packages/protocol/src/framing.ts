/**
 * Line splitting of request bodies and joining of response lines (docs/PROTOCOL.md §2.2, §2.4).
 * DEVIATION D1: the whole body is parsed on every endpoint, CRLF or LF, one trailing break ignored.
 */
import { RelayError } from './errors.js';

/** Splits a body into lines: one trailing CRLF or LF is dropped; a CR before LF is separator. */
export function splitLines(body: string): string[] {
  let s = body;
  if (s.endsWith('\r\n')) s = s.slice(0, -2);
  else if (s.endsWith('\n')) s = s.slice(0, -1);
  if (s.length === 0) return [];
  return s.split('\n').map((line, i, all) => (i < all.length - 1 && line.endsWith('\r') ? line.slice(0, -1) : line));
}

/**
 * Splits and checks the line count and each line's exact length (null = any non-empty length).
 * `lengths` lists the required lines; `optional` more lines may follow, each non-empty.
 */
export function frame(body: string, lengths: readonly (number | null)[], optional = 0): string[] {
  const lines = splitLines(body);
  if (lines.length < lengths.length || lines.length > lengths.length + optional) {
    throw new RelayError('framing', `expected ${lengths.length} lines, got ${lines.length}`);
  }
  lines.forEach((line, i) => {
    const want = lengths[i] ?? null;
    if (want === null ? line.length === 0 : line.length !== want) {
      throw new RelayError('framing', `line ${i + 1} has length ${line.length}`);
    }
  });
  return lines;
}

/** Response lines joined by CRLF, with no trailing CRLF. */
export const joinLines = (lines: readonly string[]): string => lines.join('\r\n');
