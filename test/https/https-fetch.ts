/**
 * A `fetch` for @zax/client that trusts a test CA: node:https with `ca`, on a keep-alive agent, and
 * a record of what each TLS connection negotiated (so tests can assert TLS was really used).
 * The global fetch trusts extra CAs only through NODE_EXTRA_CA_CERTS set before the process starts.
 */
import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { FetchLike } from '@zax/client';

export interface SeenResponse {
  url: string;
  status: number;
  /** TLS version of the connection, e.g. TLSv1.3. */
  protocol: string | null;
  /** The server's certificate verified against the CA. */
  authorized: boolean;
  hsts: string | null;
}

export interface CaFetch {
  fetch: FetchLike;
  seen: SeenResponse[];
  close(): void;
}

const NULL_BODY = new Set([101, 204, 205, 304]);

export interface NodeFetchOptions {
  /** CA trusted for https URLs. */
  ca?: string | Buffer;
  /** Source address of every connection (a non-loopback peer). */
  localAddress?: string;
  /** Added to every request (e.g. what a proxy would write). */
  headers?: Record<string, string>;
}

/** A fetch for @zax/client over node:http/node:https on keep-alive agents. */
export function nodeFetch(opts: NodeFetchOptions = {}): CaFetch {
  const agents = {
    'https:': new https.Agent({ keepAlive: true, ...(opts.ca !== undefined ? { ca: opts.ca } : {}) }),
    'http:': new http.Agent({ keepAlive: true }),
  };
  const seen: SeenResponse[] = [];
  const fetch: FetchLike = (url, init) =>
    new Promise<Response>((resolve, reject) => {
      const headers: Record<string, string> = {};
      new Headers(init.headers).forEach((v, k) => (headers[k] = v));
      Object.assign(headers, opts.headers);
      const body = init.body === undefined || init.body === null ? undefined : typeof init.body === 'string' ? init.body : Buffer.from(init.body as Uint8Array);
      const secure = new URL(url).protocol === 'https:';
      const request = secure ? https.request : http.request;
      const options: https.RequestOptions = {
        method: init.method ?? 'GET',
        headers,
        agent: agents[secure ? 'https:' : 'http:'],
        ...(init.signal ? { signal: init.signal } : {}),
        ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}),
      };
      const req = request(url, options, (res) => {
        const socket = res.socket as TLSSocket;
        const protocol = secure ? (socket.getProtocol?.() ?? null) : null;
        const authorized = secure && socket.authorized === true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const out = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out.set(k, Array.isArray(v) ? v.join(', ') : v);
          seen.push({ url, status, protocol, authorized, hsts: out.get('strict-transport-security') });
          resolve(new Response(NULL_BODY.has(status) ? null : Buffer.concat(chunks), { status, headers: out }));
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  return {
    fetch,
    seen,
    close: () => {
      agents['https:'].destroy();
      agents['http:'].destroy();
    },
  };
}

/** A fetch that trusts the test CA. */
export const caFetch = (ca: string | Buffer): CaFetch => nodeFetch({ ca });

export interface RawReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface RawRequest {
  /** `http:` or `https:` URL. */
  url: string;
  method?: string;
  body?: string;
  headers?: Record<string, string>;
  /** Source address of the connection (another local address: a non-loopback peer). */
  localAddress?: string;
  /** CA for https. */
  ca?: string | Buffer;
}

/** One request on a fresh connection. */
export function rawRequest(opts: RawRequest): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const u = new URL(opts.url);
    const body = Buffer.from(opts.body ?? '', 'utf8');
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(
      {
        host: u.hostname,
        port: u.port,
        path: `${u.pathname}${u.search}`,
        method: opts.method ?? 'POST',
        headers: { 'content-type': 'text/plain', 'content-length': body.length, ...opts.headers },
        agent: false,
        ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}),
        ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
