/**
 * POST /verify_session (docs/PROTOCOL.md §4.2): handshake id + answer → the relay session public key.
 * The answer must satisfy one of the difficulties accepted now (§3.4, grace rule, DEVIATION D10).
 * The key pair is minted by the core (which keeps the secret half); the edge record keeps the
 * public half so a repeat is answered without the core (DEVIATION D9).
 */
import { B64_32_CHARS, RelayError, TOKEN_BYTES, b64, checkAnswer, frame, requireFixed } from '@zax/protocol';
import { short } from '@zax/service';
import { nowMsOf, type HandshakeDeps } from './deps.js';

/** A 401 with the reason it is counted under (the client sees only 401 G). */
export class VerifyError extends RelayError {
  constructor(
    readonly reason: 'unknown_handshake' | 'wrong_answer' | 'proven',
    logMessage: string,
  ) {
    super('unauthorized', logMessage);
  }
}

/** Returns the response body: b64(r_sess_pk). */
export async function verifySession(deps: HandshakeDeps, body: Buffer): Promise<string> {
  const [idLine, answerLine] = frame(body.toString('latin1'), [B64_32_CHARS, B64_32_CHARS]);
  const handshakeId = b64(requireFixed(idLine, TOKEN_BYTES, 'handshake id'));
  const answer = requireFixed(answerLine, TOKEN_BYTES, 'answer');
  const nowMs = nowMsOf(deps.clock);

  const record = await deps.store.read(handshakeId, nowMs);
  if (record === null) throw new VerifyError('unknown_handshake', `no live handshake ${short(handshakeId)}`);

  const clientToken = Buffer.from(record.clientToken, 'base64');
  const relayToken = Buffer.from(record.relayToken, 'base64');
  const fits = (accepted: readonly number[]): boolean => accepted.some((d) => checkAnswer(clientToken, relayToken, answer, d));
  // A cached difficulty may lag a change published a moment ago (and announced by another replica):
  // before refusing, ask once more with a value read after this point (concurrent ones share a read).
  const accepted = await deps.difficulty.accepted(nowMs);
  if (!fits(accepted)) {
    const again = await deps.difficulty.accepted(nowMs, true);
    if (again === accepted || !fits(again)) {
      deps.metrics.powFailure();
      throw new VerifyError('wrong_answer', `wrong answer for ${short(handshakeId)}`);
    }
  }

  if (record.sessionPk !== null) return record.sessionPk;

  const minted = await deps.core.mint({
    v: 1,
    handshakeId,
    clientToken: record.clientToken,
    relayToken: record.relayToken,
    expiresAtMs: record.expiresAtMs,
  });
  if (minted.status === 'proven') throw new VerifyError('proven', `handshake ${short(handshakeId)} already proven`);
  deps.metrics.sessionMinted();

  // The key is valid whether or not the edge record takes it: the core mints create-if-absent, so
  // a repeat verify that misses the edge copy gets the same key from the core.
  try {
    const stored = await deps.store.setSessionPk(handshakeId, record.relayToken, minted.relaySessionPk, nowMsOf(deps.clock));
    if (!stored) deps.log.debug({ hs: short(handshakeId) }, 'handshake changed during verify; session key not cached');
  } catch {
    deps.log.debug({ hs: short(handshakeId) }, 'could not cache session key');
  }
  return minted.relaySessionPk;
}
