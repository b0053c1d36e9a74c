/**
 * Progress of a file transfer on the CLI's stderr, fed by the file API's
 * `onProgress({ bytes, totalBytes, chunks, totalChunks })`:
 * - on a terminal (`stream.isTTY`): one line redrawn in place with `\r` (bar, percentage,
 *   bytes of total in binary units, rate, ETA), at most ~10 redraws a second, and a final line;
 * - otherwise: a plain line at every 10 % step, or after 2 s without one while bytes move
 *   (`sent 12.5 MiB of 100 MiB (12 %)`), and a final line;
 * - with `json`: the same moments as NDJSON events on the stream,
 *   `{"progress":{"bytes","totalBytes","chunks","totalChunks","percent","bytesPerSec","etaSec","done"}}`.
 * No Node module: the clock is a parameter (tests pass a fake one).
 */

export interface TransferProgress {
  bytes: number;
  totalBytes: number;
  chunks: number;
  totalChunks: number;
}

/** Where progress is drawn: the CLI's stderr. */
export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  /** Terminal width; the line is cut to fit. */
  columns?: number;
}

export interface ProgressOptions {
  stream: ProgressStream;
  /** `send`: "sending"/"sent"; `receive`: "receiving"/"received". */
  direction: 'send' | 'receive';
  /** NDJSON events instead of text. @default false */
  json?: boolean;
  /** Milliseconds; @default Date.now */
  now?: () => number;
  /** Least time between two redraws on a terminal. @default 100 */
  redrawMs?: number;
  /** Plain and JSON output: a line after this long without one, if bytes moved. @default 2000 */
  plainEveryMs?: number;
  /** Plain and JSON output: a line at every step of this many percent. @default 10 */
  plainStepPercent?: number;
  /** Bytes done before this run (a resumed transfer): rates count only what moves now. @default 0 */
  startBytes?: number;
}

export interface ProgressRenderer {
  /** One report from the transfer; draws only when due. */
  update(p: TransferProgress): void;
  /** The transfer completed: draws the final line (with `p`, or the last report). */
  done(p?: TransferProgress): void;
  /** The transfer failed: ends the terminal line so an error message starts on a line of its own. */
  fail(): void;
}

/** A window of recent samples for the rate: the last few seconds, not the whole run. */
const RATE_WINDOW_MS = 5000;

export function createProgress(options: ProgressOptions): ProgressRenderer {
  const { stream, direction } = options;
  const json = options.json === true;
  const tty = !json && stream.isTTY === true;
  const now = options.now ?? (() => Date.now());
  const redrawMs = options.redrawMs ?? 100;
  const plainEveryMs = options.plainEveryMs ?? 2000;
  const stepPercent = options.plainStepPercent ?? 10;
  const [active, finished] = direction === 'send' ? ['sending', 'sent'] : ['receiving', 'received'];

  const startMs = now();
  const startBytes = options.startBytes ?? 0;
  const samples: { ms: number; bytes: number }[] = [{ ms: startMs, bytes: startBytes }];
  let last: TransferProgress = { bytes: 0, totalBytes: 0, chunks: 0, totalChunks: 0 };
  let lastDrawMs = -Infinity;
  let lastPlainMs = startMs;
  let lastPlainBytes = startBytes;
  let lastStep = 0;
  let lineOpen = false;
  let ended = false;

  const rate = (ms: number): number | null => {
    while (samples.length > 2 && samples[1]!.ms <= ms - RATE_WINDOW_MS) samples.shift();
    const first = samples[0]!;
    const lastSample = samples[samples.length - 1]!;
    const dt = lastSample.ms - first.ms;
    return dt > 0 ? ((lastSample.bytes - first.bytes) * 1000) / dt : null;
  };

  const event = (p: TransferProgress, ms: number, done: boolean): string => {
    const r = done ? averageRate(p.bytes - startBytes, ms - startMs) : rate(ms);
    const eta = etaSec(p, r);
    return `${JSON.stringify({
      progress: {
        bytes: p.bytes,
        totalBytes: p.totalBytes,
        chunks: p.chunks,
        totalChunks: p.totalChunks,
        percent: percentOf(p),
        bytesPerSec: r === null ? null : Math.round(r),
        etaSec: done ? 0 : eta,
        done,
      },
    })}\n`;
  };

  const ttyLine = (p: TransferProgress, ms: number): string => {
    const pct = percentOf(p);
    const r = rate(ms);
    const eta = etaSec(p, r);
    const text = `${formatBytes(p.bytes)} / ${formatBytes(p.totalBytes)}  ${r === null ? '--' : `${formatBytes(r)}/s`}  ETA ${eta === null ? '--:--' : formatClock(eta)}`;
    const head = `${active} `;
    const tail = ` ${String(pct).padStart(3)} %  ${text}`;
    const columns = stream.columns !== undefined && stream.columns > 0 ? stream.columns : 80;
    // The bar takes what is left of the width, between 10 and 40 cells; dropped if it does not fit.
    const room = columns - 1 - head.length - tail.length - 2;
    const cells = Math.min(40, room);
    const bar = cells >= 10 ? `[${'#'.repeat(Math.floor((pct * cells) / 100)).padEnd(cells, '-')}]` : '';
    return fit(`${head}${bar}${tail}`, columns);
  };

  const plainLine = (p: TransferProgress): string =>
    `${finished} ${formatBytes(p.bytes)} of ${formatBytes(p.totalBytes)} (${percentOf(p)} %)\n`;

  const finalLine = (p: TransferProgress, ms: number): string => {
    const sec = (ms - startMs) / 1000;
    const r = averageRate(p.bytes - startBytes, ms - startMs);
    const resumed = startBytes > 0 ? ` (${formatBytes(p.bytes - startBytes)} of it in this run)` : '';
    return `${finished} ${formatBytes(p.bytes)}${resumed} in ${formatSeconds(sec)}${r === null ? '' : ` (${formatBytes(r)}/s)`}`;
  };

  return {
    update(p) {
      if (ended) return;
      const ms = now();
      last = p;
      samples.push({ ms, bytes: p.bytes });
      if (tty) {
        if (ms - lastDrawMs < redrawMs) return;
        lastDrawMs = ms;
        stream.write(`\r${ttyLine(p, ms)}\x1b[K`);
        lineOpen = true;
        return;
      }
      const step = Math.floor(percentOf(p) / stepPercent);
      const due = step > lastStep || (p.bytes !== lastPlainBytes && ms - lastPlainMs >= plainEveryMs);
      // 100 % is the final line's to say.
      if (!due || percentOf(p) >= 100) return;
      lastStep = Math.max(lastStep, step);
      lastPlainMs = ms;
      lastPlainBytes = p.bytes;
      stream.write(json ? event(p, ms, false) : plainLine(p));
    },
    done(p) {
      if (ended) return;
      ended = true;
      const ms = now();
      const final = p ?? last;
      if (json) stream.write(event(final, ms, true));
      else stream.write(`${tty ? '\r' : ''}${finalLine(final, ms)}${tty ? '\x1b[K' : ''}\n`);
      lineOpen = false;
    },
    fail() {
      if (ended) return;
      ended = true;
      if (lineOpen) stream.write('\n');
      lineOpen = false;
    },
  };
}

/** Whole percent, rounded down (100 only when every byte is there); an empty transfer is 100. */
export function percentOf(p: TransferProgress): number {
  if (!(p.totalBytes > 0)) return 100;
  return Math.max(0, Math.min(100, Math.floor((p.bytes * 100) / p.totalBytes)));
}

function averageRate(bytes: number, ms: number): number | null {
  return ms > 0 ? (bytes * 1000) / ms : null;
}

function etaSec(p: TransferProgress, bytesPerSec: number | null): number | null {
  if (bytesPerSec === null || !(bytesPerSec > 0)) return null;
  return Math.max(0, Math.ceil((p.totalBytes - p.bytes) / bytesPerSec));
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

/** Bytes in binary units: `512 B`, `1.5 KiB`, `12.5 MiB`, `100 MiB` (one decimal below 100). */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '? B';
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  if (u === 0) return `${Math.round(v)} B`;
  // 1023.96 KiB would print as "1024.0 KiB": round first, then pick the unit again.
  const rounded = v >= 100 ? Math.round(v) : Math.round(v * 10) / 10;
  if (rounded >= 1024 && u < UNITS.length - 1) return formatBytes(1024 ** (u + 1));
  return `${v >= 100 ? rounded.toFixed(0) : rounded.toFixed(1).replace(/\.0$/, '')} ${UNITS[u]}`;
}

/** `m:ss`, or `h:mm:ss` from an hour up. */
export function formatClock(sec: number): string {
  const s = Math.max(0, Math.round(sec));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

function formatSeconds(sec: number): string {
  return sec < 60 ? `${sec.toFixed(1)} s` : formatClock(sec);
}

/** Cuts a line to fit a terminal of `columns` (leaving the last cell free, so nothing wraps). */
function fit(line: string, columns: number): string {
  return line.length < columns ? line : line.slice(0, Math.max(0, columns - 1));
}
