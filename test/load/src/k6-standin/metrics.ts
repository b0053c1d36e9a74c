/** Stand-in for `k6/metrics`: Counter, Gauge, Rate, Trend recording into the shared sinks. */
import { record, sink, type MetricType } from './state.js';

abstract class Metric {
  protected abstract readonly type: MetricType;
  constructor(readonly name: string) {}
  protected init(): void {
    if (!/^[a-zA-Z_][a-zA-Z0-9_]{0,127}$/.test(this.name)) throw new Error(`invalid metric name ${this.name}`);
    sink(this.name, this.type);
  }
  add(value: number | boolean, tags: Record<string, string> = {}): void {
    record(this.name, this.type, typeof value === 'boolean' ? (value ? 1 : 0) : value, tags);
  }
}

export class Counter extends Metric {
  protected readonly type = 'counter';
  constructor(name: string) {
    super(name);
    this.init();
  }
}
export class Gauge extends Metric {
  protected readonly type = 'gauge';
  constructor(name: string) {
    super(name);
    this.init();
  }
}
export class Rate extends Metric {
  protected readonly type = 'rate';
  constructor(name: string) {
    super(name);
    this.init();
  }
}
export class Trend extends Metric {
  protected readonly type = 'trend';
  constructor(name: string, _isTime?: boolean) {
    super(name);
    this.init();
  }
}
