/**
 * The k6 side of the load tests: runs the shared scenarios (../../src/shared/wire.ts, the same code
 * the node generator runs) with k6's synchronous `http.post` and @zax/protocol's pure tweetnacl
 * backend and h2, and reports every validated or failed response as k6 metrics and checks.
 *
 * Environment (k6 -e NAME=value, or the shell environment):
 *   RELAY_URL       relay base URL                             (default http://127.0.0.1:8080)
 *   VUS             virtual users = devices                    (default 8)
 *   DURATION        test duration                              (default 30s)
 *   ITERATIONS      total iterations instead of a duration     (optional)
 *   P99_MS          per-step p99 latency threshold, ms         (default 500)
 *   MAX_ERROR_RATE  tolerated share of invalid responses       (default 0)
 *   PAYLOAD_BYTES   message data length                        (default 1024)
 *   FILE_SIZE, CHUNK_SIZE  files: bytes per file / per chunk   (default 1048576 / 262144)
 *   TIMEOUT         per-request timeout                        (default 10s)
 */
import { check } from 'k6';
import exec from 'k6/execution';
import { randomBytes } from 'k6/crypto';
import http from 'k6/http';
import { Counter, Rate, Trend } from 'k6/metrics';
import type { Options } from 'k6/options';
import { portablePlatform } from '../../src/shared/portable.js';
import { THROTTLED, THROTTLED_HINT } from '../../src/shared/throttle.js';
import { CheckFailure, DEFAULT_OPTIONS, newDevice, resetDevice, SCENARIOS, type Device, type ScenarioName, type WireResponse } from '../../src/shared/wire.js';

/** k6 has a console; @types/k6 does not declare it (and the script must not pull in DOM types). */
declare const console: { warn(...args: unknown[]): void };

function env(name: string, fallback: string): string {
  const v = __ENV[name];
  return v === undefined || v === '' ? fallback : v;
}

function num(name: string, fallback: number): number {
  const v = Number(env(name, String(fallback)));
  if (!Number.isFinite(v) || v < 0) throw new Error(`${name} must be a non-negative number`);
  return v;
}

export const RELAY_URL = env('RELAY_URL', 'http://127.0.0.1:8080').replace(/\/+$/, '');

/** k6 options for a scenario: VUs, duration or iterations, and thresholds, all from the environment. */
export function scenarioOptions(name: ScenarioName): Options {
  const p99 = num('P99_MS', 500);
  const maxErrorRate = num('MAX_ERROR_RATE', 0);
  const thresholds: Record<string, string[]> = {
    // Every response must validate (status, lines, sizes, decrypted contents).
    zax_valid: [maxErrorRate > 0 ? `rate>=${1 - maxErrorRate}` : 'rate==1'],
    // Work was actually done.
    zax_ops: ['count>0'],
    http_req_failed: [`rate<=${maxErrorRate}`],
  };
  for (const step of SCENARIOS[name].stepNames) thresholds[`http_req_duration{step:${step}}`] = [`p(99)<${p99}`];
  const vus = num('VUS', 8);
  const iterations = __ENV.ITERATIONS;
  return {
    vus,
    ...(iterations !== undefined && iterations !== '' ? { iterations: Number(iterations) } : { duration: env('DURATION', '30s') }),
    thresholds,
    // The protocol is plain text; no cookies, no redirects.
    noCookiesReset: true,
    maxRedirects: 0,
    summaryTrendStats: ['avg', 'med', 'p(95)', 'p(99)', 'max', 'count'],
  };
}

const valid = new Rate('zax_valid');
const ops = new Counter('zax_ops');
const errors = new Counter('zax_errors');
const chunkBytes = new Counter('zax_chunk_bytes');
const iterationTime = new Trend('zax_iteration', true);

const platform = portablePlatform((n) => new Uint8Array(randomBytes(n)));
const timeout = env('TIMEOUT', '10s');
let device: Device | null = null;
let warned = 0;
let hinted = false;

function post(step: string, path: string, body: string): WireResponse {
  const res = http.post(`${RELAY_URL}${path}`, body, {
    headers: { 'Content-Type': 'text/plain' },
    tags: { step },
    timeout,
    responseType: 'text',
  });
  const detail = res.headers['X-Error-Details'];
  return {
    status: res.status,
    body: typeof res.body === 'string' ? res.body : '',
    detail: detail !== undefined && detail !== '' ? detail : res.error !== '' ? res.error : undefined,
  };
}

/** One iteration of the scenario for this VU's device (a handshake first when it has no session). */
export function iterate(name: ScenarioName): void {
  const scenario = SCENARIOS[name];
  if (device === null) {
    device = newDevice(platform, {
      ...DEFAULT_OPTIONS,
      payloadBytes: num('PAYLOAD_BYTES', DEFAULT_OPTIONS.payloadBytes),
      fileSize: num('FILE_SIZE', DEFAULT_OPTIONS.fileSize),
      chunkSize: num('CHUNK_SIZE', DEFAULT_OPTIONS.chunkSize),
    });
  }
  const d = device;
  const t0 = Date.now();
  for (const step of scenario.plan(d)) {
    let failure: CheckFailure | null = null;
    try {
      const req = step.request(d);
      step.check(d, post(step.name, req.path, req.body));
    } catch (e) {
      failure = e instanceof CheckFailure ? e : new CheckFailure(step.name, 0, `script error: ${String(e)}`);
    }
    const ok = failure === null;
    valid.add(ok, { step: step.name });
    check(failure, { [`${step.name} response valid`]: (f) => f === null }, { step: step.name });
    if (failure !== null) {
      errors.add(1, { step: step.name, status: String(failure.status) });
      if (warned++ < 5) console.warn(`VU ${__VU}: ${failure.message}`);
      if (failure.status === THROTTLED && !hinted) {
        hinted = true;
        console.warn(`VU ${__VU}: ${THROTTLED_HINT}`);
      }
      if (failure.fatal) exec.test.abort(failure.message);
      resetDevice(d);
      return;
    }
    if (step.op === true) ops.add(1);
    if (step.bytes !== undefined) chunkBytes.add(step.bytes, { direction: step.name.startsWith('upload') ? 'up' : 'down' });
  }
  iterationTime.add(Date.now() - t0);
}
