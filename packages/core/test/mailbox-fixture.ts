/** Shared fixture for the mailbox store tests: message builder and defaults. */
import { storageToken, type NewMessage, type Quotas } from '../src/store/index.js';
import { randomHpk, randomNonceB64 } from './helpers.js';

export const NOW = 1_700_000_000_000;
export const TTL_MS = 432_000_000;
export const QUOTAS: Quotas = { mailboxQuota: 10_000, mailboxQuotaBytes: 33_554_432 };

export function message(to: string, over: Partial<NewMessage> = {}): NewMessage {
  const data = over.data ?? `msg-${Math.random().toString(36).slice(2)}`;
  const m: Omit<NewMessage, 'storageToken'> & Partial<NewMessage> = {
    to,
    from: randomHpk(),
    nonce: randomNonceB64(),
    data,
    dataBytes: Buffer.byteLength(data, 'utf8'),
    kind: 'message',
    nowMs: NOW,
    expiresAtMs: NOW + TTL_MS,
    ...over,
  };
  return { storageToken: storageToken(m.to, m.nonce), ...m };
}

export const parseItems = (items: string[]): Array<{ data: string; time: number; from: string; nonce: string; kind: string }> =>
  items.map((i) => JSON.parse(i));
