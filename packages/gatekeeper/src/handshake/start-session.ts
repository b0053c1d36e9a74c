/**
 * POST /start_session (docs/PROTOCOL.md §4.1): one 44-char line, the client token → the relay token of
 * the live handshake for h2(client_token) (created with a fresh CSPRNG token if none lives) and
 * the current difficulty. DEVIATION D8: a repeat returns the same relay token, lifetime unchanged.
 */
import { B64_32_CHARS, TOKEN_BYTES, b64, frame, h2, joinLines, requireFixed } from '@zax/protocol';
import { nowMsOf, type HandshakeDeps } from './deps.js';

/** Returns the response body: b64(relay_token) CRLF difficulty. */
export async function startSession(deps: HandshakeDeps, body: Buffer): Promise<string> {
  // latin1 maps each byte to one character, so line lengths are byte lengths.
  const [line] = frame(body.toString('latin1'), [B64_32_CHARS]);
  const clientToken = requireFixed(line, TOKEN_BYTES, 'client_token');
  const nowMs = nowMsOf(deps.clock);
  const candidate = deps.random(TOKEN_BYTES);
  if (candidate.length !== TOKEN_BYTES) throw new Error('random() returned the wrong number of bytes');
  const relayToken = await deps.store.start(
    b64(h2(clientToken)),
    b64(clientToken),
    b64(candidate),
    nowMs,
    deps.config.tokenTtlSec,
  );
  const difficulty = await deps.difficulty.current(nowMs);
  return joinLines([relayToken, String(difficulty)]);
}
