/**
 * Property test: valid, correctly signed requests to all four endpoints, mutated (flipped bits, cut
 * and extra lines, swapped fields, bad characters, wrong types inside the box), get exactly the
 * status docs/PROTOCOL.md gives for that class of mutation, and leave mailbox and session state
 * unchanged (nonce records aside). Real processes, throttling off.
 *
 * Every mutation has an expected answer, including the few that leave the request valid (one extra
 * empty line is a trailing line break; a flipped client token is another valid token): nothing is
 * skipped. Each endpoint runs RUNS mutations: first a fixed list covering every kind on every line
 * (fast-check `examples`, counted in RUNS), then random ones, shrunk to a minimal one on failure.
 * The expected answers of each endpoint's runs are printed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import fc from 'fast-check';
import { b64, nonceTimestamp, splitLines } from '@zax/protocol';
import { Relay, post } from '../support/relay.js';
import * as raw from '../support/raw.js';

let relay: Relay;
let victim: raw.Session;
let sender: raw.Session;
let snapshot: string;

/** Mutations per endpoint, the fixed ones included. */
const RUNS = 200;

beforeAll(async () => {
  relay = await Relay.start({ redisUrl: inject('redisUrl') });
  victim = await raw.connect(relay.url);
  sender = await raw.connect(relay.url);
  for (const m of ['one', 'two', 'three']) await raw.command(sender, { cmd: 'upload', to: victim.id.hpk, payload: m });
  snapshot = (await raw.command(victim, { cmd: 'download' })).plain!;
});
afterAll(async () => relay?.stop());

/** The victim's mailbox is exactly as it was, and both sessions still work. */
async function expectStateUnchanged(): Promise<void> {
  expect((await raw.command(victim, { cmd: 'download' })).plain).toBe(snapshot);
  expect((await raw.command(sender, { cmd: 'count' })).status).toBe(200);
}

/** Flips one bit of the bytes a base64 line encodes; the result is canonical base64 again. */
function flipBit(line: string, bit: number): string {
  const b = Buffer.from(line, 'base64');
  b[Math.floor(bit / 8) % b.length]! ^= 1 << bit % 8;
  return b.toString('base64');
}

type Mutation =
  | { kind: 'flip'; line: number; bit: number }
  | { kind: 'cut'; line: number }
  | { kind: 'extra'; text: string }
  | { kind: 'shorten'; line: number }
  | { kind: 'badChar'; line: number; pos: number; ch: string }
  | { kind: 'swap'; a: number; b: number };

const EXTRA_LINES = ['', 'AAAA', '!'];
const BAD_CHARS = ['-', '_', ' ', '\t', '.', '\r', '!'];
const MAX_BIT = 8 * 192 - 1;

/** Random mutations of an n-line body (a swap always exchanges two different lines). */
const mutation = (n: number): fc.Arbitrary<Mutation> =>
  fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), line: fc.nat(n - 1), bit: fc.nat(MAX_BIT) }),
    fc.record({ kind: fc.constant('cut' as const), line: fc.nat(n - 1) }),
    fc.record({ kind: fc.constant('extra' as const), text: fc.constantFrom(...EXTRA_LINES) }),
    fc.record({ kind: fc.constant('shorten' as const), line: fc.nat(n - 1) }),
    fc.record({ kind: fc.constant('badChar' as const), line: fc.nat(n - 1), pos: fc.nat(300), ch: fc.constantFrom(...BAD_CHARS) }),
    ...(n > 1 ? [fc.tuple(fc.nat(n - 1), fc.nat(n - 2)).map(([a, d]): Mutation => ({ kind: 'swap', a, b: (a + 1 + d) % n }))] : []),
  );

/**
 * Every kind of mutation on every line: cut, shorten, a bad character of each kind at the start,
 * a flip of the first and of the last encoded byte, each pair swapped, each extra line; plus `more`.
 */
function fixedMutations(n: number, more: Mutation[] = []): Array<[Mutation]> {
  const out: Mutation[] = [];
  for (let line = 0; line < n; line++) {
    out.push({ kind: 'cut', line }, { kind: 'shorten', line }, { kind: 'flip', line, bit: 0 }, { kind: 'flip', line, bit: MAX_BIT });
    for (const ch of BAD_CHARS) out.push({ kind: 'badChar', line, pos: 0, ch });
    for (let b = line + 1; b < n; b++) out.push({ kind: 'swap', a: line, b });
  }
  for (const text of EXTRA_LINES) out.push({ kind: 'extra', text });
  return [...out, ...more].map((m) => [m]);
}

function apply(lines: string[], m: Mutation): string[] {
  const out = [...lines];
  switch (m.kind) {
    case 'flip':
      out[m.line] = flipBit(out[m.line]!, m.bit);
      break;
    case 'cut':
      out.splice(m.line, 1);
      break;
    case 'extra':
      out.push(m.text);
      break;
    case 'shorten':
      out[m.line] = out[m.line]!.slice(1);
      break;
    case 'badChar': {
      const l = out[m.line]!;
      const i = m.pos % l.length;
      out[m.line] = l.slice(0, i) + m.ch + l.slice(i + 1);
      break;
    }
    case 'swap':
      [out[m.a], out[m.b]] = [out[m.b]!, out[m.a]!];
      break;
  }
  return out;
}

/** The lines the relay will see once the mutated lines are joined into a body. */
const effective = (lines: string[], m: Mutation): string[] => splitLines(apply(lines, m).join('\r\n'));

/** The relay sees the original request (an empty extra line is just a trailing CRLF). */
const unchanged = (lines: string[], m: Mutation): boolean => effective(lines, m).join('\n') === lines.join('\n');

/** Framing failures are the same on every endpoint: 400 F. `null`: not a framing failure. */
function framingStatus(lines: string[], m: Mutation, lengths: (number | null)[], optional = 0): string | null {
  const out = effective(lines, m);
  if (out.length < lengths.length || out.length > lengths.length + optional) return '400F';
  for (const [i, l] of out.entries()) {
    const want = lengths[i] ?? null;
    if (want === null ? l.length === 0 : l.length !== want) return '400F';
  }
  return null;
}

async function send(path: string, lines: string[]): Promise<string> {
  const r = await post(`${relay.url}${path}`, lines.join('\r\n'));
  const d = r.headers.get('x-error-details');
  return `${r.status}${d === 'Request BODY does not match this request specification' ? 'F' : d === 'Your request can not be completed.' ? 'G' : ''}`;
}

/** Counts the expected answers of a property's runs and prints them. */
function tally(): { add(expected: string): void; print(endpoint: string): void } {
  const counts = new Map<string, number>();
  return {
    add: (e) => void counts.set(e, (counts.get(e) ?? 0) + 1),
    print: (endpoint) => console.log(`${endpoint}: ${[...counts].map(([k, n]) => `${k} ×${n}`).join(', ')}`),
  };
}

describe('mutated requests', () => {
  it('/start_session', async () => {
    const t = tally();
    await fc.assert(
      fc.asyncProperty(mutation(1), async (m) => {
        const lines = [b64(raw.rnd(32))];
        // A flipped client token is another valid token; an empty extra line is a trailing break.
        const expected = unchanged(lines, m) ? '200' : (framingStatus(lines, m, [44]) ?? (m.kind === 'flip' ? '200' : '400G'));
        t.add(expected);
        expect(await send('/start_session', apply(lines, m))).toBe(expected);
      }),
      { numRuns: RUNS, examples: fixedMutations(1) },
    );
    t.print('/start_session');
  });

  it('/verify_session', async () => {
    const t = tally();
    await fc.assert(
      fc.asyncProperty(mutation(2), async (m) => {
        const hs = await raw.startSession(relay.url);
        const lines = raw.verifyBody(hs).split('\r\n');
        // a flipped or swapped handshake id names no handshake; a flipped answer is a wrong answer
        const expected = unchanged(lines, m) ? '200' : (framingStatus(lines, m, [44, 44]) ?? (m.kind === 'flip' || m.kind === 'swap' ? '401G' : '400G'));
        t.add(expected);
        expect(await send('/verify_session', apply(lines, m))).toBe(expected);
      }),
      { numRuns: RUNS, examples: fixedMutations(2) },
    );
    t.print('/verify_session');
    await expectStateUnchanged();
  });

  it('/prove', async () => {
    const t = tally();
    // The proofs are for the victim's identity, so one that slipped through would replace its
    // session. The empty extra line (the unchanged, valid proof) is therefore not generated here.
    const proveMutation = (m: Mutation): boolean => !(m.kind === 'extra' && m.text === '');
    await fc.assert(
      fc.asyncProperty(mutation(4).filter(proveMutation), async (m) => {
        const hs = await raw.verifySession(relay.url, await raw.startSession(relay.url));
        const { body } = raw.proveBody(hs, victim.id);
        const lines = body.split('\r\n');
        expect(unchanged(lines, m), 'a mutation that leaves the proof valid').toBe(false);
        let expected = framingStatus(lines, m, [44, 44, 32, 256]);
        if (expected === null) {
          // a flipped handshake id, or lines 0 and 1 swapped (the only two of one length): unknown handshake
          if ((m.kind === 'flip' && m.line === 0) || m.kind === 'swap') expected = '401G';
          // X25519 ignores the top bit of a public key: with it flipped, a_sess_pk gives the same
          // shared key, the boxes open, and the signature (over the a_sess_pk sent) does not match
          else if (m.kind === 'flip' && m.line === 1 && m.bit % 256 === 255) expected = '401G';
          else expected = '400G'; // bad base64, stale or flipped nonce, a box that does not open
        }
        t.add(expected);
        expect(await send('/prove', apply(lines, m))).toBe(expected);
      }),
      { numRuns: RUNS, examples: fixedMutations(4, [{ kind: 'flip', line: 1, bit: 255 }]).filter(([m]) => proveMutation(m)) },
    );
    t.print('/prove');
    // none of the failed proofs replaced the victim's session
    await expectStateUnchanged();
  });

  it('/command envelope', async () => {
    const t = tally();
    // Nonce flips on either side of the ±60 s window: one second, 64 seconds, the random part.
    const nonceFlips: Mutation[] = [8 * 7, 8 * 7 + 5, 8 * 7 + 6, 8 * 3, 8 * 12].map((bit) => ({ kind: 'flip', line: 1, bit }));
    await fc.assert(
      fc.asyncProperty(mutation(3), async (m) => {
        const lines = raw.commandBody(victim, { cmd: 'delete', payload: [] }).split('\r\n');
        let expected = framingStatus(lines, m, [44, 32, null], 1);
        if (unchanged(lines, m) || (m.kind === 'extra' && m.text === 'AAAA')) {
          expected = '200'; // the same request, or with a valid 4th line (which `delete` ignores)
        } else if (expected === null) {
          if (m.kind === 'flip' && m.line === 1) {
            // One flipped bit moves the timestamp by 0 (random part) or exactly 2^k seconds: up to 32 s
            // it is still fresh and the box no longer opens (401 G); from 64 s on it is stale (400 G).
            // A request takes far less than the 28 s between the two.
            const delta = Math.abs(nonceTimestamp(Buffer.from(effective(lines, m)[1]!, 'base64')) - nonceTimestamp(Buffer.from(lines[1]!, 'base64')));
            expected = delta <= 32 ? '401G' : '400G';
          } else if (m.kind === 'flip') expected = '401G'; // another hpk has no session; a flipped box does not open
          else expected = '400G';
        }
        t.add(expected);
        expect(await send('/command', apply(lines, m))).toBe(expected);
      }),
      { numRuns: RUNS, examples: fixedMutations(3, nonceFlips) },
    );
    t.print('/command');
    await expectStateUnchanged();
  });

  describe('/command with wrong types inside the box', () => {
    const wrong: Array<(hpk: string) => object> = [
      () => ({ cmd: 'upload', to: 5, payload: 'x' }),
      (hpk) => ({ cmd: 'upload', to: hpk, payload: 5 }),
      (hpk) => ({ cmd: 'upload', to: hpk, payload: true }),
      (hpk) => ({ cmd: 'upload', to: [hpk], payload: 'x' }),
      (hpk) => ({ cmd: 'upload', to: hpk, payload: { ctext: 5 } }),
      (hpk) => ({ cmd: 'upload', to: hpk, payload: { ctext: 'x', nonce: 5 } }),
      () => ({ cmd: 'download', start: '0' }),
      () => ({ cmd: 'download', count: true }),
      (hpk) => ({ cmd: 'download', from: hpk }),
      () => ({ cmd: 'download', from: [5] }),
      () => ({ cmd: 'messageStatus', token: 12 }),
      () => ({ cmd: 'messageStatus', token: [] }),
      () => ({ cmd: 'delete', payload: {} }),
      () => ({ cmd: 'delete', payload: [1, 2] }),
      () => ({ cmd: 'getEntropy', size: '5' }),
      () => ({ cmd: 'getEntropy', size: 1.5 }),
      (hpk) => ({ cmd: 'startFileUpload', to: hpk, file_size: '5', metadata: { nonce: b64(raw.freshNonce()), ctext: 'm' } }),
      (hpk) => ({ cmd: 'startFileUpload', to: hpk, file_size: 5, metadata: 'm' }),
      () => ({ cmd: 'uploadFileChunk', uploadID: b64(raw.rnd(32)), part: -1, nonce: b64(raw.freshNonce()), ctext: 'AAAA' }),
      () => ({ cmd: 'fileStatus', uploadID: 7 }),
      () => ({ cmd: 'downloadFileChunk', uploadID: b64(raw.rnd(32)), part: '0' }),
      () => ({ cmd: 'deleteFile', uploadID: [] }),
      () => ({ cmd: 5 }),
      () => ({ cmd: ['count'] }),
      () => ({ cmd: { name: 'count' } }),
    ];
    // Each case is its own test (all of them run); the hpk is the sender's, known once the relay is up.
    it.each(wrong.map((f) => [JSON.stringify(f('<hpk>')), f] as const))('%s → 400 G', async (_name, f) => {
      const r = await raw.command(victim, f(sender.id.hpk));
      expect([r.status, r.headers.get('x-error-details')]).toEqual([400, 'Your request can not be completed.']);
    });

    it('none of them changed anything: the mailboxes are as they were', async () => {
      await expectStateUnchanged();
      // and nothing reached the sender's mailbox
      expect((await raw.command(sender, { cmd: 'count' })).plain).toBe('0');
    });
  });
});
