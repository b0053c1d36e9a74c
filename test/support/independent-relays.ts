/**
 * n independent relays for tests of delivery through several relays: each its own core and
 * gatekeeper processes and its own private redis-server, so they share nothing and one can be
 * killed and restarted alone.
 */
import { Relay } from './relay.js';
import { startRedisServer, type RedisServer } from './redis-server.js';

export interface IndependentRelays {
  readonly stores: readonly RedisServer[];
  readonly relays: readonly Relay[];
  /** The relays' base URLs, in start order. */
  readonly urls: readonly string[];
  /** The relay serving `url`. */
  at(url: string): Relay;
  stop(): Promise<void>;
}

/** Kills a relay for real: SIGKILL of its gatekeeper, then its core (its store stays up). */
export async function killRelay(relay: Relay): Promise<void> {
  await relay.gatekeeper.stop('SIGKILL');
  await relay.core.stop('SIGKILL');
}

/** Starts a killed relay again on the same ports and store. */
export async function reviveRelay(relay: Relay): Promise<void> {
  await relay.core.start();
  await relay.gatekeeper.start();
}

export async function startIndependentRelays(n: number): Promise<IndependentRelays> {
  const stores = await Promise.all(Array.from({ length: n }, () => startRedisServer()));
  const relays = await Promise.all(stores.map((s) => Relay.start({ redisUrl: s.url })));
  return {
    stores,
    relays,
    urls: relays.map((r) => r.url),
    at(url) {
      const relay = relays.find((r) => r.url === url);
      if (relay === undefined) throw new Error(`no relay at ${url}`);
      return relay;
    },
    async stop() {
      await Promise.all(relays.map((r) => r.stop()));
      await Promise.all(stores.map((s) => s.stop()));
    },
  };
}
