/**
 * Bounds on download answers over HTTP (DEVIATION D19): the byte cap per answer, downloads in flight
 * per hpk (429 + Retry-After), and the process's budget of answer bytes in flight (503). Readers that
 * never read are raw sockets that send a download whose answer is larger than the socket buffers.
 */
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { INTERNAL_SECRET_HEADER, TEXT_TOO_MANY } from '@zax/protocol';
import { downloadAnswerBound } from '../src/config.js';
import { SECRET, command, commandBody, commandJson, commandPlain, coresWithThreeSessions, type Core, type Session } from './helpers.js';
import { until } from '../../../test/support/until.js';

const { setup } = coresWithThreeSessions();

interface Item {
  data: string;
  nonce: string;
}

/** A message `i` of `bytes` data bytes (base64 alphabet, tagged with its index). */
const data = (i: number, bytes: number): string => `${i}`.padStart(4, '0') + 'A'.repeat(bytes - 4);

async function fill(core: Core, from: Session, to: Session, n: number, bytes: number): Promise<void> {
  for (let i = 0; i < n; i += 10) {
    await Promise.all(
      Array.from({ length: Math.min(10, n - i) }, (_, k) => commandPlain(core, from, { cmd: 'upload', to: to.hpk, payload: data(i + k, bytes) })),
    );
  }
}

/** Sends a download on a raw socket and never reads the answer. */
function stalledDownload(core: Core, s: Session): Socket {
  const body = commandBody(s, { cmd: 'download' }, { nowSec: core.clock.nowSec() });
  const { hostname, port } = new URL(core.url);
  const sock = connect(Number(port), hostname);
  sock.on('error', () => undefined);
  sock.write(
    `POST /command HTTP/1.1\r\nhost: core\r\n${INTERNAL_SECRET_HEADER}: ${SECRET}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  sock.pause();
  return sock;
}

// 100 messages of 250,000 bytes: a ~33 MB answer, far more than loopback socket buffers hold.
const BIG = { n: 100, bytes: 250_000 };
// Answers of ~33 MB, several per test: the per-hpk byte rate (its own test: download-gate.test.ts) off.
// The store replies of two such downloads (66 MB) arrive on the one store connection ahead of the
// next command's reply; on a loaded machine that takes longer than the 1 s default command timeout,
// which is not what these tests are about.
const BIG_ENV = { MAX_DOWNLOAD_BYTES: '33554432', MAX_DOWNLOAD_BYTES_PER_HPK_PER_SEC: '0', REDIS_COMMAND_TIMEOUT_MS: '10000' };

describe('download answer bounds', () => {
  it('an answer holds the oldest messages within MAX_DOWNLOAD_BYTES; paging or deleting gets the rest', async () => {
    const { core, alice, bob } = await setup({ MAX_DOWNLOAD_BYTES: '1000' });
    await fill(core, alice, bob, 5, 400);
    const tags = (items: Item[]): number[] => items.map((i) => Number(i.data.slice(0, 4)));
    const first = await commandJson<Item[]>(core, bob, { cmd: 'download' });
    expect(tags(first)).toEqual([0, 1]);
    expect(tags(await commandJson<Item[]>(core, bob, { cmd: 'download', start: 2 }))).toEqual([2, 3]);
    await commandPlain(core, bob, { cmd: 'delete', payload: first.map((i) => i.nonce) });
    expect(tags(await commandJson<Item[]>(core, bob, { cmd: 'download' }))).toEqual([2, 3]);
  });

  it('one message larger than MAX_DOWNLOAD_BYTES still comes alone', async () => {
    const { core, alice, bob } = await setup({ MAX_DOWNLOAD_BYTES: '10' });
    await fill(core, alice, bob, 3, 400);
    expect(await commandJson<Item[]>(core, bob, { cmd: 'download' })).toHaveLength(1);
    expect(await commandJson<Item[]>(core, bob, { cmd: 'download', start: 2 })).toHaveLength(1);
  });

  it('more than MAX_DOWNLOADS_PER_HPK downloads in flight for one hpk: 429 with Retry-After; others are served', async () => {
    const { core, alice, bob, carol } = await setup({ ...BIG_ENV, MAX_DOWNLOADS_PER_HPK: '2', CORE_MAX_RESPONSE_BYTES_IN_FLIGHT: '1073741824' });
    await fill(core, alice, bob, BIG.n, BIG.bytes);
    await commandPlain(core, alice, { cmd: 'upload', to: carol.hpk, payload: 'hi' });
    const stalled = [stalledDownload(core, bob), stalledDownload(core, bob)];
    try {
      await until('two stalled downloads in flight', () => core.app.answers.downloadsOf(bob.hpk) === 2);
      const refused = await command(core, bob, { cmd: 'download', count: 1 });
      expect(refused.status).toBe(429);
      expect(refused.headers.get('x-error-details')).toBe(TEXT_TOO_MANY);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(refused.body).toBe('');
      // Other commands of that hpk, and other hpks' downloads, go on.
      expect(JSON.parse(await openCount(core, bob))).toBe(BIG.n);
      expect(await commandJson<Item[]>(core, carol, { cmd: 'download' })).toHaveLength(1);
    } finally {
      stalled.forEach((s) => s.destroy());
    }
    await until('the stalled downloads released', () => core.app.answers.downloadsOf(bob.hpk) === 0);
    expect(await commandJson<Item[]>(core, bob, { cmd: 'download', count: 1 })).toHaveLength(1);
  });

  it('download bytes of one hpk above MAX_DOWNLOAD_BYTES_PER_HPK_PER_SEC: 429 with the seconds until repaid; others are served', async () => {
    const { core, alice, bob, carol } = await setup({ MAX_DOWNLOAD_BYTES_PER_HPK_PER_SEC: '1000' });
    await fill(core, alice, bob, 3, 2000);
    await commandPlain(core, alice, { cmd: 'upload', to: carol.hpk, payload: 'hi' });
    expect(await commandJson<Item[]>(core, bob, { cmd: 'download' })).toHaveLength(3); // ~8 KB: 7 s owed
    const refused = await command(core, bob, { cmd: 'download' });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('x-error-details')).toBe(TEXT_TOO_MANY);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(5);
    expect(refused.body).toBe('');
    // That hpk's other commands, and other hpks' downloads, go on.
    expect(JSON.parse(await openCount(core, bob))).toBe(3);
    expect(await commandJson<Item[]>(core, carol, { cmd: 'download' })).toHaveLength(1);
  });

  it('answer bytes in flight near CORE_MAX_RESPONSE_BYTES_IN_FLIGHT: a download gets a smaller page of what is left; small commands still work', async () => {
    const budget = downloadAnswerBound(33_554_432, 262_144);
    const { core, alice, bob, carol } = await setup({ ...BIG_ENV, CORE_MAX_RESPONSE_BYTES_IN_FLIGHT: String(budget), BUSY_RETRY_AFTER_SEC: '7' });
    await fill(core, alice, bob, BIG.n, BIG.bytes);
    await fill(core, alice, carol, 60, BIG.bytes);
    const stalled = stalledDownload(core, bob);
    let page: Item[] = [];
    try {
      // In flight: its real size (once built), which replaced the full bound it reserved first.
      const inFlight = (): number => core.app.answers.bytesInFlight();
      await until('a stalled answer in flight', () => inFlight() > budget / 4 && inFlight() < budget / 2 && core.app.answers.downloadsOf(bob.hpk) === 1);
      const left = budget - inFlight();
      // Bob's answer holds what half the budget allowed. Carol's 60 messages (~20 MB as an answer)
      // would take the budget past its free half: she gets a smaller page of the oldest ones, in
      // order, and pages on for the rest.
      page = await commandJson<Item[]>(core, carol, { cmd: 'download' });
      expect(page.length).toBeGreaterThan(0);
      expect(page.length).toBeLessThan(60);
      expect(page.length * BIG.bytes).toBeLessThanOrEqual(left);
      expect(JSON.parse(await openCount(core, carol))).toBe(60);
    } finally {
      stalled.destroy();
    }
    await until('the stalled answer released', () => core.app.answers.bytesInFlight() === 0);
    const all = await commandJson<Item[]>(core, carol, { cmd: 'download' });
    expect(all).toHaveLength(60);
    // The smaller page was the oldest messages, in download order (fill sends ten at a time, so
    // receipt order within a batch is whichever reached Redis first).
    expect(page.map((i) => i.nonce)).toEqual(all.slice(0, page.length).map((i) => i.nonce));
  });
});

async function openCount(core: Core, s: Session): Promise<string> {
  return JSON.stringify(await commandJson<number>(core, s, { cmd: 'count' }));
}
