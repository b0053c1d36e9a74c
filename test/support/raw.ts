/**
 * A deliberately low-level protocol driver for conformance and property tests: every step is
 * explicit, every body is built here from @zax/protocol primitives, nothing is retried. Tests use it
 * to send exact (and exactly wrong) requests; the SDK in @zax/client is tested separately.
 */
import { b64, h2, makeNonce, solvePow, splitLines, tweetnaclCrypto as nacl, type KeyPair } from '@zax/protocol';
import { post } from './relay.js';

export const rnd = (n: number): Buffer => Buffer.from(nacl.randomBytes(n));
export const nowSec = (): number => Math.floor(Date.now() / 1000);
export const freshNonce = (offsetSec = 0): Uint8Array => makeNonce(nowSec() + offsetSec, rnd);

export interface Identity {
  comm: KeyPair;
  hpk: string;
}

export function newIdentity(): Identity {
  const comm = nacl.keyPair();
  return { comm, hpk: b64(h2(comm.publicKey)) };
}

export interface Handshake {
  clientToken: Buffer;
  relayToken: Buffer;
  difficulty: number;
  handshakeId: string;
  relaySessionPk?: Buffer;
}

export async function startSession(url: string, clientToken = rnd(32)): Promise<Handshake> {
  const r = await post(`${url}/start_session`, b64(clientToken));
  if (r.status !== 200) throw new Error(`start_session ${r.status}`);
  const [rt, d] = r.text.split('\r\n');
  return { clientToken, relayToken: Buffer.from(rt!, 'base64'), difficulty: Number(d), handshakeId: b64(h2(clientToken)) };
}

export function verifyBody(hs: Handshake, difficulty = hs.difficulty): string {
  return `${hs.handshakeId}\r\n${b64(solvePow(hs.clientToken, hs.relayToken, difficulty, rnd))}`;
}

export async function verifySession(url: string, hs: Handshake): Promise<Handshake> {
  const r = await post(`${url}/verify_session`, verifyBody(hs));
  if (r.status !== 200) throw new Error(`verify_session ${r.status}`);
  return { ...hs, relaySessionPk: Buffer.from(r.text, 'base64') };
}

export interface ProveParts {
  outerNonce?: Uint8Array;
  innerNonce?: Uint8Array;
  sessionKeys?: KeyPair;
  /** Replace the inner JSON (must stay 176 bytes for a 256-char line 4). */
  innerJson?: (parts: { pub_key: string; nonce: string; ctext: string }) => string;
  signature?: Uint8Array;
}

export function proveBody(hs: Handshake, id: Identity, p: ProveParts = {}): { body: string; session: KeyPair } {
  const session = p.sessionKeys ?? nacl.keyPair();
  const rpk = hs.relaySessionPk!;
  const sign = p.signature ?? h2(session.publicKey, hs.relayToken, hs.clientToken);
  const innerNonce = p.innerNonce ?? freshNonce();
  const inner = nacl.box(sign, innerNonce, rpk, id.comm.secretKey);
  const parts = { pub_key: b64(id.comm.publicKey), nonce: b64(innerNonce), ctext: b64(inner) };
  const json = p.innerJson ? p.innerJson(parts) : JSON.stringify(parts);
  const outerNonce = p.outerNonce ?? freshNonce();
  const outer = nacl.box(Buffer.from(json), outerNonce, rpk, session.secretKey);
  return { body: [hs.handshakeId, b64(session.publicKey), b64(outerNonce), b64(outer)].join('\r\n'), session };
}

export interface Session {
  url: string;
  id: Identity;
  hs: Handshake;
  keys: KeyPair;
  sharedKey: Uint8Array;
}

export function sessionOf(url: string, id: Identity, hs: Handshake, keys: KeyPair): Session {
  return { url, id, hs, keys, sharedKey: nacl.before(hs.relaySessionPk!, keys.secretKey)! };
}

/** A full handshake (start → verify → prove) for an identity. */
export async function connect(url: string, id: Identity = newIdentity()): Promise<Session> {
  const hs = await verifySession(url, await startSession(url));
  const { body, session } = proveBody(hs, id);
  const r = await post(`${url}/prove`, body);
  if (r.status !== 200) throw new Error(`prove ${r.status}`);
  return sessionOf(url, id, hs, session);
}

export function commandBody(s: Session, cmd: unknown, opts: { nonce?: Uint8Array; line4?: string; raw?: Uint8Array } = {}): string {
  const nonce = opts.nonce ?? freshNonce();
  const plain = opts.raw ?? Buffer.from(typeof cmd === 'string' ? cmd : JSON.stringify(cmd));
  const box = nacl.boxAfter(plain, nonce, s.sharedKey);
  const lines = [s.id.hpk, b64(nonce), b64(box)];
  if (opts.line4 !== undefined) lines.push(opts.line4);
  return lines.join('\r\n');
}

export interface CommandResult {
  status: number;
  headers: Headers;
  text: string;
  lines: string[];
  /** The decrypted JSON text of a 2/3-line encrypted response. */
  plain?: string;
}

export async function command(s: Session, cmd: unknown, opts: Parameters<typeof commandBody>[2] = {}): Promise<CommandResult> {
  const r = await post(`${s.url}/command`, commandBody(s, cmd, opts));
  const lines = r.status === 200 ? r.text.split('\r\n') : [];
  const out: CommandResult = { ...r, lines };
  if (r.status === 200 && lines.length >= 2 && lines[0]!.length === 32) {
    const opened = nacl.boxOpenAfter(Buffer.from(lines[1]!, 'base64'), Buffer.from(lines[0]!, 'base64'), s.sharedKey);
    if (opened !== null) out.plain = Buffer.from(opened).toString('utf8');
  }
  return out;
}

export { splitLines };
