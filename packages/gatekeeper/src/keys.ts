/**
 * Every edge-Redis key the gatekeeper writes, built in one place under EDGE_REDIS_PREFIX.
 * Handshake and throttle keys are each the only key of their script. The difficulty keys share a
 * hash tag (`<prefix>{difficulty}:…`), so the two-key write script and the three-counter read stay
 * on one Redis Cluster slot (a prefix with braces of its own tags them all alike, which works too).
 */
import type { Budget } from './metrics.js';

export interface EdgeKeys {
  /** Handshake record (hash: ct, rt, exp, pk) for a handshake id = b64(h2(client_token)). */
  handshake(handshakeIdB64: string): string;
  /** Token bucket (hash: t, ts) of one client (IPv4 address or IPv6 prefix) for one budget. */
  bucket(budget: Budget, client: string): string;
  /** Successful handshake calls in one difficulty period (integer), across replicas. */
  difficultyCount(period: number): string;
  /** The difficulty-controller lease (string: owner id). */
  readonly difficultyLease: string;
  /** The published difficulty (hash: d, boost, period, changes, updated). */
  readonly difficultyState: string;
}

export function edgeKeys(prefix: string): EdgeKeys {
  const hs = `${prefix}hs:`;
  const tbHandshake = `${prefix}tb:h:`;
  const tbRequest = `${prefix}tb:r:`;
  const dc = `${prefix}{difficulty}:`;
  return {
    handshake: (id) => hs + id,
    bucket: (budget, client) => (budget === 'handshake' ? tbHandshake : tbRequest) + client,
    difficultyCount: (period) => `${dc}n:${period}`,
    difficultyLease: `${dc}lease`,
    difficultyState: `${dc}state`,
  };
}
