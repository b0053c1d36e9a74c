/** The client constructions against the shared vectors: /prove (prove.json) and /command count (command_count.json). */
import { describe, expect, it } from 'vitest';
import { joinLines, tweetnaclCrypto, type Crypto } from '@zax/protocol';
import { buildCommandLines, buildProveLines, identityFromSecretKey, Mailbox, openResponse, RelaySession, type FetchLike } from '../src/index.js';
import { hex, loadVector, unb64 } from '../../../test/support/vectors.js';

const P = loadVector('prove.json');
const C = loadVector('command_count.json');

const aComm = identityFromSecretKey(hex(P.keys.a_comm_sk_hex));
const aSess = tweetnaclCrypto.keyPairFromSecretKey(hex(P.keys.a_sess_sk_hex));
const rSess = tweetnaclCrypto.keyPairFromSecretKey(hex(P.keys.r_sess_sk_hex));

/** A random source that hands out exactly these byte strings, in order, and checks each size. */
function scriptedRandom(...chunks: Buffer[]): (n: number) => Uint8Array {
  return (n) => {
    const next = chunks.shift();
    if (next === undefined) throw new Error(`unexpected random(${n})`);
    expect(next.length).toBe(n);
    return Uint8Array.from(next);
  };
}
/** The 16 random bytes of a vector nonce. */
const tail = (nonceB64: string): Buffer => unb64(nonceB64).subarray(8);

describe('identity of the vectors', () => {
  it('derives a_comm_pk and hpk from a_comm_sk', () => {
    expect(Buffer.from(aComm.publicKey).toString('base64')).toBe(P.keys.a_comm_pk_b64);
    expect(Buffer.from(aComm.hpk).toString('base64')).toBe(P.hpk_b64);
  });
});

describe('/prove body (vectors/prove.json)', () => {
  it('is rebuilt byte for byte from the keys, tokens and nonces', () => {
    const lines = buildProveLines({
      crypto: tweetnaclCrypto,
      identity: aComm,
      clientToken: unb64(P.client_token_b64),
      relayToken: unb64(P.relay_token_b64),
      relaySessionPk: unb64(P.keys.r_sess_pk_b64),
      sessionKeyPair: aSess,
      nonceInner: unb64(P.prove.nonce_inner_b64),
      nonceOuter: unb64(P.prove.nonce_outer_b64),
    });
    expect(lines).toEqual(P.prove.request_lines);
    const body = joinLines(lines);
    expect(body).toBe(P.prove.request_body);
    expect(body.length).toBe(P.prove.request_body_length);
    // The inner JSON the outer box holds is the vector's 176 bytes.
    const inner = tweetnaclCrypto.boxOpen(unb64(lines[3]!), unb64(lines[2]!), aSess.publicKey, rSess.secretKey);
    expect(Buffer.from(inner!).toString()).toBe(P.prove.inner_json);
  });
});

describe('/command count (vectors/command_count.json)', () => {
  const key = tweetnaclCrypto.before(rSess.publicKey, aSess.secretKey)!;

  it('builds the request body byte for byte', () => {
    const lines = buildCommandLines(tweetnaclCrypto, aComm.hpk, unb64(C.request.nonce_b64), key, { cmd: 'count' });
    expect(lines).toEqual(C.request.lines);
    expect(joinLines(lines)).toBe(C.request.body);
  });

  it('decrypts the response to the bare number 0', () => {
    expect(openResponse(tweetnaclCrypto, key, C.response.lines)).toBe(0);
  });

  it('rejects a response box with one flipped bit', () => {
    const bad = Buffer.from(C.response.ctext_b64, 'base64');
    bad[3]! ^= 1;
    expect(() => openResponse(tweetnaclCrypto, key, [C.response.nonce_b64, bad.toString('base64')])).toThrow(/does not open/);
  });
});

describe('RelaySession + Mailbox with injected randomness, keys and clock', () => {
  it('sends exactly the vector bodies for the whole handshake and a count', async () => {
    let nowMs: number = P.relay_clock * 1000;
    const crypto: Crypto = { ...tweetnaclCrypto, keyPair: () => tweetnaclCrypto.keyPairFromSecretKey(hex(P.keys.a_sess_sk_hex)) };
    const answers: Record<string, string> = {
      start_session: P.start_session.response_body,
      verify_session: P.verify_session.response_body,
      prove: P.prove.response_body,
      command: C.response.body,
    };
    const sent: [string, string][] = [];
    const fetch: FetchLike = async (url, init) => {
      const path = url.slice(url.lastIndexOf('/') + 1);
      sent.push([url, String(init.body)]);
      return new Response(answers[path], { status: 200 });
    };
    const relay = new RelaySession({
      url: 'http://relay.test/base/',
      identity: aComm,
      crypto,
      fetch,
      clock: { nowMs: () => nowMs },
      random: scriptedRandom(
        unb64(P.client_token_b64),
        tail(P.prove.nonce_inner_b64),
        tail(P.prove.nonce_outer_b64),
        tail(C.request.nonce_b64),
      ),
    });
    expect(await relay.connect()).toBe(0);
    // The command nonce is timestamped 1700000005 in the vector.
    nowMs = (P.relay_clock + 5) * 1000;
    const mailbox = new Mailbox(relay);
    expect(await mailbox.count()).toBe(0);

    expect(sent).toEqual([
      ['http://relay.test/base/start_session', P.start_session.request_body],
      ['http://relay.test/base/verify_session', P.verify_session.request_body],
      ['http://relay.test/base/prove', P.prove.request_body],
      ['http://relay.test/base/command', C.request.body],
    ]);
    expect(relay.handshakes).toBe(1);
  });
});
