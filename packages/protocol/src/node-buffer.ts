/**
 * Node's Buffer, where the runtime has one (Node), else undefined (browsers, k6). Its native base64
 * and UTF-8 codecs run many times faster than the portable JavaScript ones, which matters on the
 * services' hot path (a 512000-byte file chunk is decoded and checked per request); elsewhere the
 * portable codecs run. Found on globalThis, never imported, so this package loads without Node.
 */

/** The few Buffer functions the codecs call. */
export interface NodeBufferApi {
  from(s: string, encoding: 'base64' | 'utf8'): Uint8Array & { toString(encoding: 'base64'): string };
  from(buffer: ArrayBufferLike, byteOffset: number, length: number): Uint8Array & { toString(encoding: 'base64'): string };
  byteLength(s: string, encoding: 'utf8'): number;
}

export const nodeBuffer = (globalThis as { Buffer?: NodeBufferApi }).Buffer;
