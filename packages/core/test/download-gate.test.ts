/** The answer gate's per-hpk download byte bucket (commands/download-gate.ts), on a controlled clock. */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { RelayError } from '@zax/protocol';
import { createResponseGate } from '../src/commands/download-gate.js';

const MB = 1_000_000;

function gate(perHpkBytesPerSec: number) {
  let t = 0;
  const g = createResponseGate({ perHpk: 100, budgetBytes: 1e12, busyRetryAfterSec: 5, perHpkBytesPerSec, nowMs: () => t });
  /** One download of `size` answer bytes for `hpk`, completed (its response closed). */
  const download = (hpk: string, size: number): void => {
    const res = new EventEmitter();
    const a = g.request(res);
    a.enter(hpk, size);
    a.answer(size);
    res.emit('close');
  };
  const refusal = (hpk: string): RelayError | null => {
    try {
      download(hpk, 1);
      return null;
    } catch (e) {
      return e as RelayError;
    }
  };
  return { g, download, refusal, advance: (ms: number) => (t += ms) };
}

describe('per-hpk download byte bucket', () => {
  it('lets an answer through, then refuses the hpk 429 until the debt is repaid at the rate', () => {
    const { download, refusal, advance } = gate(1 * MB);
    download('a', 5 * MB); // a full bucket (1 MB) lets it in; it leaves 4 MB owed
    const e = refusal('a');
    expect(e).toMatchObject({ code: 'throttled', retryAfterSec: 4 });
    advance(3000);
    expect(refusal('a')).toMatchObject({ code: 'throttled', retryAfterSec: 1 });
    advance(1000);
    expect(refusal('a')).toBeNull();
  });

  it('is per hpk: another mailbox owner is not held back', () => {
    const { download, refusal } = gate(1 * MB);
    download('a', 5 * MB);
    expect(refusal('a')).not.toBeNull();
    expect(refusal('b')).toBeNull();
  });

  it('holds at most one second of the rate: idle time does not build a larger burst', () => {
    const { download, refusal, advance } = gate(1 * MB);
    advance(3_600_000);
    download('a', 1 * MB); // the whole bucket: one second's worth, not an hour's
    download('a', 1); // admitted at zero, and now a byte is owed
    expect(refusal('a')).not.toBeNull();
  });

  it('0 turns it off', () => {
    const { download, refusal } = gate(0);
    for (let i = 0; i < 10; i++) download('a', 100 * MB);
    expect(refusal('a')).toBeNull();
  });
});

describe('process budget of answer bytes in flight', () => {
  const budgetGate = () => createResponseGate({ perHpk: 100, budgetBytes: 1000, busyRetryAfterSec: 5, perHpkBytesPerSec: 0 });
  const open = (g: ReturnType<typeof budgetGate>) => {
    const res = new EventEmitter();
    return { a: g.request(res), close: () => res.emit('close') };
  };

  it('grants a download its bound while half the budget stays free, then smaller pages down to its minimum; 503 below that', () => {
    const g = budgetGate();
    expect(open(g).a.enter('a', 400, 100)).toBe(400); // 600 stay free
    const big = open(g);
    expect(big.a.enter('b', 800, 100)).toBe(100); // only 100 above the free half: a smaller page
    const rest = [open(g), open(g), open(g), open(g)].map((o) => o.a.enter('c', 800, 100));
    expect(rest).toEqual([100, 100, 100, 100]); // at its minimum while that fits
    expect(g.bytesInFlight()).toBe(900);
    const last = open(g);
    expect(last.a.enter('d', 800, 100)).toBe(100);
    expect(() => open(g).a.enter('e', 800, 100)).toThrow(expect.objectContaining({ code: 'busy', retryAfterSec: 5 }));
    big.a.answer(20); // its real answer, smaller than its grant: 80 free, still under the minimum
    expect(() => open(g).a.enter('e', 800, 100)).toThrow(expect.objectContaining({ code: 'busy' }));
    last.close();
    expect(open(g).a.enter('e', 800, 100)).toBe(100);
  });

  it('without a minimum (a file chunk), an answer that does not fit whole is 503', () => {
    const g = budgetGate();
    open(g).a.enter(null, 600);
    expect(() => open(g).a.enter(null, 600)).toThrow(expect.objectContaining({ code: 'busy' }));
    expect(open(g).a.enter(null, 400)).toBe(400);
  });
});
