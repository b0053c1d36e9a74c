/**
 * Shared state of the k6 stand-in: the metric samples every stand-in module records (as k6 would),
 * the execution context (VU, iteration), and the abort signal of `exec.test.abort()`.
 */

export type MetricType = 'counter' | 'gauge' | 'rate' | 'trend';

export interface Sample {
  value: number;
  tags: Record<string, string>;
}

export interface MetricSink {
  name: string;
  type: MetricType;
  samples: Sample[];
}

export const metrics = new Map<string, MetricSink>();

export function sink(name: string, type: MetricType): MetricSink {
  let m = metrics.get(name);
  if (m === undefined) {
    m = { name, type, samples: [] };
    metrics.set(name, m);
  } else if (m.type !== type) {
    throw new Error(`metric ${name} declared as ${m.type} and as ${type}`);
  }
  return m;
}

export function record(name: string, type: MetricType, value: number, tags: Record<string, string> = {}): void {
  sink(name, type).samples.push({ value, tags });
}

export const context = { vu: 0, iteration: 0, iterationInTest: 0, initContext: true };

/** Thrown by `exec.test.abort()`; the runner stops the test and fails it. */
export class TestAbort extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'TestAbort';
  }
}

export function resetState(): void {
  metrics.clear();
  context.vu = 0;
  context.iteration = 0;
  context.iterationInTest = 0;
  context.initContext = true;
}
