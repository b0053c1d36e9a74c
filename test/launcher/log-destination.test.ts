/**
 * The services' log destination (`stdoutDestination` of @zax/service, as each service's log.ts uses it) over a real socket,
 * as stdout is when the launcher reads it: a reader that stops reading costs at most the configured
 * bytes (the rest is dropped and counted, and the count is logged once it reads again), and a
 * reader that is gone ends logging without an error, a retry or a blocked event loop.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { stdoutDestination } from '@zax/service';
import { until } from '../support/until.js';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

/** A loopback connection: `out` is the service's end, `reader` the launcher's (paused). */
async function socketPair(): Promise<{ out: net.Socket; reader: net.Socket; received: () => string }> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const out = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((r) => out.once('connect', r));
  const reader = await accepted;
  server.close();
  reader.pause();
  let text = '';
  reader.on('data', (d: Buffer) => (text += d.toString()));
  cleanup.push(() => {
    out.destroy();
    reader.destroy();
  });
  return { out, reader, received: () => text };
}

const LINE = `${'x'.repeat(16 * 1024 - 1)}\n`;
const MAX_PENDING = 256 * 1024;

describe.each(['gatekeeper', 'core'])('%s log destination', (service) => {
  it('a reader that stops reading: waiting bytes stay under the bound, the rest is dropped and counted once it reads again', async () => {
    const { out, reader, received } = await socketPair();
    const dest = stdoutDestination(service, out, MAX_PENDING);
    // Far more than the kernel's socket buffers hold: the stream's own queue must reach the bound.
    const attempts = 4000;
    let peak = 0;
    for (let i = 0; i < attempts; i++) {
      dest.write(LINE);
      peak = Math.max(peak, out.writableLength);
    }
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(MAX_PENDING);

    reader.resume();
    await until('the queue drained', () => out.writableLength === 0);
    dest.write('{"msg":"after"}\n');
    await until('the line after the stall arrived', () => received().endsWith('{"msg":"after"}\n'));
    const lines = received().split('\n').slice(0, -1);
    const kept = lines.filter((l) => l === LINE.slice(0, -1)).length;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(attempts);
    // Every line is whole, and one says how many were dropped, just before the next one written.
    const notice = JSON.parse(lines.at(-2)!) as Record<string, unknown>;
    expect(notice).toMatchObject({ level: 40, service, dropped: attempts - kept });
    expect(lines).toHaveLength(kept + 2);
  });

  it('a reader that is gone: writes are dropped, nothing throws or retries', async () => {
    const { out, reader } = await socketPair();
    const dest = stdoutDestination(service, out, MAX_PENDING);
    reader.destroy();
    // Keep logging until the stream has seen its reader gone (EPIPE or ECONNRESET) ...
    await until('the stream saw its reader gone', () => {
      dest.write(LINE);
      return out.destroyed;
    });
    // ... from then on a line costs nothing.
    for (let i = 0; i < 100; i++) dest.write(LINE);
    expect(out.writableLength).toBe(0);
  });
});
