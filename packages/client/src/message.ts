/**
 * The end-to-end message format, as glow.ts 1.1.x writes and reads it, so that both clients can
 * exchange messages through a relay.
 *
 * - A text message to a guest is the upload payload `{"nonce": b64(n), "ctext": b64(c)}` with
 *   `c = crypto_box(UTF-8(text), n, guest_comm_pk, own_comm_sk)` and `n` a timestamped nonce
 *   (8-byte big-endian seconds ‖ 16 random bytes). The plaintext is the text itself: no JSON.
 *   The relay keeps `n` as the message nonce and `c` as `data`.
 * - A plain (unencrypted) message is the upload payload string itself; the relay makes its nonce.
 * - Reading: for a sender in the keyring, `crypto_box_open(b64dec(data), b64dec(nonce),
 *   sender_comm_pk, own_comm_sk)`; glow.ts shows `data` unchanged when that fails (a plain message).
 * - A `file` message's `data` is the JSON string `{"ctext","nonce","uploadID"}`; `ctext` opens the
 *   same way under its own `nonce` to the file metadata JSON.
 */
import { b64, decodeFixed, decodeStrict, NONCE_BYTES, type Crypto } from '@zax/protocol';

/** The upload payload of an encrypted message. */
export interface EncryptedPayload {
  nonce: string;
  ctext: string;
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Encrypts `text` from `senderSecretKey` to `recipientPublicKey` under `nonce` (24 bytes). */
export function sealText(crypto: Crypto, text: string, nonce: Uint8Array, recipientPublicKey: Uint8Array, senderSecretKey: Uint8Array): EncryptedPayload {
  // TextEncoder turns a lone surrogate into U+FFFD; glow.ts would throw on it instead, and would
  // also throw reading invalid UTF-8, so only well-formed UTF-8 ever goes on the wire.
  const ctext = crypto.box(new TextEncoder().encode(text), nonce, recipientPublicKey, senderSecretKey);
  return { nonce: b64(nonce), ctext: b64(ctext) };
}

/**
 * Opens a message from `senderPublicKey`. Returns null when the nonce or ciphertext is not strict
 * base64 of the right size, the box does not open, or the plaintext is not UTF-8.
 */
export function openText(crypto: Crypto, ctext: string, nonce: string, senderPublicKey: Uint8Array, recipientSecretKey: Uint8Array): string | null {
  const n = decodeFixed(nonce, NONCE_BYTES);
  const c = decodeStrict(ctext);
  if (n === null || c === null) return null;
  const plain = crypto.boxOpen(c, n, senderPublicKey, recipientSecretKey);
  if (plain === null) return null;
  try {
    return utf8Strict.decode(plain);
  } catch {
    return null;
  }
}

/** The `data` of a `file` message (docs/PROTOCOL.md §5.7), or null when it is not that JSON. */
export function parseFileData(data: string): { ctext: string; nonce: string; uploadID: string } | null {
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (typeof o.ctext !== 'string' || typeof o.nonce !== 'string' || typeof o.uploadID !== 'string') return null;
  return { ctext: o.ctext, nonce: o.nonce, uploadID: o.uploadID };
}
