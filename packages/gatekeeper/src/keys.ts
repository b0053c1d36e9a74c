/**
 * Every edge-Redis key the gatekeeper writes, built in one place under EDGE_REDIS_PREFIX.
 * Each key is the only key of its script, so none needs a hash tag for Redis Cluster.
 */

export interface EdgeKeys {
  /** Handshake record (hash: ct, rt, exp, pk) for a handshake id = b64(h2(client_token)). */
  handshake(handshakeIdB64: string): string;
}

export function edgeKeys(prefix: string): EdgeKeys {
  return {
    handshake: (id) => `${prefix}hs:${id}`,
  };
}
