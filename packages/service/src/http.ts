/**
 * The services' HTTP plumbing on Node's http (docs/PROTOCOL.md §2.4): the response writers, with the
 * headers and error table of @zax/protocol, and a body reader that refuses an oversized body before
 * buffering it. Structural types, so node:http's request and response fit and tests can pass their own.
 */
import { COMMON_HEADERS, ERRORS, PREFLIGHT_HEADERS, TEXT_CONTENT_TYPE, type ErrorCode } from '@zax/protocol';

/** The minimal response surface both services write to (node:http ServerResponse fits). */
export interface ResponseSink {
  headersSent: boolean;
  writeHead(status: number, headers: Record<string, string | number>): unknown;
  end(body?: string | Uint8Array): unknown;
}

export function sendOk(res: ResponseSink, body: string | Uint8Array): void {
  res.writeHead(200, {
    ...COMMON_HEADERS,
    'content-type': TEXT_CONTENT_TYPE,
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

export function sendPreflight(res: ResponseSink): void {
  res.writeHead(204, PREFLIGHT_HEADERS);
  res.end();
}

/**
 * An error response: empty body, the code's status and texts, `Retry-After` where it carries one,
 * and the refusal's own headers (`extra`).
 */
export function sendError(res: ResponseSink, code: ErrorCode, retryAfterSec: number, extra?: Readonly<Record<string, string>>): void {
  const spec = ERRORS[code];
  const headers: Record<string, string | number> = {
    ...COMMON_HEADERS,
    'content-type': TEXT_CONTENT_TYPE,
    'content-length': 0,
  };
  if (spec.details !== null) headers['x-error-details'] = spec.details;
  if (spec.retry) headers['retry-after'] = String(Math.max(1, Math.ceil(retryAfterSec)));
  if (extra !== undefined) Object.assign(headers, extra);
  res.writeHead(spec.status, headers);
  res.end();
}

/** What `readBody` needs of a request stream (node:http IncomingMessage fits). */
export interface BodySource {
  headers: Record<string, string | string[] | undefined>;
  on(event: 'data', cb: (chunk: Buffer) => void): unknown;
  on(event: 'end', cb: () => void): unknown;
  on(event: 'error', cb: (err: Error) => void): unknown;
  on(event: 'aborted', cb: () => void): unknown;
  resume(): unknown;
}

export class BodyTooLargeError extends Error {
  override readonly name = 'BodyTooLargeError';
}

/**
 * Reads a whole request body as bytes, refusing (BodyTooLargeError) as soon as a declared
 * Content-Length or the bytes received pass `maxBytes`, so an oversized body is never buffered.
 * Works for Content-Length and chunked bodies alike.
 */
export function readBody(req: BodySource, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      req.resume();
      reject(new BodyTooLargeError(`content-length ${declared} > ${maxBytes}`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > maxBytes) {
        done = true;
        chunks.length = 0;
        reject(new BodyTooLargeError(`body above ${maxBytes}`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    const fail = (err: Error): void => {
      if (done) return;
      done = true;
      reject(err);
    };
    req.on('error', fail);
    req.on('aborted', () => fail(new Error('request aborted')));
  });
}
