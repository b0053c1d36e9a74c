/**
 * HTTP POST for the load generator, always over keep-alive connections: `node:http` with a keep-alive
 * Agent (the default: lighter per request, see README), or the global fetch (undici inside Node).
 */
import http from 'node:http';
import type { WireResponse } from './shared/wire.js';

export type Send = (path: string, body: string) => Promise<WireResponse>;

export interface Transport {
  readonly name: string;
  send: Send;
  close(): void;
}

export function httpTransport(baseUrl: string, sockets: number, timeoutMs: number): Transport {
  const u = new URL(baseUrl);
  if (u.protocol !== 'http:') throw new Error(`--http node supports http: URLs only (got ${u.protocol}); use --http fetch for https`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets, scheduling: 'fifo' });
  const base = u.pathname.replace(/\/+$/, '');
  const send: Send = (path, body) =>
    new Promise((resolve) => {
      const req = http.request(
        {
          agent,
          host: u.hostname,
          port: u.port || 80,
          method: 'POST',
          path: base + path,
          headers: { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) },
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const detail = res.headers['x-error-details'];
            resolve({
              status: res.statusCode ?? 0,
              body: chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'),
              detail: typeof detail === 'string' ? detail : undefined,
            });
          });
          res.on('error', (e) => resolve({ status: 0, body: '', detail: e.message }));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
      req.on('error', (e) => resolve({ status: 0, body: '', detail: e.message }));
      req.end(body);
    });
  return { name: 'node:http keep-alive', send, close: () => agent.destroy() };
}

export function fetchTransport(baseUrl: string, timeoutMs: number): Transport {
  const base = baseUrl.replace(/\/+$/, '');
  const send: Send = async (path, body) => {
    try {
      const r = await fetch(base + path, {
        method: 'POST',
        body,
        headers: { 'content-type': 'text/plain' },
        signal: AbortSignal.timeout(timeoutMs),
      });
      return { status: r.status, body: await r.text(), detail: r.headers.get('x-error-details') ?? undefined };
    } catch (e) {
      return { status: 0, body: '', detail: e instanceof Error ? e.message : String(e) };
    }
  };
  return { name: 'fetch (undici) keep-alive', send, close: () => undefined };
}
