/**
 * Property test: valid, correctly signed requests to all four endpoints, mutated (flipped bits, cut
 * and extra lines, swapped fields, wrong types inside the box), get exactly the status docs/PROTOCOL.md
 * gives for that class of mutation, and leave mailbox and session state unchanged (nonce records
 * aside). Real processes, throttling off.
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

const RUNS = 30;

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

type Mutation = { kind: 'flip'; line: number; bit: number } | { kind: 'cut'; line: number } | { kind: 'extra'; text: string } | { kind: 'shorten'; line: number } | { kind: 'badChar'; line: number; pos: number; ch: string } | { kind: 'swap'; a: number; b: number };

const mutation = (lines: number): fc.Arbitrary<Mutation> =>
  fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), line: fc.nat(lines - 1), bit: fc.nat(8 * 192 - 1) }),
    fc.record({ kind: fc.constant('cut' as const), line: fc.nat(lines - 1) }),
    fc.record({ kind: fc.constant('extra' as const), text: fc.constantFrom('', 'AAAA', '!') }),
    fc.record({ kind: fc.constant('shorten' as const), line: fc.nat(lines - 1) }),
    fc.record({ kind: fc.constant('badChar' as const), line: fc.nat(lines - 1), pos: fc.nat(300), ch: fc.constantFrom('-', '_', ' ', '\t', '.', '\r', '!') }),
    fc.record({ kind: fc.constant('swap' as const), a: fc.nat(lines - 1), b: fc.nat(lines - 1) }),
  );

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

/** A mutation the body does not show (an empty extra line is just a trailing CRLF). */
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

const isSwapNoop = (m: Mutation): boolean => m.kind === 'swap' && m.a === m.b;

describe('mutated requests', () => {
  it('/start_session', async () => {
    await fc.assert(
      fc.asyncProperty(mutation(1).filter((m) => m.kind !== 'flip' && !isSwapNoop(m)), async (m) => {
        const lines = [b64(raw.rnd(32))];
        if (unchanged(lines, m)) return;
        const expected = framingStatus(lines, m, [44]) ?? '400G';
        expect(await send('/start_session', apply(lines, m))).toBe(expected);
      }),
      { numRuns: RUNS },
    );
  });

  it('/verify_session', async () => {
    await fc.assert(
      fc.asyncProperty(mutation(2).filter((m) => !isSwapNoop(m)), async (m) => {
        const hs = await raw.startSession(relay.url);
        const lines = raw.verifyBody(hs).split('\r\n');
        if (unchanged(lines, m)) return;
        const expected = framingStatus(lines, m, [44, 44]) ?? (m.kind === 'flip' || m.kind === 'swap' ? '401G' : '400G');
        expect(await send('/verify_session', apply(lines, m))).toBe(expected);
      }),
      { numRuns: RUNS },
    );
    await expectStateUnchanged();
  });

  it('/prove', async () => {
    await fc.assert(
      fc.asyncProperty(mutation(4).filter((m) => !isSwapNoop(m)), async (m) => {
        const hs = await raw.verifySession(relay.url, await raw.startSession(relay.url));
        const { body } = raw.proveBody(hs, victim.id);
        const lines = body.split('\r\n');
        if (unchanged(lines, m)) return; // it would be a valid proof
        let expected = framingStatus(lines, m, [44, 44, 32, 256]);
        if (expected === null) {
          // a flipped handshake id, or lines 0 and 1 swapped (the only two of one length): unknown handshake
          if ((m.kind === 'flip' && m.line === 0) || m.kind === 'swap') expected = '401G';
          else expected = '400G'; // bad base64, stale or flipped nonce, a box that does not open
        }
        expect(await send('/prove', apply(lines, m))).toBe(expected);
      }),
      { numRuns: RUNS },
    );
    // none of the failed proofs replaced the victim's session
    await expectStateUnchanged();
  });

  it('/command envelope', async () => {
    await fc.assert(
      // an extra valid 4th line is allowed (and ignored by `delete`)
      fc.asyncProperty(mutation(3).filter((m) => !isSwapNoop(m) && !(m.kind === 'extra' && m.text === 'AAAA')), async (m) => {
        const lines = raw.commandBody(victim, { cmd: 'delete', payload: [] }).split('\r\n');
        if (unchanged(lines, m)) return;
        let expected = framingStatus(lines, m, [44, 32, null], 1);
        if (expected === null) {
          if (m.kind === 'flip' && m.line === 1) {
            // a flipped nonce: stale → 400 G; still fresh → the box no longer opens → 401 G
            const skew = Math.abs(nonceTimestamp(Buffer.from(effective(lines, m)[1]!, 'base64')) - raw.nowSec());
            if (skew >= 58 && skew <= 62) return; // too close to the window edge to call on a moving clock
            expected = skew <= 60 ? '401G' : '400G';
          } else if (m.kind === 'flip') expected = '401G'; // another hpk has no session; a flipped box does not open
          else expected = '400G';
        }
        expect(await send('/command', apply(lines, m))).toBe(expected);
      }),
      { numRuns: RUNS },
    );
    await expectStateUnchanged();
  });

  it('/command with wrong types inside the box', async () => {
    const hpk = sender.id.hpk;
    const wrong = fc.constantFrom<object>(
      { cmd: 'upload', to: 5, payload: 'x' },
      { cmd: 'upload', to: hpk, payload: 5 },
      { cmd: 'upload', to: hpk, payload: true },
      { cmd: 'upload', to: [hpk], payload: 'x' },
      { cmd: 'upload', to: hpk, payload: { ctext: 5 } },
      { cmd: 'download', start: '0' },
      { cmd: 'download', count: true },
      { cmd: 'download', from: hpk },
      { cmd: 'download', from: [5] },
      { cmd: 'messageStatus', token: 12 },
      { cmd: 'messageStatus', token: [] },
      { cmd: 'delete', payload: {} },
      { cmd: 'delete', payload: [1, 2] },
      { cmd: 'getEntropy', size: '5' },
      { cmd: 'getEntropy', size: 1.5 },
      { cmd: 5 },
      { cmd: ['count'] },
      { cmd: { name: 'count' } },
    );
    await fc.assert(
      fc.asyncProperty(wrong, async (cmd) => {
        const r = await raw.command(victim, cmd);
        expect([r.status, r.headers.get('x-error-details')]).toEqual([400, 'Your request can not be completed.']);
      }),
      { numRuns: RUNS },
    );
    await expectStateUnchanged();
    // and nothing reached the sender's mailbox
    expect((await raw.command(sender, { cmd: 'count' })).plain).toBe('0');
  });
});
