/**
 * @zax/protocol where the runtime has no Buffer (browsers, k6): its built package is loaded in a
 * Node process whose Buffer is removed first, so its portable base64 and UTF-8 codecs run, and every
 * answer must equal what the same calls give here on Node's native codecs. Needs the built dist/
 * (`tsc -b`).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import * as protocol from '@zax/protocol';
import { loadVector } from '../../../test/support/vectors.js';

const DIST = new URL('../dist/index.js', import.meta.url).href;

/** What both runtimes are asked: strings to check and decode, bytes to encode and hash, texts to measure. */
interface Inputs {
  base64: string[];
  bytesHex: string[];
  texts: string[];
}

/** The calls whose answers must agree; `p` is @zax/protocol, `hexOf` a codec-free hex encoder. */
function answers(p: typeof protocol, inputs: Inputs, hexOf: (b: Uint8Array) => string, fromHex: (s: string) => Uint8Array): unknown {
  const bytes = inputs.bytesHex.map(fromHex);
  const token = bytes.find((b) => b.length === 32)!;
  return {
    strict: inputs.base64.map((s) => p.isStrictBase64(s)),
    decoded: inputs.base64.map((s) => {
      const b = p.decodeStrict(s);
      return b === null ? null : hexOf(b);
    }),
    fixed32: inputs.base64.map((s) => p.decodeFixed(s, 32) !== null),
    encoded: bytes.map((b) => p.b64(b)),
    h2: bytes.map((b) => hexOf(p.h2(b))),
    h2Text: inputs.texts.map((t) => hexOf(p.h2(t))),
    utf8: inputs.texts.map((t) => hexOf(p.utf8Encode(t))),
    utf8Length: inputs.texts.map((t) => p.utf8Length(t)),
    nonce: hexOf(p.makeNonce(1700000000, (n) => token.subarray(0, n))),
    pow: p.checkAnswer(token, token, p.solvePow(token, token, 6, (n) => token.slice(0, n)), 6),
    random: p.randomBytes(100000).length,
  };
}

const HEX_SOURCE = `
const hexOf = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const fromHex = (s) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
`;

function inputs(): Inputs {
  const random = [0, 1, 2, 3, 31, 32, 33, 64, 100, 767, 768, 769, 1000, 512000].map((n) => randomBytes(n));
  const valid = random.map((b) => b.toString('base64'));
  const cases = (loadVector('base64.json') as { cases: { input: string }[] }).cases.map((c) => c.input);
  // Long invalid strings take the round-trip path on Node: a foreign, URL-safe or non-canonical character inside.
  const long = valid.find((s) => s.length >= 1024)!;
  const broken = [long.slice(0, 100) + '-' + long.slice(101), long.slice(0, 100) + ' ' + long.slice(101), long.slice(0, -2) + 'B=', `${long}====`];
  return {
    base64: [...valid, ...cases, ...broken, '', 'AB==', 'AAB=', 'A===', 'AAA', 'AA-A', 'AA A', 'AAAA\n', 'AAAA\r\n'],
    bytesHex: random.map((b) => b.toString('hex')),
    texts: ['', 'abc', 'zax ✓ 𝄞 é', 'lone \ud800 surrogate', '\udc00 first', 'end \ud83d', 'x'.repeat(5000)],
  };
}

describe('@zax/protocol without Buffer', () => {
  it('answers as it does on Node', () => {
    const given = inputs();
    const script = `${HEX_SOURCE}
process.stdin.setEncoding('utf8');
let text = '';
for await (const chunk of process.stdin) text += chunk;
const inputs = JSON.parse(text);
delete globalThis.Buffer;
if (typeof Buffer !== 'undefined') throw new Error('Buffer is still there');
const p = await import(${JSON.stringify(DIST)});
const answers = ${answers.toString()};
process.stdout.write(JSON.stringify(answers(p, inputs, hexOf, fromHex)));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { input: JSON.stringify(given), encoding: 'utf8', maxBuffer: 64 << 20 });
    const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');
    const fromHex = (s: string): Uint8Array => Buffer.from(s, 'hex');
    expect(JSON.parse(out)).toEqual(answers(protocol, given, hexOf, fromHex));
  });
});
