/** Time as a dependency: services read the clock through this, so tests can inject one. */
export interface Clock {
  nowMs(): number;
}

export const systemClock: Clock = { nowMs: () => Date.now() };

export const nowSec = (clock: Clock): number => Math.floor(clock.nowMs() / 1000);
