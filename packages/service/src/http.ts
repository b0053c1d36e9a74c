/**
 * The services' HTTP plumbing on Node's http (docs/PROTOCOL.md §2.4): the response writers, with the
 * headers and error table of @zax/protocol, and a body reader that refuses an oversized body before
 * buffering it. Structural types, so node:http's request and response fit and tests can pass their own.
 */
import { COMMON_HEADERS, ERRORS, PREFLIGHT_HEADERS, RelayError, TEXT_CONTENT_TYPE, type ErrorCode } from '@zax/protocol';

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

/** A readable byte stream as `readStream` uses it (node:http requests, undici bodies). */
export interface ByteSource {
  on(event: 'data', cb: (chunk: Buffer) => void): unknown;
  on(event: 'end' | 'close' | 'aborted', cb: () => void): unknown;
  on(event: 'error', cb: (err: Error) => void): unknown;
  off(event: 'data', cb: (chunk: Buffer) => void): unknown;
}

/** What `readBody` needs of a request (node:http IncomingMessage fits). */
export interface BodySource extends ByteSource {
  readonly headers: Record<string, string | string[] | undefined>;
  resume(): unknown;
}

export interface ReadStreamOptions {
  /** Called with each chunk's size before it is kept; an Error refuses the stream. */
  readonly chunk?: (bytes: number) => Error | null;
  /** The refusal once more than `maxBytes` arrive. @default RelayError('tooLarge') (413) */
  readonly tooLarge?: () => Error;
  /** The refusal when the stream errs or closes before its end. @default Error('stream broke off') */
  readonly broken?: () => Error;
  /** Receives a function that ends the read at once with an error (a deadline, a rate watch). */
  readonly stopper?: (stop: (err: Error) => void) => void;
  /** Called once, when the read settles either way. */
  readonly settled?: () => void;
}

/**
 * The one reader of a byte stream into memory, for request bodies and the core's answers alike:
 * never buffers past `maxBytes`, drops what it holds the moment it refuses, and settles once.
 */
export function readStream(src: ByteSource, maxBytes: number, opts: ReadStreamOptions = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err: Error | null): void => {
      if (done) return;
      done = true;
      src.off('data', onData);
      opts.settled?.();
      if (err === null) return resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
      chunks.length = 0;
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      if (done) return;
      size += chunk.length;
      if (size > maxBytes) return finish(opts.tooLarge?.() ?? new RelayError('tooLarge', `body above ${maxBytes}`));
      const refused = opts.chunk?.(chunk.length) ?? null;
      if (refused !== null) return finish(refused);
      chunks.push(chunk);
    };
    // Built only when it is the outcome: 'close' follows every stream, and an Error's stack costs.
    const broke = (): void => {
      if (!done) finish(opts.broken?.() ?? new Error('stream broke off'));
    };
    opts.stopper?.(finish);
    src.on('data', onData);
    src.on('end', () => finish(null));
    src.on('error', broke);
    src.on('aborted', broke);
    // A socket that closes before the end (node:http ≥ 16 emits 'close' then, not always 'aborted').
    src.on('close', broke);
  });
}

/**
 * Reads a whole request body as bytes, refusing (RelayError 'tooLarge', 413) as soon as a declared
 * Content-Length or the bytes received pass `maxBytes`, so an oversized body is never buffered.
 * Works for Content-Length and chunked bodies alike.
 */
export function readBody(req: BodySource, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.resume();
    return Promise.reject(new RelayError('tooLarge', `content-length ${declared} > ${maxBytes}`));
  }
  return readStream(req, maxBytes, { broken: () => new Error('request aborted') });
}
