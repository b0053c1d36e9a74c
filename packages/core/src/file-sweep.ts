/**
 * The file sweep (run by the BullMQ job in `jobs.ts`, callable directly in tests): removes files
 * whose lifetime has ended — record, parts and chunks — together with registry entries whose keys
 * are already gone (their Redis TTL ran out first, or they were removed behind the scripts' back),
 * taking their bytes off the relay-wide total; then checks the total against the registry's sum and
 * corrects any drift. Every step is one atomic script, so the sweep is safe next to live traffic and
 * next to another sweep.
 */
import type { FileStore } from './store/files.js';

export interface SweepOptions {
  /** Registry entries read per round. @default 100 */
  readonly batch?: number;
  /** Most files one sweep looks at; the next sweep goes on. @default 10000 */
  readonly maxFiles?: number;
  /** Largest registry the drift check sums in one script. @default 50000 */
  readonly reconcileLimit?: number;
}

export interface SweepResult {
  /** Files (or stale registry entries) removed. */
  readonly removed: number;
  /** Bytes those held, now off the total. */
  readonly freedBytes: number;
  /** Entries found live (refreshed meanwhile): only their registry expiry was corrected. */
  readonly refreshed: number;
  /** Total after the check minus before; null when the registry was too large to check. */
  readonly drift: number | null;
  /** Bytes stored on the relay after the sweep. */
  readonly totalBytes: number;
}

export async function sweepFiles(files: FileStore, nowMs: number, opts: SweepOptions = {}): Promise<SweepResult> {
  const batch = opts.batch ?? 100;
  const maxFiles = opts.maxFiles ?? 10_000;
  let removed = 0;
  let freedBytes = 0;
  let refreshed = 0;
  for (let seen = 0; seen < maxFiles; ) {
    const ids = await files.expired(nowMs, Math.min(batch, maxFiles - seen));
    for (const id of ids) {
      const r = await files.reap(id, nowMs);
      if (r.removed) {
        removed++;
        freedBytes += r.freedBytes;
      } else {
        refreshed++;
      }
    }
    seen += ids.length;
    if (ids.length < batch) break;
  }
  const check = await files.reconcile(opts.reconcileLimit ?? 50_000);
  return {
    removed,
    freedBytes,
    refreshed,
    drift: check === null ? null : check.after - check.before,
    totalBytes: check === null ? await files.totalBytes() : check.after,
  };
}
