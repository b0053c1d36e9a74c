/**
 * Time-dependent conformance items through both tiers, gatekeeper and core on real HTTP and real
 * Redis, reading one injected clock (test/support/stack.ts): §8.37 (handshake lifetime is not
 * extended), §8.46 (prove after tokenTtlSec), §8.59 (session lifetime from /prove, not extended by
 * use), §8.85 (message lifetime). Time moves by hand, so every lifetime is checked at its edge: the
 * last millisecond it holds and the first it does not. Request nonces carry the same clock's time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { post } from '../support/relay.js';
import * as raw from '../support/raw.js';
import { startStack, type Stack } from '../support/stack.js';

const TOKEN_TTL_SEC = 2;
const SESSION_TTL_SEC = 3;
const MESSAGE_TTL_SEC = 2;

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    redisUrl: inject('redisUrl'),
    env: { TOKEN_TTL_SEC: String(TOKEN_TTL_SEC), SESSION_TTL_SEC: String(SESSION_TTL_SEC), MESSAGE_TTL_SEC: String(MESSAGE_TTL_SEC) },
  });
});
afterAll(async () => stack?.close());

const nonces = (): raw.ProveParts => ({ outerNonce: stack.clock.nonce(), innerNonce: stack.clock.nonce() });
const command = (s: raw.Session, cmd: unknown): Promise<raw.CommandResult> => raw.command(s, cmd, { nonce: stack.clock.nonce() });

/** start → verify → prove at the stack's time. */
async function connect(): Promise<raw.Session> {
  const id = raw.newIdentity();
  const hs = await raw.verifySession(stack.url, await raw.startSession(stack.url));
  const { body, session } = raw.proveBody(hs, id, nonces());
  const r = await post(`${stack.url}/prove`, body);
  if (r.status !== 200) throw new Error(`prove ${r.status}`);
  return raw.sessionOf(stack.url, id, hs, session);
}

describe('lifetimes', () => {
  it('§8.37 §8.46 a handshake expires tokenTtlSec after the first start_session, however often repeated', async () => {
    // Two handshakes started together: one repeated at 1.2 s (which must not extend it), the other
    // proven in the last millisecond of its lifetime.
    const hs = await raw.startSession(stack.url);
    const other = await raw.startSession(stack.url);
    stack.clock.advanceMs(1200);
    const again = await raw.startSession(stack.url, hs.clientToken);
    expect(again.relayToken.equals(hs.relayToken)).toBe(true);
    const verified = await raw.verifySession(stack.url, hs);
    const otherVerified = await raw.verifySession(stack.url, other);

    stack.clock.advanceMs(TOKEN_TTL_SEC * 1000 - 1200 - 1); // 1 ms left
    expect((await post(`${stack.url}/prove`, raw.proveBody(otherVerified, raw.newIdentity(), nonces()).body)).status).toBe(200);

    stack.clock.advanceMs(1); // exactly tokenTtlSec after the first start_session
    expect((await post(`${stack.url}/verify_session`, raw.verifyBody(hs))).status).toBe(401);
    expect((await post(`${stack.url}/prove`, raw.proveBody(verified, raw.newIdentity(), nonces()).body)).status).toBe(401);
    // and the same client token now starts a new handshake
    expect((await raw.startSession(stack.url, hs.clientToken)).relayToken.equals(hs.relayToken)).toBe(false);
  });

  it('§8.59 a session ends sessionTtlSec after /prove even if used in between', async () => {
    const s = await connect();
    stack.clock.advanceMs(1500);
    expect((await command(s, { cmd: 'count' })).status).toBe(200);
    stack.clock.advanceMs(SESSION_TTL_SEC * 1000 - 1500 - 1);
    expect((await command(s, { cmd: 'count' })).status).toBe(200);
    stack.clock.advanceMs(1);
    expect((await command(s, { cmd: 'count' })).status).toBe(401);
  });

  it('§8.85 a message is gone after messageTtlSec: not counted, downloaded or reported', async () => {
    const a = await connect();
    const up = await command(a, { cmd: 'upload', to: a.id.hpk, payload: 'short-lived' });
    expect(up.status).toBe(200);
    expect((await command(a, { cmd: 'count' })).plain).toBe('1');
    expect((await command(a, { cmd: 'messageStatus', token: up.text })).text).toBe(String(MESSAGE_TTL_SEC));
    stack.clock.advanceMs(MESSAGE_TTL_SEC * 1000 - 1);
    expect((await command(a, { cmd: 'count' })).plain).toBe('1');
    expect((await command(a, { cmd: 'messageStatus', token: up.text })).text).toBe('1');
    stack.clock.advanceMs(1);
    expect((await command(a, { cmd: 'count' })).plain).toBe('0');
    expect((await command(a, { cmd: 'download' })).plain).toBe('[]');
    expect((await command(a, { cmd: 'messageStatus', token: up.text })).text).toBe('-2');
  });
});
