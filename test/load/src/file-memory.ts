/**
 * `pnpm bench:file-memory`: the memory a process needs to send and receive a large file with
 * @zax/client. It starts a private relay (harness.ts: memory-only Redis, core, gatekeeper), sends a
 * `--size-mib` file (256 by default) produced piece by piece by a generator (never a buffer of the
 * whole file) through `Mailbox.sendFile`, then receives it into a SHA-256 sink with
 * `Mailbox.receiveFile`, and samples this process's RSS every 50 ms. For each direction it prints the
 * window (window × chunkSize), the baseline RSS (after a warm-up transfer and a GC), the peak, the
 * growth, whether the growth stays under twice the window, and the throughput. Not a test.
 *
 * `--warm-up-mib` sets the warm-up file (4 MiB by default): a larger one lets V8 grow its young
 * generation to its working size before the baseline, which a long-running process has anyway.
 * `--reuse-source` makes the generator fill one piece buffer again and again (as a reader into a
 * fixed buffer does; the client copies a piece before it asks for the next) instead of fresh ones.
 * `--collect-every N` runs a full GC (`gc()`, exposed by the script's `--expose-gc`) from the
 * progress callback after every N chunks: the growth then shows what the client holds, without the
 * garbage V8 has not yet collected (an app on a small device can do the same).
 *
 *   pnpm bench:file-memory [--size-mib 256] [--window 4] [--chunk-size BYTES] [--piece BYTES] [--warm-up-mib 4] [--reuse-source] [--collect-every N] [--json]
 */
import { createHash, randomFillSync } from 'node:crypto';
import { parseArgs } from 'node:util';
import { getHeapSpaceStatistics } from 'node:v8';
import { generateIdentity, Mailbox, type FileProgress } from '@zax/client';
import { LocalRelay } from './harness.js';

const { values: args } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '256' },
    window: { type: 'string', default: '4' },
    'chunk-size': { type: 'string' },
    piece: { type: 'string', default: '65536' },
    'warm-up-mib': { type: 'string', default: '4' },
    'reuse-source': { type: 'boolean', default: false },
    'collect-every': { type: 'string', default: '0' },
    json: { type: 'boolean', default: false },
  },
});
const SIZE = Math.round(Number(args['size-mib']) * 1024 * 1024);
const WINDOW = Number(args.window);
const PIECE = Number(args.piece);
const WARM = Math.round(Number(args['warm-up-mib']) * 1024 * 1024);
if (!(SIZE > 0) || !(WINDOW >= 1) || !(PIECE >= 1) || !(WARM > 0)) throw new Error('--size-mib, --window, --piece and --warm-up-mib must be positive');
const MiB = 1024 * 1024;
const REUSE = args['reuse-source'];
const COLLECT_EVERY = Number(args['collect-every']);
if (!(COLLECT_EVERY >= 0)) throw new Error('--collect-every must be 0 or more');
const gc = (globalThis as { gc?: () => void }).gc;

/** RSS sampled every 50 ms; `peak()` since the last `reset()`. */
class RssSampler {
  private max = 0;
  /** The largest V8 heap and ArrayBuffer bytes seen, to tell where a peak comes from. */
  maxHeap = 0;
  maxArrayBuffers = 0;
  /** The largest V8 young generation (new space), which V8 grows under load. */
  maxNewSpace = 0;
  private readonly timer = setInterval(() => this.sample(), 50);
  sample(): void {
    const m = process.memoryUsage();
    this.max = Math.max(this.max, m.rss);
    this.maxHeap = Math.max(this.maxHeap, m.heapTotal);
    this.maxArrayBuffers = Math.max(this.maxArrayBuffers, m.arrayBuffers);
    this.maxNewSpace = Math.max(this.maxNewSpace, newSpaceSize());
  }
  reset(): void {
    this.max = this.maxHeap = this.maxArrayBuffers = this.maxNewSpace = 0;
    this.sample();
  }
  peak(): number {
    this.sample();
    return this.max;
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

function newSpaceSize(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

/**
 * `size` pseudo-random bytes in `piece`-byte Buffers, hashed as they go: fresh ones (like a file
 * read stream), or with `--reuse-source` one buffer filled again for every piece.
 */
async function* generated(size: number, piece: number, hash: ReturnType<typeof createHash>): AsyncGenerator<Uint8Array> {
  const shared = REUSE ? Buffer.allocUnsafe(piece) : null;
  for (let at = 0; at < size; at += piece) {
    const n = Math.min(piece, size - at);
    const b = shared !== null ? shared.subarray(0, n) : Buffer.allocUnsafe(n);
    randomFillSync(b);
    hash.update(b);
    yield b;
  }
}

async function settledRss(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 100));
  }
  return process.memoryUsage().rss;
}

interface Phase {
  phase: 'send' | 'receive';
  windowBytes: number;
  baselineRss: number;
  peakRss: number;
  growth: number;
  underTwiceWindow: boolean;
  seconds: number;
  mbPerSec: number;
  /** Baseline and peak of the V8 heap (heapTotal) and of ArrayBuffer memory. */
  heap: [number, number];
  arrayBuffers: [number, number];
  newSpace: [number, number];
}

async function main(): Promise<void> {
  const relay = await LocalRelay.start({ env: { LOG_LEVEL: 'warn' } });
  const sampler = new RssSampler();
  try {
    const a = generateIdentity();
    const b = generateIdentity();
    const alice = Mailbox.create({ url: relay.url, identity: a, timeoutMs: 30_000 });
    const bob = Mailbox.create({ url: relay.url, identity: b, guests: [a.publicKey], timeoutMs: 30_000 });

    // Warm-up: sessions, code paths, connection pools (a 4 MiB file both ways by default).
    const warm = generateIdentity();
    const warmBox = Mailbox.create({ url: relay.url, identity: warm, guests: [a.publicKey], timeoutMs: 30_000 });
    const warmUp = await alice.sendFile(warm.publicKey, generated(WARM, PIECE, createHash('sha256')), { size: WARM, window: WINDOW });
    const [warmMsg] = await warmBox.receive();
    await warmBox.receiveFile(warmMsg!, { sink: () => undefined, window: WINDOW });
    await warmBox.deleteFile(warmUp.uploadID);

    const phases: Phase[] = [];
    /** With --collect-every N: a full GC after every N chunks, so garbage never waits for V8. */
    const collect = (p: FileProgress): void => {
      if (COLLECT_EVERY > 0 && p.chunks % COLLECT_EVERY === 0) gc?.();
    };
    const measure = async (phase: Phase['phase'], windowBytes: number, run: () => Promise<void>): Promise<void> => {
      const baselineRss = await settledRss();
      const base = process.memoryUsage();
      const baseNewSpace = newSpaceSize();
      sampler.reset();
      const t0 = performance.now();
      await run();
      const seconds = (performance.now() - t0) / 1000;
      const peakRss = sampler.peak();
      const growth = peakRss - baselineRss;
      phases.push({ phase, windowBytes, baselineRss, peakRss, growth, underTwiceWindow: growth < 2 * windowBytes, seconds, mbPerSec: SIZE / MiB / seconds, heap: [base.heapTotal, sampler.maxHeap], arrayBuffers: [base.arrayBuffers, sampler.maxArrayBuffers], newSpace: [baseNewSpace, sampler.maxNewSpace] });
    };

    const sentHash = createHash('sha256');
    let chunkSize = 0;
    let lastProgress: FileProgress | null = null;
    let uploadID = '';
    await measure('send', 0, async () => {
      const sent = await alice.sendFile(b.publicKey, generated(SIZE, PIECE, sentHash), {
        size: SIZE,
        window: WINDOW,
        ...(args['chunk-size'] !== undefined ? { chunkSize: Number(args['chunk-size']) } : {}),
        onProgress: (p) => {
          lastProgress = p;
          collect(p);
        },
        onCheckpoint: (cp) => (chunkSize = cp.chunkSize),
      });
      uploadID = sent.uploadID;
    });
    phases[0]!.windowBytes = WINDOW * chunkSize;
    phases[0]!.underTwiceWindow = phases[0]!.growth < 2 * phases[0]!.windowBytes;
    if ((lastProgress as FileProgress | null)?.bytes !== SIZE) throw new Error('progress did not reach the total');

    const [msg] = await bob.receive();
    const recvHash = createHash('sha256');
    await measure('receive', WINDOW * chunkSize, async () => {
      await bob.receiveFile(msg!, { window: WINDOW, sink: (c) => void recvHash.update(c), onProgress: collect });
    });
    const same = recvHash.digest('hex') === sentHash.digest('hex');
    await bob.deleteFile(uploadID);

    if (args.json) {
      console.log(JSON.stringify({ sizeBytes: SIZE, warmUpBytes: WARM, reuseSource: REUSE, collectEvery: COLLECT_EVERY, window: WINDOW, chunkSize, piece: PIECE, gcExposed: gc !== undefined, sha256Equal: same, phases }, null, 2));
    } else {
      const mb = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;
      console.log(`file ${mb(SIZE)}, window ${WINDOW} × chunk ${chunkSize} B, source pieces ${PIECE} B${REUSE ? ' (one reused buffer)' : ''}, warm-up ${mb(WARM)}, GC ${gc ? 'exposed' : 'not exposed'}${COLLECT_EVERY > 0 ? `, full GC every ${COLLECT_EVERY} chunks` : ''}`);
      console.log('phase    window      baseline RSS  peak RSS     growth      growth < 2×window  throughput');
      for (const p of phases) {
        console.log(
          `${p.phase.padEnd(8)} ${mb(p.windowBytes).padEnd(11)} ${mb(p.baselineRss).padEnd(13)} ${mb(p.peakRss).padEnd(12)} ${mb(p.growth).padEnd(11)} ${String(p.underTwiceWindow).padEnd(18)} ${p.mbPerSec.toFixed(1)} MiB/s` +
            `   (V8 heap ${mb(p.heap[0])} → ${mb(p.heap[1])}, ArrayBuffers ${mb(p.arrayBuffers[0])} → ${mb(p.arrayBuffers[1])}, new space ${mb(p.newSpace[0])} → ${mb(p.newSpace[1])})`,
        );
      }
      console.log(`received SHA-256 ${same ? 'equals' : 'DIFFERS FROM'} the sent one`);
    }
    if (!same) process.exitCode = 1;
  } finally {
    sampler.stop();
    await relay.stop();
  }
}

await main();
