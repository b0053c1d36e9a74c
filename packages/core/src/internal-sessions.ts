/**
 * POST /internal/sessions (docs/CONTRACT.md): the gatekeeper asks the core to mint the relay
 * session key pair of a verified handshake. Create-if-absent keyed by handshake id, idempotent for
 * the same relay token (DEVIATION D9), refused with 409 once that handshake has been proven.
 */
import {
  INTERNAL_API_VERSION,
  RelayError,
  TOKEN_BYTES,
  b64,
  decodeFixed,
  h2,
  parseMintRequest,
  type Clock,
  type Crypto,
  type MintResponse,
} from '@zax/protocol';
import { short, type Logger } from '@zax/service';
import { sendJson } from './ops.js';
import type { RouteHandler } from './routes.js';
import type { Stores } from './store/index.js';

export interface MintDeps {
  readonly stores: Stores;
  readonly crypto: Crypto;
  readonly clock: Clock;
  readonly log: Logger;
}

export interface MintReply {
  readonly status: 200 | 409;
  readonly body: MintResponse;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export async function mintSession(deps: MintDeps, bodyBytes: Uint8Array): Promise<MintReply> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(bodyBytes));
  } catch {
    throw new RelayError('invalid', 'mint: body is not JSON');
  }
  const req = parseMintRequest(parsed);
  if (req === null) throw new RelayError('invalid', 'mint: bad request');
  const ct = decodeFixed(req.clientToken, TOKEN_BYTES);
  if (ct === null || b64(h2(ct)) !== req.handshakeId) throw new RelayError('invalid', 'mint: handshake id is not h2(client token)');

  const kp = deps.crypto.keyPair();
  const result = await deps.stores.handshakes.mint(
    {
      handshakeId: req.handshakeId,
      clientToken: req.clientToken,
      relayToken: req.relayToken,
      relaySessionPk: b64(kp.publicKey),
      relaySessionSk: b64(kp.secretKey),
      expiresAtMs: req.expiresAtMs,
    },
    deps.clock.nowMs(),
  );
  deps.log.debug({ handshake: short(req.handshakeId), status: result.status }, 'mint');
  if (result.status === 'proven') return { status: 409, body: { v: INTERNAL_API_VERSION, status: 'proven' } };
  return { status: 200, body: { v: INTERNAL_API_VERSION, status: 'ok', relaySessionPk: result.relaySessionPk } };
}

/** POST /internal/sessions: the mint, counted, and answered as JSON. */
export const mintRoute: RouteHandler = async (core, _req, res, body) => {
  const reply = await mintSession(core.mint, body);
  if (reply.status === 200) {
    core.meter.mint(core.clock.nowMs());
    core.metrics.mint('ok');
  } else {
    core.metrics.mint('proven');
  }
  sendJson(res, reply.status, reply.body);
};
