/** The core's stores, built once per app over one Redis connection and key prefix. */
import type { Durability } from '@zax/service';
import type { CoreRedis } from '../redis.js';
import type { Keys } from '../keys.js';
import { createFileStore, type FileStore } from './files.js';
import { createHandshakeStore, type HandshakeStore } from './handshake-secrets.js';
import { createMailboxStore, type MailboxStore } from './mailbox.js';
import { createNonceStore, type NonceStore } from './nonces.js';
import { NO_OBSERVER, type StoreObserver } from './observer.js';
import { createSessionStore, type SessionStore } from './sessions.js';

export interface Stores {
  readonly handshakes: HandshakeStore;
  readonly sessions: SessionStore;
  readonly nonces: NonceStore;
  readonly mailboxes: MailboxStore;
  readonly files: FileStore;
}

/**
 * `observer` gets every Redis round trip's duration and the messages and file bytes that come and go.
 * `durable`: uploads, chunks and deletes wait for its replicas (REDIS_WAIT_REPLICAS).
 */
export function createStores(
  redis: CoreRedis,
  keys: Keys,
  opts: { nonceCacheSec: number },
  observer: StoreObserver = NO_OBSERVER,
  durable?: Durability<CoreRedis>,
): Stores {
  return {
    handshakes: createHandshakeStore(redis, keys, observer),
    sessions: createSessionStore(redis, keys, opts.nonceCacheSec, observer),
    nonces: createNonceStore(redis, keys, opts.nonceCacheSec, observer),
    mailboxes: createMailboxStore(redis, keys, observer, durable),
    files: createFileStore(redis, keys, observer, durable),
  };
}

export { StoreUnavailableError, isStoreUnavailable, storeCall } from '@zax/service';
export { NO_OBSERVER, type StoreObserver, type MessageChange, type FileChange } from './observer.js';
export { storageToken, renderItem } from './mailbox.js';
export type { HandshakeSecrets, MintInput, MintResult } from './handshake-secrets.js';
export type { Session } from './sessions.js';
export { createFileStore } from './files.js';
export type { FileStore, FileState, FileStatusName, NewFile, NewChunk, ChunkOutcome, ChunkRead, ReapResult } from './files.js';
export type { NewMessage, Quotas, UploadOutcome, DownloadQuery, MessageKind } from './mailbox.js';
