/** /verify_session (docs/PROTOCOL.md §3.4, §4.2) against a stand-in core's /internal/sessions. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TEXT_BUSY, TEXT_G, b64, h2, type MintRequest } from '@zax/protocol';
import { loadVector } from '../../../test/support/vectors.js';
import { staticDifficulty, type DifficultyProvider } from '../src/difficulty.js';
import { FAKE_PK, post, startFakeCore, startGatekeeper, type FakeCore, type Gatekeeper } from './helpers.js';

interface PowCase {
  difficulty: number;
  category: string;
  nonce_b64: string;
  accept: boolean;
}
const pow = loadVector<{
  client_token_b64: string;
  relay_token_b64: string;
  h2_client_token_b64: string;
  cases: PowCase[];
  cross_checks: PowCase[];
  difficulty_zero: { category: string; answer_b64: string; accept: boolean }[];
}>('pow.json');

const CT_B64 = pow.client_token_b64;
const CT = Buffer.from(CT_B64, 'base64');
const RT = Buffer.from(pow.relay_token_b64, 'base64');
const ID = pow.h2_client_token_b64;
const ANSWER0 = b64(h2(CT, RT));
const vectorRelayToken = (n: number): Uint8Array => RT.subarray(0, n);

let core: FakeCore;
const open: Gatekeeper[] = [];
async function gatekeeper(difficulty?: DifficultyProvider, coreUrl?: string): Promise<Gatekeeper> {
  const gk = await startGatekeeper({ coreUrl: coreUrl ?? core.url, random: vectorRelayToken, ...(difficulty ? { difficulty } : {}) });
  open.push(gk);
  return gk;
}

async function gatekeeperWith(env: Record<string, string>): Promise<Gatekeeper> {
  const gk = await startGatekeeper({ coreUrl: core.url, random: vectorRelayToken, env });
  open.push(gk);
  return gk;
}

beforeEach(async () => {
  core = await startFakeCore();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((g) => g.close()));
  await core.close();
});

describe('difficulty 0', () => {
  it('accepts h2(ct‖rt), mints through the core with both tokens and the absolute expiry, answers r_sess_pk', async () => {
    const gk = await gatekeeper();
    const t0 = gk.clock.ms;
    expect((await post(gk.port, '/start_session', CT_B64)).body).toBe(`${pow.relay_token_b64}\r\n0`);
    gk.clock.ms += 5000;
    const r = await post(gk.port, '/verify_session', `${ID}\r\n${ANSWER0}`);
    expect(r.status).toBe(200);
    expect(r.body).toBe(FAKE_PK);
    expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(core.mints).toEqual<MintRequest[]>([
      { v: 1, handshakeId: ID, clientToken: CT_B64, relayToken: pow.relay_token_b64, expiresAtMs: t0 + 300_000 },
    ]);
  });

  it('is idempotent (D9): a repeat answers the same key from the edge record without the core', async () => {
    const gk = await gatekeeper();
    await post(gk.port, '/start_session', CT_B64);
    const first = await post(gk.port, '/verify_session', `${ID}\r\n${ANSWER0}`);
    await core.close(); // the repeat must not need the core
    const again = await post(gk.port, '/verify_session', `${ID}\n${ANSWER0}\n`);
    expect(again.status).toBe(200);
    expect(again.body).toBe(first.body);
    expect(core.mints).toHaveLength(1);
  });

  it.each(pow.difficulty_zero.filter((c) => !c.accept))('rejects $category with 401 G', async ({ answer_b64 }) => {
    const gk = await gatekeeper();
    await post(gk.port, '/start_session', CT_B64);
    const r = await post(gk.port, '/verify_session', `${ID}\r\n${answer_b64}`);
    expect(r.status).toBe(401);
    expect(r.headers['x-error-details']).toBe(TEXT_G);
    expect(r.body).toBe('');
    expect(core.mints).toHaveLength(0);
  });

  it('rejects h2(ct) and h2(rt‖ct) as answers with 401 G', async () => {
    const gk = await gatekeeper();
    await post(gk.port, '/start_session', CT_B64);
    for (const wrong of [b64(h2(CT)), b64(h2(RT, CT))]) {
      const r = await post(gk.port, '/verify_session', `${ID}\r\n${wrong}`);
      expect(r.status).toBe(401);
      expect(r.headers['x-error-details']).toBe(TEXT_G);
    }
  });

  it('gives 401 G once the handshake has expired (tokenTtlSec after /start_session)', async () => {
    const gk = await gatekeeper();
    await post(gk.port, '/start_session', CT_B64);
    gk.clock.ms += 300_000;
    const r = await post(gk.port, '/verify_session', `${ID}\r\n${ANSWER0}`);
    expect(r.status).toBe(401);
    expect(r.headers['x-error-details']).toBe(TEXT_G);
    expect(core.mints).toHaveLength(0);
  });
});

describe('proof of work at d > 0 (vectors/pow.json)', () => {
  it.each([...pow.cases, ...pow.cross_checks])('d=$difficulty $category → accept=$accept', async (c) => {
    const gk = await gatekeeper(staticDifficulty(c.difficulty));
    expect((await post(gk.port, '/start_session', CT_B64)).body).toBe(`${pow.relay_token_b64}\r\n${c.difficulty}`);
    const r = await post(gk.port, '/verify_session', `${pow.h2_client_token_b64}\r\n${c.nonce_b64}`);
    if (c.accept) {
      expect(r.status).toBe(200);
      expect(r.body).toBe(FAKE_PK);
      expect(core.mints).toHaveLength(1);
    } else {
      expect(r.status).toBe(401);
      expect(r.headers['x-error-details']).toBe(TEXT_G);
      expect(core.mints).toHaveLength(0);
    }
  });

  it('at d > 0 the zero-difficulty answer is not accepted unless it happens to meet d', async () => {
    const gk = await gatekeeper(staticDifficulty(16));
    await post(gk.port, '/start_session', CT_B64);
    const r = await post(gk.port, '/verify_session', `${ID}\r\n${ANSWER0}`);
    expect(r.status).toBe(401);
  });

  it('accepts an answer valid at any difficulty the provider accepts (grace seam)', async () => {
    const grace: DifficultyProvider = { current: async () => 4, accepted: async () => [0, 4] };
    const gk = await gatekeeper(grace);
    await post(gk.port, '/start_session', CT_B64);
    expect((await post(gk.port, '/verify_session', `${ID}\r\n${ANSWER0}`)).status).toBe(200);
    const d4 = pow.cases.find((c) => c.difficulty === 4 && c.accept)!;
    expect((await post(gk.port, '/verify_session', `${ID}\r\n${d4.nonce_b64}`)).status).toBe(200);
    const d4bad = pow.cases.find((c) => c.difficulty === 4 && !c.accept)!;
    expect((await post(gk.port, '/verify_session', `${ID}\r\n${d4bad.nonce_b64}`)).status).toBe(401);
  });
});

describe('core answers', () => {
  it('409 proven → 401 G, and nothing is cached', async () => {
    core.onMint = (_req, res) => {
      res.writeHead(409, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ v: 1, status: 'proven' }));
    };
    const gk = await gatekeeper();
    await post(gk.port, '/start_session', CT_B64);
    const r = await post(gk.port, '/verify_session', `${ID}\r\n${ANSWER0}`);
    expect(r.status).toBe(401);
    expect(r.headers['x-error-details']).toBe(TEXT_G);
    expect(await gk.redis.hget(`${gk.prefix}hs:${ID}`, 'pk')).toBeNull();
  });

  it.each([
    ['500', (res: import('node:http').ServerResponse) => res.writeHead(500).end()],
    ['403', (res: import('node:http').ServerResponse) => res.writeHead(403).end()],
    ['400', (res: import('node:http').ServerResponse) => res.writeHead(400).end()],
    ['200 with a bad body', (res: import('node:http').ServerResponse) => res.writeHead(200).end('{"v":1,"status":"ok","relaySessionPk":"x"}')],
    ['200 that is not JSON', (res: import('node:http').ServerResponse) => res.writeHead(200).end('ok')],
    ['a reset connection', (res: import('node:http').ServerResponse) => res.socket?.destroy()],
  ])('%s → 503 busy with Retry-After, and the record stays usable', async (_name, answer) => {
    core.onMint = (_req, res) => answer(res);
    const gk = await gatekeeper();
    await post(gk.port, '/start_session', CT_B64);
    const r = await post(gk.port, '/verify_session', `${ID}\r\n${ANSWER0}`);
    expect(r.status).toBe(503);
    expect(r.headers['x-error-details']).toBe(TEXT_BUSY);
    expect(r.headers['retry-after']).toBe('7');
    expect(r.body).toBe('');
    core.onMint = (_req, res) => res.writeHead(200).end(JSON.stringify({ v: 1, status: 'ok', relaySessionPk: FAKE_PK }));
    expect((await post(gk.port, '/verify_session', `${ID}\r\n${ANSWER0}`)).body).toBe(FAKE_PK);
  });

  it('a core that does not answer → 503 once CORE_TIMEOUT_MS is over: the gatekeeper gives the request up', async () => {
    // Two gatekeepers on one silent core: the one with the longer CORE_TIMEOUT_MS sends first and
    // is still waiting when the other has given up (the order of two deadlines, not a duration).
    // The figure printed is the time to the 503; undici checks header timers about every 0.5 s.
    const held = new Map<string, Promise<boolean>>(); // handshake id → whether the core had answered when the connection closed
    let received: () => void = () => {};
    core.onMint = (req, res) => {
      held.set(req.handshakeId, new Promise((resolve) => res.on('close', () => resolve(res.writableEnded))));
      received();
    };
    const quick = await gatekeeperWith({ CORE_TIMEOUT_MS: '300' });
    const patient = await startGatekeeper({ coreUrl: core.url, random: vectorRelayToken, env: { CORE_TIMEOUT_MS: '60000' } });
    const ct2 = Buffer.alloc(32, 0x22);
    const id2 = b64(h2(ct2));
    let patientAnswered = false;
    let patientReply: Promise<unknown> = Promise.resolve();
    try {
      await post(patient.port, '/start_session', b64(ct2));
      await post(quick.port, '/start_session', CT_B64);
      const patientReceived = new Promise<void>((resolve) => (received = resolve));
      patientReply = post(patient.port, '/verify_session', `${id2}\r\n${b64(h2(ct2, RT))}`)
        .catch(() => null) // cut off when the test closes that gatekeeper
        .finally(() => (patientAnswered = true));
      await patientReceived;

      const started = performance.now();
      const r = await post(quick.port, '/verify_session', `${ID}\r\n${ANSWER0}`);
      const tookMs = performance.now() - started;
      expect(r.status).toBe(503);
      expect(r.headers['x-error-details']).toBe(TEXT_BUSY);
      expect(r.headers['retry-after']).toBe('7');
      // the core had the request and never answered: the gatekeeper closed the connection
      expect(await held.get(ID)).toBe(false);
      // the gatekeeper with the longer deadline still waits on the same silent core
      expect(patientAnswered).toBe(false);
      expect(core.mints.map((m) => m.handshakeId)).toEqual([id2, ID]);
      console.log(`core not answering: 503 after ${tookMs.toFixed(0)} ms (CORE_TIMEOUT_MS 300; the gatekeeper with 60000 still waiting)`);
    } finally {
      await patient.close();
      await patientReply;
    }
  });

  it('a closed core port → 503 busy with Retry-After', async () => {
    const closed = await startFakeCore();
    await closed.close();
    const gk = await gatekeeper(undefined, closed.url);
    await post(gk.port, '/start_session', CT_B64);
    const r = await post(gk.port, '/verify_session', `${ID}\r\n${ANSWER0}`);
    expect(r.status).toBe(503);
    expect(r.headers['x-error-details']).toBe(TEXT_BUSY);
    expect(r.headers['retry-after']).toBe('7');
  });

  it('sends the internal secret: with a secret the core does not know the answer is 503, not 401', async () => {
    const gk = await startGatekeeper({ coreUrl: core.url, random: vectorRelayToken, env: { INTERNAL_SECRET: 'some-other-secret-0000' } });
    open.push(gk);
    await post(gk.port, '/start_session', CT_B64);
    const r = await post(gk.port, '/verify_session', `${ID}\r\n${ANSWER0}`);
    expect(r.status).toBe(503);
    expect(core.mints).toHaveLength(0);
    const good = await gatekeeper(); // same core, the right secret
    await post(good.port, '/start_session', CT_B64);
    expect((await post(good.port, '/verify_session', `${ID}\r\n${ANSWER0}`)).status).toBe(200);
    expect(core.mints).toHaveLength(1);
  });
});
