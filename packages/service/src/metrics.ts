/**
 * The metrics skeleton of both tiers (prom-client): one registry per app (no global registry: tests
 * run several apps in one process) whose every name starts with the tier's prefix, optionally with
 * the process metrics; the store-latency histogram by operation with its timer sinks; the TLS
 * certificate gauges; `timed`. Each tier's metrics.ts defines its own metrics on the registry.
 */
import { performance } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Receives one operation's duration in seconds. */
export type LatencySink = (seconds: number) => void;

/** Receives the duration of store operations by name (storeCall). */
export interface OpObserver<Op extends string = string> {
  redisCall(op: Op, seconds: number): void;
}

/**
 * Fills `registry` (a new one unless given) with the process metrics (CPU, memory, event-loop lag,
 * GC) under `prefix` when `collectDefault`.
 */
export function createRegistry(prefix: string, collectDefault: boolean, registry: Registry = new Registry()): Registry {
  if (collectDefault) collectDefaultMetrics({ register: registry, prefix });
  return registry;
}

/**
 * `<prefix>event_loop_utilization`: the share of time this process's event loop was busy (0..1)
 * since the previous scrape (since start at the first one).
 */
export function eventLoopUtilizationGauge(registry: Registry, prefix: string): void {
  let last = performance.eventLoopUtilization();
  new Gauge({
    name: `${prefix}event_loop_utilization`,
    help: "This process's event-loop utilisation since the previous scrape (0..1)",
    registers: [registry],
    aggregator: 'max',
    collect() {
      const now = performance.eventLoopUtilization();
      this.set(performance.eventLoopUtilization(now, last).utilization);
      last = now;
    },
  });
}

/** Store round trips, by operation. */
export interface RedisLatency {
  /** A sink for `op`, resolved once (for the hot path). */
  sink(op: string): LatencySink;
  /** Observes one call of `op` (its child cached; spaces in the name become underscores). */
  readonly observer: OpObserver;
}

/** `<prefix>redis_command_duration_seconds{op}`, failures included. */
export function redisLatency(registry: Registry, prefix: string, help: string): RedisLatency {
  const histogram = new Histogram({
    name: `${prefix}redis_command_duration_seconds`,
    help,
    labelNames: ['op'] as const,
    buckets: [0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    registers: [registry],
  });
  const children = new Map<string, Histogram.Internal<'op'>>();
  return {
    sink(op) {
      const child = histogram.labels(op);
      return (seconds) => child.observe(seconds);
    },
    observer: {
      redisCall(op, seconds) {
        let child = children.get(op);
        if (child === undefined) children.set(op, (child = histogram.labels(op.replace(/ /g, '_'))));
        child.observe(seconds);
      },
    },
  };
}

/** An OpObserver over per-operation sinks, each resolved once on first use. */
export function sinkObserver<Op extends string>(sinkFor: (op: Op) => LatencySink): OpObserver<Op> {
  const sinks = new Map<Op, LatencySink>();
  return {
    redisCall(op, seconds) {
      let sink = sinks.get(op);
      if (sink === undefined) sinks.set(op, (sink = sinkFor(op)));
      sink(seconds);
    },
  };
}

/**
 * `<prefix>tls_certificate_loads_total{outcome}` and `<prefix>tls_certificate_not_after_seconds`:
 * a load (start-up or reload) and the end of validity of the certificate in use.
 */
export function tlsLoadMetrics(registry: Registry, prefix: string): (outcome: 'ok' | 'failed', validToMs: number) => void {
  const loads = new Counter({
    name: `${prefix}tls_certificate_loads_total`,
    help: 'TLS certificate loads (start-up, SIGHUP, file change), by outcome; a failed reload keeps the certificate in use',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const validTo = new Gauge({
    name: `${prefix}tls_certificate_not_after_seconds`,
    help: 'End of validity (Unix time) of the TLS certificate being served; 0 without TLS',
    registers: [registry],
  });
  return (outcome, validToMs) => {
    loads.labels(outcome).inc();
    validTo.set(Math.floor(validToMs / 1000));
  };
}

/** Times an operation into `observe`, failures included. */
export async function timed<T>(observe: LatencySink, op: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await op();
  } finally {
    observe((performance.now() - t0) / 1000);
  }
}
