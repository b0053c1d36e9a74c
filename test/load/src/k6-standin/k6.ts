/** Stand-in for the `k6` module: check, fail, group, sleep. */
import { record, context } from './state.js';

export function check<T>(val: T, sets: Record<string, (v: T) => unknown>, tags: Record<string, string> = {}): boolean {
  if (context.initContext) throw new Error('check() called in the init context');
  let all = true;
  for (const [name, fn] of Object.entries(sets)) {
    let ok: boolean;
    try {
      ok = Boolean(fn(val));
    } catch {
      ok = false;
    }
    record('checks', 'rate', ok ? 1 : 0, { ...tags, check: name });
    all &&= ok;
  }
  return all;
}

export function fail(err?: string): never {
  throw new Error(err ?? 'fail() called');
}

export function group<R>(name: string, fn: () => R): R {
  void name;
  return fn();
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
export function sleep(seconds: number): void {
  Atomics.wait(sleeper, 0, 0, Math.max(0, seconds * 1000));
}

export function randomSeed(_seed: number): void {}

export default { check, fail, group, sleep, randomSeed };
