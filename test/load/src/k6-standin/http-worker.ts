/**
 * The stand-in's HTTP thread: performs one fetch per message and hands the response back to the
 * blocked main thread through a SharedArrayBuffer (k6's http.post is synchronous).
 */
import { parentPort, workerData } from 'node:worker_threads';

interface Job {
  method: string;
  url: string;
  body: string | null;
  headers: Record<string, string>;
  timeoutMs: number;
}

const { ctrl, data } = workerData as { ctrl: SharedArrayBuffer; data: SharedArrayBuffer };
const flag = new Int32Array(ctrl);
const bytes = new Uint8Array(data);
const encoder = new TextEncoder();

function reply(payload: object): void {
  let encoded = encoder.encode(JSON.stringify(payload));
  if (encoded.length > bytes.length) encoded = encoder.encode(JSON.stringify({ status: 0, headers: {}, body: '', error: `response larger than ${bytes.length} bytes` }));
  bytes.set(encoded);
  Atomics.store(flag, 1, encoded.length);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}

parentPort!.on('message', (job: Job) => {
  fetch(job.url, {
    method: job.method,
    headers: job.headers,
    ...(job.body !== null ? { body: job.body } : {}),
    redirect: 'manual',
    signal: AbortSignal.timeout(job.timeoutMs),
  })
    .then(async (r) => {
      const headers: Record<string, string> = {};
      r.headers.forEach((v, k) => {
        // k6 (Go) canonicalises header names: x-error-details → X-Error-Details.
        headers[k.replace(/(^|-)([a-z])/g, (_m, sep: string, c: string) => sep + c.toUpperCase())] = v;
      });
      reply({ status: r.status, headers, body: await r.text(), error: '' });
    })
    .catch((e: unknown) => reply({ status: 0, headers: {}, body: '', error: e instanceof Error ? e.message : String(e) }));
});
