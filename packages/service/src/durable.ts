/**
 * Durable acknowledgement (`REDIS_WAIT_REPLICAS`): a write is reported done only once Redis `WAIT`
 * confirms that `replicas` replicas of its primary have it.
 *
 * `WAIT` covers the writes made earlier on the same connection, and blocks that connection while it
 * waits. So durable writes get a connection of their own (the `writer`; reads never queue behind a
 * WAIT), and WAITs are coalesced per primary connection: at most one is in flight, and it covers
 * every write whose reply had arrived when it was sent (group commit). A write whose connection was
 * replaced between the write and the WAIT (a reconnect, a failover, a slot that moved) is never
 * reported durable: it fails, as does a WAIT that times out with fewer replicas. The caller answers
 * such a failure 503 + Retry-After; the write may or may not survive a failover, and the client's
 * resend of the same message (same nonce) replaces it rather than storing it twice.
 */
import { Cluster, type Redis } from 'ioredis';
import { primaryOfKey, type RedisClient } from './redis.js';

/** The replicas did not confirm the write in time (or its connection changed). */
export class ReplicationError extends Error {
  override readonly name = 'ReplicationError';
}

export interface DurabilityOptions {
  /** Replicas that must confirm each write (`REDIS_WAIT_REPLICAS`); 0 = plain writes. */
  replicas: number;
  /** How long one WAIT may block (`REDIS_WAIT_TIMEOUT_MS`). */
  timeoutMs: number;
  /** Called with the outcome of every write that waited. */
  onWait?: (outcome: 'confirmed' | 'timeout' | 'moved', seconds: number) => void;
}

export interface Durability<C extends RedisClient = RedisClient> {
  readonly replicas: number;
  /** The client writes go through: the main client when `replicas` is 0, else a connection of its own. */
  readonly writer: C;
  /**
   * Runs `write` on the writer, then (when replicas > 0) waits for the replicas of the primaries
   * holding `keys`. Rejects with ReplicationError when they do not confirm.
   */
  run<T>(keys: readonly string[], write: (writer: C) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

interface Waiter {
  readonly epoch: number;
  resolve(): void;
  reject(e: Error): void;
}

/** One primary connection's coalesced WAITs. */
class Batch {
  private queue: Waiter[] = [];
  private inFlight = false;
  /** Bumped on every reconnect of the connection: WAIT on a new connection covers nothing earlier. */
  epoch = 0;

  constructor(
    private readonly conn: Redis,
    private readonly opts: DurabilityOptions,
  ) {
    conn.on('ready', () => this.epoch++);
    conn.on('close', () => this.epoch++);
  }

  /** Resolves once a WAIT sent after this call confirms the replicas, for a write made at `epoch`. */
  wait(epoch: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ epoch, resolve, reject });
      if (!this.inFlight) this.flush();
    });
  }

  private flush(): void {
    const waiters = this.queue;
    this.queue = [];
    this.inFlight = true;
    const t0 = performance.now();
    const done = (err: Error | null): void => {
      const seconds = (performance.now() - t0) / 1000;
      for (const w of waiters) {
        if (err !== null) {
          w.reject(err);
          this.opts.onWait?.('timeout', seconds);
        } else if (w.epoch !== this.epoch) {
          w.reject(new ReplicationError('the store connection changed before the replicas confirmed the write'));
          this.opts.onWait?.('moved', seconds);
        } else {
          w.resolve();
          this.opts.onWait?.('confirmed', seconds);
        }
      }
      this.inFlight = false;
      if (this.queue.length > 0) this.flush();
    };
    this.conn.call('WAIT', this.opts.replicas, this.opts.timeoutMs).then(
      (n) =>
        done(
          typeof n === 'number' && n >= this.opts.replicas
            ? null
            : new ReplicationError(`${String(n)} of ${this.opts.replicas} replicas confirmed the write within ${this.opts.timeoutMs} ms`),
        ),
      (e: unknown) => done(new ReplicationError(`replication wait failed: ${e instanceof Error ? e.message : String(e)}`)),
    );
  }
}

/**
 * The durability of a store client. With replicas > 0 it opens the writer connection (a duplicate
 * of `client`, with its scripts registered again by `defineScripts`, and a command timeout long
 * enough to sit behind one WAIT).
 */
export function createDurability<C extends RedisClient>(client: C, opts: DurabilityOptions & { duplicate: () => C }): Durability<C> {
  if (opts.replicas <= 0) {
    return { replicas: 0, writer: client, run: (_keys, write) => write(client), close: async () => undefined };
  }
  const writer = opts.duplicate();
  const batches = new WeakMap<Redis, Batch>();
  const batchOf = (conn: Redis): Batch => {
    let b = batches.get(conn);
    if (b === undefined) {
      b = new Batch(conn, opts);
      batches.set(conn, b);
    }
    return b;
  };
  /** The primary connection(s) the keys' writes go to, with their epochs, or null if unknown. */
  const targets = (keys: readonly string[]): { batch: Batch; epoch: number }[] | null => {
    const conns = new Set<Redis>();
    if (writer instanceof Cluster) {
      for (const k of keys) {
        const node = primaryOfKey(writer, k);
        if (node === null) return null;
        conns.add(node);
      }
    } else {
      conns.add(writer as Redis);
    }
    return [...conns].map((c) => {
      const batch = batchOf(c);
      return { batch, epoch: batch.epoch };
    });
  };
  return {
    replicas: opts.replicas,
    writer,
    async run(keys, write) {
      const before = targets(keys);
      const result = await write(writer);
      const after = targets(keys);
      const same =
        before !== null &&
        after !== null &&
        before.length === after.length &&
        before.every((b, i) => b.batch === after[i]!.batch && b.epoch === after[i]!.epoch);
      if (!same) {
        opts.onWait?.('moved', 0);
        throw new ReplicationError('the store moved while the write was made; its replication is unknown');
      }
      await Promise.all(before.map((b) => b.batch.wait(b.epoch)));
      return result;
    },
    async close() {
      await writer.quit().catch(() => writer.disconnect());
    },
  };
}
