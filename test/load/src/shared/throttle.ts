/**
 * What the load tools say when a relay throttles them. A relay's per-client budgets are sized for
 * phones; a load generator sends everything from one address, so a relay with default budgets
 * answers 429 within seconds and the figures measure the throttle, not the relay. Shared by the
 * node generator, the k6 check and the k6 scripts (no Node built-ins).
 */

/** The settings that turn a relay's per-client budgets off (0 = unlimited). */
export const BUDGETS_OFF = 'HANDSHAKE_BURST_PER_IP=0 REQUEST_BURST_PER_IP=0';

/** HTTP status of a throttled request. */
export const THROTTLED = 429;

/**
 * Responses in a row, over all devices, that were 429 with no valid response between them, after
 * which the node generator stops a run (it is not measuring the relay any more).
 */
export const THROTTLE_STREAK = 50;

const WHY = `its per-client budgets throttle a one-address load generator; start it with ${BUDGETS_OFF}`;

/** The tools' summary of a throttled run. */
export function throttledMessage(times: number): string {
  return `the relay answered 429 Too many requests ${times} time${times === 1 ? '' : 's'}: ${WHY}`;
}

/** What a k6 VU prints at its first 429 (k6 counts them in `zax_errors{status:429}`). */
export const THROTTLED_HINT = `the relay answers 429 Too many requests: ${WHY}`;
