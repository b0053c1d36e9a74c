/**
 * Wire constants of the Zax relay protocol (docs/PROTOCOL.md): field sizes, fixed texts, paths and the
 * configuration defaults of §7. Everything here is a number or a string the wire depends on.
 */

/** Raw byte sizes of fixed-size fields (docs/PROTOCOL.md §2.3). */
export const TOKEN_BYTES = 32;
export const KEY_BYTES = 32;
export const HASH_BYTES = 32;
export const NONCE_BYTES = 24;

/** Base64 lengths of fixed-size fields. */
export const B64_32_CHARS = 44;
export const B64_NONCE_CHARS = 32;
/** `/prove` line 4: the 176-byte inner JSON boxed = 192 bytes. */
export const PROVE_OUTER_CHARS = 256;

/** Fixed `X-Error-Details` texts (docs/PROTOCOL.md §6.2). */
export const TEXT_F = 'Request BODY does not match this request specification';
export const TEXT_G = 'Your request can not be completed.';
export const TEXT_I = 'Something is wrong with this relay. Try again later.';
export const TEXT_TOO_LARGE = 'Request is too large.';
export const TEXT_TOO_MANY = 'Too many requests. Try again later.';
export const TEXT_MAILBOX_FULL = 'Mailbox is full.';
export const TEXT_BUSY = 'Relay is busy. Try again later.';

/** The four API paths (docs/PROTOCOL.md §2.1). */
export const API_PATHS = ['/start_session', '/verify_session', '/prove', '/command'] as const;
export type ApiPath = (typeof API_PATHS)[number];

/** Most items one `download` returns, and most entries in a `delete` payload or a `from` filter. */
export const MAX_DOWNLOAD_COUNT = 100;
export const MAX_DELETE_ENTRIES = 100;
export const MAX_FROM_ENTRIES = 100;

/** Configuration defaults (docs/PROTOCOL.md §7). Units are in the names. */
export const DEFAULTS = {
  tokenTtlSec: 300,
  sessionTtlSec: 1200,
  nonceWindowSec: 60,
  nonceCacheSec: 600,
  difficulty: 0,
  difficultyGraceSec: 65,
  messageTtlSec: 432000,
  fileTtlSec: 604800,
  maxMessageBytes: 262144,
  mailboxQuota: 10000,
  mailboxQuotaBytes: 33554432,
  mailboxFullRetryAfterSec: 3600,
  fileStoreEnabled: true,
  maxChunkSize: 512000,
  maxFileSize: 1073741823,
  maxFileBytesTotal: 1073741824,
  storeHighWaterRatio: 0.9,
  maxCommandBodyBytes: 1048576,
  maxHandshakeBodyBytes: 4096,
  busyRetryAfterSec: 5,
} as const;

/** Largest difficulty a relay may announce (DEVIATION D10). */
export const MAX_DIFFICULTY = 255;
