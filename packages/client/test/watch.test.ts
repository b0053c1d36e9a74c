/**
 * The watch loop (src/watch.ts) with a scripted poll and a recording sleep: the backoff schedule
 * (doubling to the cap, jitter, Retry-After as a floor, back to the base on news), each message
 * handed over once across polls, removal retried, the limits, a fatal error, and the abort signal.
 */
import { describe, expect, it } from 'vitest';
import { Backoff, watch, type Watched } from '../src/watch.js';

describe('Backoff', () => {
  it('base, then doubling up to the cap while idle; the base again after news', () => {
    const b = new Backoff({ baseMs: 5000, jitter: 0 });
    expect([1, 2, 3, 4, 5, 6].map(() => b.next(false))).toEqual([5000, 10000, 20000, 40000, 60000, 60000]);
    expect(b.next(true)).toBe(5000);
    expect(b.next(false)).toBe(5000);
    expect(b.next(false)).toBe(10000);
  });

  it('jitter within ±20 %, never above the cap', () => {
    expect(new Backoff({ baseMs: 1000, random: () => 0 }).next(true)).toBe(800);
    expect(new Backoff({ baseMs: 1000, random: () => 0.999999 }).next(true)).toBe(1200);
    const high = new Backoff({ baseMs: 40_000, random: () => 0.999999 });
    expect([high.next(false), high.next(false)]).toEqual([48_000, 60_000]);
  });

  it('Retry-After is a floor; a base above the cap is the cap', () => {
    const b = new Backoff({ baseMs: 1000, jitter: 0 });
    expect(b.next(false, 30_000)).toBe(30_000);
    expect(b.next(false, 500)).toBe(2000);
    expect(new Backoff({ baseMs: 120_000, jitter: 0 }).next(false)).toBe(120_000);
  });
});

interface M extends Watched {
  text: string;
}
const m = (nonce: string, from = 'A'): M => ({ from, nonce, text: `${from}:${nonce}` });

/** A watch over scripted polls (a listing, or an Error to throw), recording what happens. */
async function run(script: (M[] | Error)[], options: { remove?: boolean; removeFails?: number; maxPolls?: number; exitAfter?: number; abortAfterPolls?: number; fatal?: boolean } = {}) {
  const emitted: string[] = [];
  const removed: string[][] = [];
  const delays: number[] = [];
  const errors: [string, number | null][] = [];
  const controller = new AbortController();
  let polls = 0;
  let removeFails = options.removeFails ?? 0;
  const result = await watch<M>({
    poll: async () => {
      const step = script[Math.min(polls, script.length - 1)]!;
      polls++;
      if (options.abortAfterPolls !== undefined && polls >= options.abortAfterPolls) controller.abort();
      if (step instanceof Error) throw step;
      return step;
    },
    emit: (x) => emitted.push(x.text),
    ...(options.remove
      ? {
          remove: async (xs: M[]) => {
            if (removeFails-- > 0) throw new Error('delete failed');
            removed.push(xs.map((x) => x.text));
          },
        }
      : {}),
    onError: (e, delay) => errors.push([(e as Error).message, delay]),
    isFatal: (e) => options.fatal === true && (e as Error).message === 'fatal',
    retryAfterMs: (e) => ((e as Error).message === 'busy' ? 7000 : null),
    backoff: new Backoff({ baseMs: 100, jitter: 0 }),
    signal: controller.signal,
    sleep: async (ms) => void delays.push(ms),
    ...(options.maxPolls !== undefined ? { maxPolls: options.maxPolls } : {}),
    ...(options.exitAfter !== undefined ? { exitAfter: options.exitAfter } : {}),
  });
  return { result, emitted, removed, delays, errors };
}

describe('watch', () => {
  it('hands over each message once across polls, and backs off while nothing is new', async () => {
    const r = await run([[m('1')], [m('1')], [m('1'), m('2')], [m('2'), m('1', 'B')], [m('2'), m('1', 'B')], [m('2'), m('1', 'B')]], { maxPolls: 6 });
    expect(r.emitted).toEqual(['A:1', 'A:2', 'B:1']);
    expect(r.delays).toEqual([100, 100, 100, 100, 100]);
    expect(r.result).toEqual({ polls: 6, emitted: 3, stoppedBy: 'max-polls', lastError: null });
    const idle = await run([[]], { maxPolls: 5 });
    expect(idle.delays).toEqual([100, 200, 400, 800]);
  });

  it('a message missing from one listing and back in the next is not handed over again', async () => {
    const r = await run([[m('1'), m('2')], [m('2')], [m('1'), m('2')]], { maxPolls: 3 });
    expect(r.emitted).toEqual(['A:1', 'A:2']);
  });

  it('failures are reported with the next delay, back off, honour Retry-After, and the watch goes on', async () => {
    const r = await run([new Error('down'), new Error('down'), new Error('busy'), [m('1')], []], { maxPolls: 5 });
    expect(r.errors).toEqual([
      ['down', 100],
      ['down', 200],
      ['busy', 7000],
    ]);
    expect(r.delays).toEqual([100, 200, 7000, 100]);
    expect(r.emitted).toEqual(['A:1']);
    expect(r.result.lastError).toBeNull();
    const failedLast = await run([new Error('down')], { maxPolls: 2 });
    expect(failedLast.errors).toEqual([
      ['down', 100],
      ['down', null],
    ]);
    expect((failedLast.result.lastError as Error).message).toBe('down');
  });

  it('a fatal error is thrown', async () => {
    await expect(run([new Error('fatal')], { fatal: true, maxPolls: 3 })).rejects.toThrow('fatal');
  });

  it('remove: what was handed over, retried while still listed after a failure', async () => {
    const r = await run([[m('1')], [m('1'), m('2')], [m('2')], []], { remove: true, removeFails: 1, maxPolls: 4 });
    expect(r.emitted).toEqual(['A:1', 'A:2']);
    expect(r.removed).toEqual([['A:1', 'A:2'], ['A:2']]);
    expect(r.errors).toEqual([['delete failed', 100]]);
  });

  it('exitAfter: stops once that many are handed over, and leaves the rest unremoved', async () => {
    const r = await run([[m('1')], [m('1'), m('2'), m('3')]], { remove: true, exitAfter: 2 });
    expect(r.emitted).toEqual(['A:1', 'A:2']);
    expect(r.removed).toEqual([['A:1'], ['A:1', 'A:2']]);
    expect(r.result.stoppedBy).toBe('exit-after');
  });

  it('the signal stops it', async () => {
    const r = await run([[m('1')]], { abortAfterPolls: 3 });
    expect(r.result).toMatchObject({ stoppedBy: 'signal', emitted: 1 });
    expect(r.result.polls).toBe(3);
  });
});
