/**
 * Stand-in for `k6/http`: synchronous requests like k6's, done by a worker thread while this thread
 * waits on Atomics. Records http_reqs, http_req_duration and http_req_failed with the request tags.
 */
import { Worker } from 'node:worker_threads';
import { context, record } from './state.js';

interface Params {
  headers?: Record<string, string>;
  tags?: Record<string, string>;
  timeout?: string | number;
  responseType?: 'text' | 'binary' | 'none';
}

export interface StandInResponse {
  status: number;
  body: string | null;
  headers: Record<string, string>;
  error: string;
  error_code: number;
  url: string;
  timings: { duration: number };
}

const ctrlBuf = new SharedArrayBuffer(8);
const dataBuf = new SharedArrayBuffer(64 * 1024 * 1024);
const flag = new Int32Array(ctrlBuf);
const bytes = new Uint8Array(dataBuf);
const decoder = new TextDecoder();
let worker: Worker | null = null;

function ensureWorker(): Worker {
  if (worker === null) {
    worker = new Worker(new URL('./http-worker.js', import.meta.url), { workerData: { ctrl: ctrlBuf, data: dataBuf } });
    worker.unref();
  }
  return worker;
}

/** Stops the HTTP thread (the runner calls it at the end). */
export async function shutdown(): Promise<void> {
  const w = worker;
  worker = null;
  if (w !== null) await w.terminate();
}

function durationMs(t: string | number | undefined): number {
  if (t === undefined) return 60_000;
  if (typeof t === 'number') return t;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(t);
  if (m === null) throw new Error(`bad timeout ${t}`);
  return Number(m[1]) * (m[2] === 'm' ? 60_000 : m[2] === 'ms' ? 1 : 1000);
}

export function request(method: string, url: string, body?: string | null, params: Params = {}): StandInResponse {
  if (context.initContext) throw new Error('http requests are not allowed in the init context');
  if (body !== undefined && body !== null && typeof body !== 'string') throw new Error('stand-in supports string bodies only');
  const timeoutMs = durationMs(params.timeout);
  Atomics.store(flag, 0, 0);
  const t0 = performance.now();
  ensureWorker().postMessage({ method, url, body: body ?? null, headers: params.headers ?? {}, timeoutMs });
  const waited = Atomics.wait(flag, 0, 0, timeoutMs + 5000);
  const duration = performance.now() - t0;
  let res: { status: number; headers: Record<string, string>; body: string; error: string };
  if (waited === 'timed-out') res = { status: 0, headers: {}, body: '', error: 'request timeout' };
  else res = JSON.parse(decoder.decode(bytes.slice(0, Atomics.load(flag, 1)))) as typeof res;
  const tags = { method, status: String(res.status), url, name: url, ...params.tags };
  record('http_reqs', 'counter', 1, tags);
  record('http_req_duration', 'trend', duration, tags);
  record('http_req_failed', 'rate', res.status >= 200 && res.status < 400 ? 0 : 1, tags);
  return {
    status: res.status,
    body: params.responseType === 'none' ? null : res.body,
    headers: res.headers,
    error: res.error,
    error_code: res.status === 0 ? 1000 : 0,
    url,
    timings: { duration },
  };
}

export function post(url: string, body?: string | null, params?: Params): StandInResponse {
  return request('POST', url, body, params);
}

export function get(url: string, params?: Params): StandInResponse {
  return request('GET', url, null, params);
}

export default { request, post, get };
