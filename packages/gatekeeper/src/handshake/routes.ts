/**
 * The two handshake routes answered at the edge: the handler's answer as a 200, and the handshake
 * counted for metrics and the adaptive difficulty.
 */
import { isRelayError } from '@zax/protocol';
import { sendOk } from '@zax/service';
import type { VerifyFailure } from '../metrics.js';
import type { RouteHandler } from '../routes.js';
import { startSession } from './start-session.js';
import { VerifyError, verifySession } from './verify-session.js';

export const startSessionRoute: RouteHandler = async (edge, _req, res, body) => {
  const answer = await startSession(edge.handshake, body);
  sendOk(res, answer);
  edge.metrics.handshakeStarted();
  edge.difficulty.recordHandshake?.(edge.nowMs());
};

export const verifySessionRoute: RouteHandler = async (edge, _req, res, body) => {
  let answer: string;
  try {
    answer = await verifySession(edge.handshake, body);
  } catch (err) {
    edge.metrics.handshakeFailed(verifyFailure(err));
    throw err;
  }
  sendOk(res, answer);
  edge.metrics.handshakeVerified();
  edge.difficulty.recordHandshake?.(edge.nowMs());
};

function verifyFailure(err: unknown): VerifyFailure {
  if (err instanceof VerifyError) return err.reason;
  if (isRelayError(err) && (err.code === 'framing' || err.code === 'invalid')) return 'malformed';
  return 'unavailable';
}
