/**
 * The progress renderer (src/progress.ts) with a fake clock and a recording stream: the terminal
 * bar redrawn in place and throttled, plain lines at 10 % steps or after 2 s, NDJSON events, the
 * final line, and the unit formatting.
 */
import { describe, expect, it } from 'vitest';
import { createProgress, formatBytes, formatClock, percentOf, type ProgressStream } from '../src/progress.js';

const MiB = 1024 * 1024;

function setup(stream: Partial<ProgressStream> = {}) {
  const writes: string[] = [];
  let ms = 1_000_000;
  const clock = {
    now: () => ms,
    advance: (d: number) => {
      ms += d;
    },
  };
  const s: ProgressStream = { write: (x: string) => writes.push(x), ...stream };
  return { writes, clock, stream: s };
}

const at = (bytes: number, total = 100 * MiB) => ({ bytes, totalBytes: total, chunks: Math.floor(bytes / MiB), totalChunks: Math.ceil(total / MiB) });

describe('formatting', () => {
  it('bytes in binary units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(12.5 * MiB)).toBe('12.5 MiB');
    expect(formatBytes(100 * MiB)).toBe('100 MiB');
    expect(formatBytes(1023.97 * 1024)).toBe('1 MiB');
    expect(formatBytes(3 * 1024 * MiB)).toBe('3 GiB');
  });
  it('clock and percent', () => {
    expect(formatClock(5)).toBe('0:05');
    expect(formatClock(125)).toBe('2:05');
    expect(formatClock(3725)).toBe('1:02:05');
    expect(percentOf(at(12.5 * MiB))).toBe(12);
    expect(percentOf(at(100 * MiB - 1))).toBe(99);
    expect(percentOf({ bytes: 0, totalBytes: 0, chunks: 0, totalChunks: 0 })).toBe(100);
  });
});

describe('on a terminal', () => {
  it('redraws one line with \\r, at most every 100 ms, then a final line', () => {
    const { writes, clock, stream } = setup({ isTTY: true, columns: 100 });
    const p = createProgress({ stream, direction: 'send', now: clock.now });
    clock.advance(1000);
    p.update(at(10 * MiB));
    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatch(/^\rsending \[####-+\]  10 %  10 MiB \/ 100 MiB  10 MiB\/s  ETA 0:09\x1b\[K$/);
    expect(writes[0]!.replace('\r', '').replace('\x1b[K', '').length).toBeLessThan(100);
    // 20 updates within 50 ms: none drawn
    for (let i = 1; i <= 20; i++) {
      clock.advance(2);
      p.update(at(10 * MiB + i * 1024));
    }
    expect(writes).toHaveLength(1);
    clock.advance(100);
    p.update(at(20 * MiB));
    expect(writes).toHaveLength(2);
    expect(writes[1]).toContain(' 20 %  20 MiB / 100 MiB');
    clock.advance(8000);
    p.done(at(100 * MiB));
    expect(writes[2]).toBe('\rsent 100 MiB in 9.1 s (10.9 MiB/s)\x1b[K\n');
    p.update(at(100 * MiB));
    expect(writes).toHaveLength(3);
  });

  it('a narrow terminal drops the bar; the line never reaches the last column', () => {
    const { writes, clock, stream } = setup({ isTTY: true, columns: 50 });
    const p = createProgress({ stream, direction: 'receive', now: clock.now });
    clock.advance(500);
    p.update(at(50 * MiB));
    const line = writes[0]!.replace('\r', '').replace('\x1b[K', '');
    expect(line).toMatch(/^receiving +50 %  50 MiB \/ 100 MiB/);
    expect(line.length).toBeLessThan(50);
  });

  it('fail ends the line so the error starts on its own', () => {
    const { writes, clock, stream } = setup({ isTTY: true });
    const p = createProgress({ stream, direction: 'send', now: clock.now });
    clock.advance(10);
    p.update(at(MiB));
    p.fail();
    expect(writes.at(-1)).toBe('\n');
  });
});

describe('not a terminal', () => {
  it('a plain line at every 10 % step, or after 2 s without one; none at 100 % but the final line', () => {
    const { writes, clock, stream } = setup();
    const p = createProgress({ stream, direction: 'send', now: clock.now });
    for (let mib = 1; mib <= 100; mib++) {
      clock.advance(100);
      p.update(at(mib * MiB));
    }
    p.done();
    expect(writes).toEqual([
      'sent 10 MiB of 100 MiB (10 %)\n',
      'sent 20 MiB of 100 MiB (20 %)\n',
      'sent 30 MiB of 100 MiB (30 %)\n',
      'sent 40 MiB of 100 MiB (40 %)\n',
      'sent 50 MiB of 100 MiB (50 %)\n',
      'sent 60 MiB of 100 MiB (60 %)\n',
      'sent 70 MiB of 100 MiB (70 %)\n',
      'sent 80 MiB of 100 MiB (80 %)\n',
      'sent 90 MiB of 100 MiB (90 %)\n',
      'sent 100 MiB in 10.0 s (10 MiB/s)\n',
    ]);
  });

  it('slow: a line every 2 s while bytes move, none while they do not', () => {
    const { writes, clock, stream } = setup();
    const p = createProgress({ stream, direction: 'receive', now: clock.now });
    clock.advance(1000);
    p.update(at(12.5 * MiB));
    expect(writes).toEqual(['received 12.5 MiB of 100 MiB (12 %)\n']);
    clock.advance(1000);
    p.update(at(13 * MiB));
    expect(writes).toHaveLength(1);
    clock.advance(1000);
    p.update(at(14 * MiB));
    expect(writes).toEqual(['received 12.5 MiB of 100 MiB (12 %)\n', 'received 14 MiB of 100 MiB (14 %)\n']);
    clock.advance(5000);
    p.update(at(14 * MiB));
    expect(writes).toHaveLength(2);
  });
});

describe('a resumed transfer (startBytes)', () => {
  it('rates and the final line count only the bytes moved in this run', () => {
    const { writes, clock, stream } = setup();
    const p = createProgress({ stream, direction: 'send', json: true, now: clock.now, startBytes: 60 * MiB });
    for (let mib = 61; mib <= 100; mib++) {
      clock.advance(100);
      p.update(at(mib * MiB));
    }
    p.done();
    const events = writes.map((w) => (JSON.parse(w) as { progress: { bytes: number; bytesPerSec: number } }).progress);
    expect(events[0]).toMatchObject({ bytes: 61 * MiB, bytesPerSec: 10 * MiB });
    expect(events.at(-1)).toMatchObject({ bytes: 100 * MiB, bytesPerSec: 10 * MiB, done: true });

    const plain = setup();
    const q = createProgress({ stream: plain.stream, direction: 'send', now: plain.clock.now, startBytes: 60 * MiB });
    plain.clock.advance(4000);
    q.done(at(100 * MiB));
    expect(plain.writes.at(-1)).toBe('sent 100 MiB (40 MiB of it in this run) in 4.0 s (10 MiB/s)\n');
  });
});

describe('--json', () => {
  it('NDJSON events at the plain lines’ moments, and a final one with done', () => {
    const { writes, clock, stream } = setup({ isTTY: true });
    const p = createProgress({ stream, direction: 'send', json: true, now: clock.now });
    clock.advance(1000);
    p.update(at(50 * MiB));
    clock.advance(1000);
    p.done(at(100 * MiB));
    expect(writes.map((w) => JSON.parse(w) as unknown)).toEqual([
      { progress: { bytes: 50 * MiB, totalBytes: 100 * MiB, chunks: 50, totalChunks: 100, percent: 50, bytesPerSec: 50 * MiB, etaSec: 1, done: false } },
      { progress: { bytes: 100 * MiB, totalBytes: 100 * MiB, chunks: 100, totalChunks: 100, percent: 100, bytesPerSec: 50 * MiB, etaSec: 0, done: true } },
    ]);
    expect(writes.every((w) => w.endsWith('\n') && !w.slice(0, -1).includes('\n'))).toBe(true);
  });
});
