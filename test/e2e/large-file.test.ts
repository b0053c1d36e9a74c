/**
 * A large file through real processes (gatekeeper → core → Redis): more than 64 MiB in
 * 512000-byte chunks of random bytes, uploaded and downloaded with 4 requests in flight, comes back
 * byte-identical (SHA-256). Prints the upload and download throughput (MB/s, 10^6 bytes/s) and the
 * CPU time per MB of the core, the gatekeeper and this test's client side (neither is asserted:
 * the machine is shared), and asserts that neither service's peak RSS (VmHWM) passes 256 MiB.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { b64 } from '@zax/protocol';
import { bestCrypto } from '@zax/service';
import { Relay } from '../support/relay.js';
import * as raw from '../support/raw.js';

const CHUNK = 512_000;
const PARTS = Math.ceil((64 * 1024 * 1024) / CHUNK); // 132 parts = 67 584 000 bytes ≥ 64 MiB
const TOTAL = PARTS * CHUNK;
const IN_FLIGHT = 4;
const RSS_LIMIT_BYTES = 256 * 1024 * 1024;

let relay: Relay;

beforeAll(async () => {
  // Throttling off: this test sends ~270 commands from one address in a few seconds.
  relay = await Relay.start({ redisUrl: inject('redisUrl'), env: { REQUEST_BURST_PER_IP: '0', HANDSHAKE_BURST_PER_IP: '0' } });
});
afterAll(async () => {
  agent.destroy();
  await relay?.stop();
});

/** Peak resident set size of a process in bytes (`VmHWM` of /proc/<pid>/status). */
function peakRssBytes(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmHWM for ${pid}`);
  return Number(m[1]) * 1024;
}

/**
 * The chunk commands go through a lean client, as a phone app would send them: node:http with a
 * keep-alive agent, Buffer bodies (the chunk's base64 written once into the body), the answer's
 * third line decoded from the bytes, sodium-native for the command boxes. The global fetch the
 * other tests use (via raw.command) costs this process more CPU per MB than the core spends, on
 * the same two cores, and would measure the test instead of the relay.
 */
const crypto = bestCrypto();
const agent = new http.Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
const CRLF = Buffer.from('\r\n');

function postBuffer(url: string, body: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'text/plain', 'content-length': body.length } });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.end(body);
  });
}

/** A command with an optional binary line 4 (sent as base64); returns the decrypted JSON and line 3's bytes. */
async function chunkCommand(s: raw.Session, cmd: unknown, chunk?: Buffer): Promise<{ status: number; plain: string | null; line3: Buffer | null }> {
  const nonce = raw.freshNonce();
  const box = crypto.boxAfter(Buffer.from(JSON.stringify(cmd)), nonce, s.sharedKey);
  const head = Buffer.from(`${s.id.hpk}\r\n${b64(nonce)}\r\n${b64(box)}${chunk !== undefined ? '\r\n' : ''}`, 'latin1');
  let body = head;
  if (chunk !== undefined) {
    body = Buffer.allocUnsafe(head.length + Math.ceil(chunk.length / 3) * 4);
    head.copy(body);
    body.write(chunk.toString('base64'), head.length, 'latin1');
  }
  const r = await postBuffer(`${s.url}/command`, body);
  if (r.status !== 200) return { status: r.status, plain: null, line3: null };
  const e1 = r.body.indexOf(CRLF);
  const e2 = r.body.indexOf(CRLF, e1 + 2);
  const rspNonce = Buffer.from(r.body.toString('latin1', 0, e1), 'base64');
  const sealed = Buffer.from(r.body.toString('latin1', e1 + 2, e2 === -1 ? r.body.length : e2), 'base64');
  const opened = crypto.boxOpenAfter(sealed, rspNonce, s.sharedKey);
  return {
    status: r.status,
    plain: opened === null ? null : Buffer.from(opened).toString('utf8'),
    line3: e2 === -1 ? null : Buffer.from(r.body.toString('latin1', e2 + 2), 'base64'),
  };
}

/** Runs `task(i)` for i = 0..n−1 with at most `limit` running at once. */
async function pool(n: number, limit: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < n) await task(next++);
    }),
  );
}

/** CPU time (user + system, ms) a process has used so far (`utime + stime` of /proc/<pid>/stat). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // USER_HZ = 100 on Linux
}

/** CPU ms so far of the core, the gatekeeper and this process (the client side of the test). */
function cpuSnapshot(): { core: number; gk: number; client: number } {
  const u = process.cpuUsage();
  return { core: cpuMs(relay.core.pid!), gk: cpuMs(relay.gatekeeper.pid!), client: (u.user + u.system) / 1000 };
}

/** "core a, gatekeeper b, client c" in CPU ms per MB (10^6 bytes) between two snapshots. */
function cpuPerMb(a: ReturnType<typeof cpuSnapshot>, b: ReturnType<typeof cpuSnapshot>, bytes: number): string {
  const per = (x: number): string => (x / (bytes / 1e6)).toFixed(1);
  return `CPU ms/MB core ${per(b.core - a.core)}, gatekeeper ${per(b.gk - a.gk)}, client ${per(b.client - a.client)}`;
}

const mbPerSec = (bytes: number, ms: number): number => Math.round((bytes / 1e6 / (ms / 1000)) * 10) / 10;

describe('large file', () => {
  it(`${PARTS} × ${CHUNK} bytes (≥ 64 MiB) round-trip byte-identical; peak RSS of core and gatekeeper ≤ 256 MiB`, { timeout: 120_000 }, async () => {
    const url = relay.url;
    const sender = await raw.connect(url);
    const recipient = await raw.connect(url);

    const start = await raw.command(sender, {
      cmd: 'startFileUpload',
      to: recipient.id.hpk,
      file_size: TOTAL,
      metadata: { nonce: b64(raw.freshNonce()), ctext: 'large-file-metadata' },
    });
    expect(start.status).toBe(200);
    const { uploadID, max_chunk_size } = JSON.parse(start.plain!) as { uploadID: string; max_chunk_size: number };
    expect(max_chunk_size).toBe(CHUNK);

    // Random chunks; the expected digest is over the parts in order.
    const chunks = Array.from({ length: PARTS }, () => randomBytes(CHUNK));
    const expected = createHash('sha256');
    for (const c of chunks) expected.update(c);
    const expectedDigest = expected.digest('hex');

    const upCpu = cpuSnapshot();
    const upStarted = performance.now();
    await pool(PARTS, IN_FLIGHT, async (i) => {
      const r = await chunkCommand(sender, { cmd: 'uploadFileChunk', uploadID, part: i, nonce: b64(raw.freshNonce()), last_chunk: i === PARTS - 1 }, chunks[i]!);
      if (r.status !== 200 || r.plain !== '{"status":"OK"}') throw new Error(`upload part ${i}: ${r.status} ${r.plain ?? ''}`);
    });
    const upMs = performance.now() - upStarted;
    const upCpuPerMb = cpuPerMb(upCpu, cpuSnapshot(), TOTAL);

    const status = await raw.command(recipient, { cmd: 'fileStatus', uploadID });
    expect(JSON.parse(status.plain!)).toEqual({ status: 'COMPLETE', file_size: TOTAL, bytes_stored: TOTAL, total_chunks: PARTS });

    const received: Buffer[] = new Array<Buffer>(PARTS);
    const downCpu = cpuSnapshot();
    const downStarted = performance.now();
    await pool(PARTS, IN_FLIGHT, async (i) => {
      const r = await chunkCommand(recipient, { cmd: 'downloadFileChunk', uploadID, part: i });
      if (r.status !== 200 || r.line3 === null || r.plain === null) throw new Error(`download part ${i}: ${r.status}`);
      received[i] = r.line3;
    });
    const downMs = performance.now() - downStarted;
    const downCpuPerMb = cpuPerMb(downCpu, cpuSnapshot(), TOTAL);

    const got = createHash('sha256');
    for (const c of received) got.update(c);
    expect(received.reduce((a, c) => a + c.length, 0)).toBe(TOTAL);
    expect(got.digest('hex')).toBe(expectedDigest);

    const coreRss = peakRssBytes(relay.core.pid!);
    const gkRss = peakRssBytes(relay.gatekeeper.pid!);
    console.log(
      `large file: ${TOTAL} bytes in ${PARTS} chunks, ${IN_FLIGHT} in flight — ` +
        `upload ${mbPerSec(TOTAL, upMs)} MB/s (${Math.round(upMs)} ms; ${upCpuPerMb}), ` +
        `download ${mbPerSec(TOTAL, downMs)} MB/s (${Math.round(downMs)} ms; ${downCpuPerMb}); ` +
        `peak RSS core ${(coreRss / 2 ** 20).toFixed(1)} MiB, gatekeeper ${(gkRss / 2 ** 20).toFixed(1)} MiB`,
    );
    expect(coreRss).toBeLessThanOrEqual(RSS_LIMIT_BYTES);
    expect(gkRss).toBeLessThanOrEqual(RSS_LIMIT_BYTES);

    const del = await raw.command(sender, { cmd: 'deleteFile', uploadID });
    expect(del.plain).toBe('{"status":"OK"}');
  });
});
