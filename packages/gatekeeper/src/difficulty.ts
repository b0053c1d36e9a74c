/**
 * Where the proof-of-work difficulty comes from (PROTOCOL.md §3.4). `current` is what
 * /start_session announces; `accepted` is every difficulty whose answers /verify_session accepts
 * now (DEVIATION D10: during the grace window after a change, the old and the new one).
 * The static provider never changes; an adaptive, edge-Redis-backed provider plugs in here.
 */

export interface DifficultyProvider {
  current(nowMs: number): Promise<number>;
  /** Non-empty; includes `current(nowMs)`. */
  accepted(nowMs: number): Promise<readonly number[]>;
}

export function staticDifficulty(difficulty: number): DifficultyProvider {
  const accepted = Object.freeze([difficulty]);
  return {
    current: () => Promise.resolve(difficulty),
    accepted: () => Promise.resolve(accepted),
  };
}
