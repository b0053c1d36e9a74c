/**
 * POST /prove (docs/PROTOCOL.md §4.3): the client proves ownership of its identity key to the relay
 * session key pair minted for its handshake. On success the handshake is consumed and a session is
 * created for hpk = h2(pub_key); the identity key itself is never stored. The two store steps stay
 * separate (handshake slot, then mailbox slot) so each script touches one Redis Cluster slot.
 */
import { timingSafeEqual } from 'node:crypto';
import {
  B64_32_CHARS,
  B64_NONCE_CHARS,
  CONSUMED_HANDSHAKE_HEADER,
  KEY_BYTES,
  NONCE_BYTES,
  PROVE_OUTER_CHARS,
  RelayError,
  TOKEN_BYTES,
  b64,
  decodeFixed,
  decodeStrict,
  field,
  frame,
  h2,
  parseJsonObject,
  type Clock,
  type Crypto,
} from '@zax/protocol';
import { sendOk } from '@zax/service';
import type { Config } from './config.js';
import { short, type Logger } from '@zax/service';
import type { RouteHandler } from './routes.js';
import { checkNonce } from './nonce-check.js';
import type { Stores } from './store/index.js';

export interface ProveDeps {
  readonly config: Config;
  readonly stores: Stores;
  readonly crypto: Crypto;
  readonly clock: Clock;
  readonly log: Logger;
}

export interface ProveResult {
  /** The response body: the hpk's live message count, in decimal. */
  readonly body: string;
  /** b64 handshake id consumed, for the gatekeeper (`x-zax-consumed-handshake`). */
  readonly consumedHandshake: string;
}

const invalid = (why: string): RelayError => new RelayError('invalid', why);
const unauthorized = (why: string): RelayError => new RelayError('unauthorized', why);

export async function prove(deps: ProveDeps, body: string): Promise<ProveResult> {
  const { config, stores, crypto, clock } = deps;
  const nowMs = clock.nowMs();
  const nowSec = Math.floor(nowMs / 1000);

  // 1. Framing.
  const [hsLine, aSessLine, nonceLine, outerLine] = frame(body, [B64_32_CHARS, B64_32_CHARS, B64_NONCE_CHARS, PROVE_OUTER_CHARS]) as [
    string,
    string,
    string,
    string,
  ];
  // 2. Handshake id.
  if (decodeFixed(hsLine, TOKEN_BYTES) === null) throw invalid('handshake id: not 32 bytes');
  // 3. A live, verified handshake. Nothing is written before it is found: the nonces of a request
  // without one are not recorded (a refused request leaves no key).
  const hs = await stores.handshakes.read(hsLine, nowMs);
  if (hs === null) throw unauthorized('no live handshake');
  // 4. a_sess_pk.
  const aSessPk = decodeFixed(aSessLine, KEY_BYTES);
  if (aSessPk === null) throw invalid('a_sess_pk: not 32 bytes');
  // 5. Outer nonce.
  const outerNonce = await checkNonce(stores.nonces, nonceLine, nowSec, config.nonceWindowSec, 'outer nonce');
  // The nonces this request recorded, removed again if the proof fails: only a session that was
  // created leaves its nonces behind.
  const recorded = [nonceLine];
  // 6. Outer box (a low-order a_sess_pk does not open: 400 G).
  const rSessSk = Buffer.from(hs.relaySessionSk, 'base64');
  // The outer box's key is the session's shared key: computed once, it serves both (one scalar
  // multiplication fewer per session).
  const sharedKey = crypto.before(aSessPk, rSessSk);
  let proven = false;
  try {
    const outer = decodeStrict(outerLine);
    const innerJson = outer === null || sharedKey === null ? null : crypto.boxOpenAfter(outer, outerNonce, sharedKey);
    if (innerJson === null || sharedKey === null) throw invalid('outer box does not open');
    // 7. Inner JSON.
    const obj = parseJsonObject(innerJson);
    const pubKeyB64 = field(obj, 'pub_key');
    const innerNonceB64 = field(obj, 'nonce');
    const ctextB64 = field(obj, 'ctext');
    const pubKey = typeof pubKeyB64 === 'string' ? decodeFixed(pubKeyB64, KEY_BYTES) : null;
    if (pubKey === null) throw invalid('inner pub_key: not 32 bytes');
    if (typeof innerNonceB64 !== 'string' || decodeFixed(innerNonceB64, NONCE_BYTES) === null) throw invalid('inner nonce: not 24 bytes');
    const ctext = typeof ctextB64 === 'string' ? decodeStrict(ctextB64) : null;
    if (ctext === null) throw invalid('inner ctext: not strict base64');
    // 8. Inner nonce (equal to the outer one = a replay).
    const innerNonce = await checkNonce(stores.nonces, innerNonceB64, nowSec, config.nonceWindowSec, 'inner nonce');
    recorded.push(innerNonceB64);
    // 9. Inner box (a low-order pub_key does not open: 400 G).
    const sign = crypto.boxOpen(ctext, innerNonce, pubKey, rSessSk);
    if (sign === null) throw invalid('inner box does not open');
    // 10. Ownership proof. DEVIATION D4: a mismatch is 401 (the reference relay answers 500).
    const expected = h2(aSessPk, Buffer.from(hs.relayToken, 'base64'), Buffer.from(hs.clientToken, 'base64'));
    if (sign.length !== expected.length || !timingSafeEqual(sign, expected)) throw unauthorized('session signature mismatch');

    // Success: consume the handshake, then create the session for hpk = h2(pub_key).
    if (!(await stores.handshakes.consume(hsLine, hs.relayToken, nowMs))) throw unauthorized('handshake gone before consume');
    proven = true;
    const hpk = b64(h2(pubKey));
    // The session write and the count are independent: one round trip (auto-pipelined).
    const [, count] = await Promise.all([
      stores.sessions.set(hpk, { sharedKey, aSessPk: aSessLine, expiresAtMs: nowMs + config.sessionTtlSec * 1000 }, nowMs, [nonceLine, innerNonceB64]),
      stores.mailboxes.count(hpk, nowMs),
    ]);
    deps.log.debug({ hpk: short(hpk) }, 'session created');
    return { body: String(count), consumedHandshake: hsLine };
  } finally {
    rSessSk.fill(0);
    sharedKey?.fill(0);
    // A store failure here leaves the records to their TTL; the refusal stands either way.
    if (!proven) await stores.nonces.forget(recorded).catch(() => {});
  }
}

/**
 * POST /prove: the proof's outcome counted (a refusal as `failed`, a fault as `error`, by the status
 * the error path wrote), and the consumed handshake named for the gatekeeper.
 */
export const proveRoute: RouteHandler = async (core, req, res, body) => {
  core.meter.command(core.clock.nowMs());
  let result: ProveResult;
  try {
    // latin1: one char per byte, so line lengths are byte lengths and nothing is lost.
    result = await prove(core.prove, body.toString('latin1'));
  } catch (err) {
    core.metrics.proof(core.fail(req, res, err) >= 500 ? 'error' : 'failed');
    return;
  }
  core.metrics.proof('ok');
  res.setHeader(CONSUMED_HANDSHAKE_HEADER, result.consumedHandshake);
  sendOk(res, result.body);
};
