/** The message commands over HTTP (docs/PROTOCOL.md §5.1–5.6): checklist items 66–87 and 99. Runs once on each core Crypto backend. */
import { describe, expect, it } from 'vitest';
import { TEXT_G, TEXT_MAILBOX_FULL, TEXT_TOO_LARGE, b64, h2, randomBytes } from '@zax/protocol';
import {
  CORE_BACKENDS,
  command,
  commandJson,
  coresWithThreeSessions,
  commandPlain,
  randomNonceB64,
  type Core,
  type HttpReply,
  type Session,
} from './helpers.js';

interface Item {
  data: string;
  time: number;
  from: string;
  nonce: string;
  kind: string;
}

function expectG(r: HttpReply): void {
  expect(r.status).toBe(400);
  expect(r.headers.get('x-error-details')).toBe(TEXT_G);
  expect(r.body).toBe('');
}

const download = (core: Core, s: Session, extra: Record<string, unknown> = {}): Promise<Item[]> =>
  commandJson<Item[]>(core, s, { cmd: 'download', ...extra });

for (const backend of CORE_BACKENDS) {
  describe(`core on ${backend.name}`, () => {
    const { setup } = coresWithThreeSessions(backend);

    describe('upload and download', () => {
      it('string payload: token = b64(h2(to ‖ n)) with the nonce download shows; items have exactly 5 keys (66, 68)', async () => {
        const { core, alice, bob } = await setup();
        const token = await commandPlain(core, alice, { cmd: 'upload', to: bob.hpk, payload: 'hello' });
        const [item] = await download(core, bob);
        expect(Object.keys(item!)).toEqual(['data', 'time', 'from', 'nonce', 'kind']);
        expect(item).toEqual({ data: 'hello', time: core.clock.nowMs() / 1000, from: alice.hpk, nonce: item!.nonce, kind: 'message' });
        expect(Buffer.from(item!.nonce, 'base64')).toHaveLength(24);
        expect(token).toBe(b64(h2(bob.hpk + item!.nonce)));
      });

      it('object payload: token = b64(h2(to ‖ nonce)), data = ctext (67)', async () => {
        const { core, alice, bob } = await setup();
        const nonce = randomNonceB64();
        const token = await commandPlain(core, alice, { cmd: 'upload', to: bob.hpk, payload: { nonce, ctext: 'c1pher' } });
        expect(token).toBe(b64(h2(bob.hpk + nonce)));
        expect(await download(core, bob)).toMatchObject([{ data: 'c1pher', nonce, from: alice.hpk }]);
        // Without a nonce the relay makes one; null counts as absent.
        await commandPlain(core, alice, { cmd: 'upload', to: bob.hpk, payload: { ctext: 'two', nonce: null } });
        expect((await download(core, bob))[1]!.nonce).toHaveLength(32);
      });

      it('data comes back byte-identical, JSON-looking or not ASCII (69)', async () => {
        const { core, alice, bob } = await setup();
        const datas = ['{"object":"message"}', 'Grüße, 世界 🙂', '', 'line\r\nbreak "q" \\', '\ud83d'];
        for (const d of datas) await commandPlain(core, alice, { cmd: 'upload', to: bob.hpk, payload: d });
        expect((await download(core, bob)).map((i) => i.data)).toEqual(datas);
      });

      it('invalid to or payload → 400 G (70, 71)', async () => {
        const { core, alice, bob } = await setup();
        const bad: unknown[] = [
          { to: b64(randomBytes(31)), payload: 'x' },
          { to: b64(randomBytes(33)), payload: 'x' },
          { to: bob.hpk.slice(0, 43), payload: 'x' },
          { to: 5, payload: 'x' },
          { payload: 'x' },
          { to: bob.hpk, payload: 5 },
          { to: bob.hpk, payload: ['x'] },
          { to: bob.hpk, payload: {} },
          { to: bob.hpk, payload: { ctext: 5 } },
          { to: bob.hpk, payload: true },
          { to: bob.hpk },
          { to: bob.hpk, payload: { ctext: 'x', nonce: b64(randomBytes(23)) } },
          { to: bob.hpk, payload: { ctext: 'x', nonce: b64(randomBytes(32)) } },
          { to: bob.hpk, payload: { ctext: 'x', nonce: 12 } },
        ];
        for (const b of bad) expectG(await command(core, alice, { cmd: 'upload', ...(b as object) }));
        expect(await download(core, bob)).toEqual([]);
      });

      it('data above maxMessageBytes → 413 and nothing stored (72)', async () => {
        const { core, alice, bob } = await setup({ MAX_MESSAGE_BYTES: '10' });
        const r = await command(core, alice, { cmd: 'upload', to: bob.hpk, payload: 'é'.repeat(6) });
        expect(r.status).toBe(413);
        expect(r.headers.get('x-error-details')).toBe(TEXT_TOO_LARGE);
        expect((await command(core, alice, { cmd: 'upload', to: bob.hpk, payload: { ctext: '12345678901' } })).status).toBe(413);
        expect(await commandJson(core, bob, { cmd: 'count' })).toBe(0);
        expect((await command(core, alice, { cmd: 'upload', to: bob.hpk, payload: 'é'.repeat(5) })).status).toBe(200);
      });

      it('mailboxQuota: the 4th new message → 429 "Mailbox is full." with Retry-After; a re-upload still works (73)', async () => {
        const { core, alice, bob } = await setup({ MAILBOX_QUOTA: '3' });
        const nonces = [randomNonceB64(), randomNonceB64(), randomNonceB64()];
        for (const n of nonces) await commandPlain(core, alice, { cmd: 'upload', to: bob.hpk, payload: { nonce: n, ctext: 'x' } });
        const r = await command(core, alice, { cmd: 'upload', to: bob.hpk, payload: 'four' });
        expect(r.status).toBe(429);
        expect(r.headers.get('x-error-details')).toBe(TEXT_MAILBOX_FULL);
        expect(r.headers.get('retry-after')).toBe('3600');
        expect(r.body).toBe('');
        expect((await command(core, alice, { cmd: 'upload', to: bob.hpk, payload: { nonce: nonces[1], ctext: 'y' } })).status).toBe(200);
        expect((await download(core, bob)).map((i) => i.data)).toEqual(['x', 'y', 'x']);
      });

      it('mailboxQuotaBytes: an upload that would exceed it → 429 "Mailbox is full."', async () => {
        const { core, alice, bob } = await setup({ MAILBOX_QUOTA_BYTES: '10', MAILBOX_FULL_RETRY_AFTER_SEC: '77' });
        await commandPlain(core, alice, { cmd: 'upload', to: bob.hpk, payload: '12345678' });
        const r = await command(core, alice, { cmd: 'upload', to: bob.hpk, payload: '123' });
        expect(r.status).toBe(429);
        expect(r.headers.get('x-error-details')).toBe(TEXT_MAILBOX_FULL);
        expect(r.headers.get('retry-after')).toBe('77');
        expect((await command(core, alice, { cmd: 'upload', to: bob.hpk, payload: '12' })).status).toBe(200);
      });

      it('count is an encrypted bare integer of live messages (74)', async () => {
        const { core, alice, bob } = await setup();
        expect(await commandJson(core, bob, { cmd: 'count' })).toBe(0);
        await commandPlain(core, alice, { cmd: 'upload', to: bob.hpk, payload: 'a' });
        await commandPlain(core, bob, { cmd: 'upload', to: bob.hpk, payload: 'to myself' });
        const r = await command(core, bob, { cmd: 'count' });
        expect(r.body.split('\r\n')).toHaveLength(2);
        expect(await commandJson(core, bob, { cmd: 'count' })).toBe(2);
        expect(await commandJson(core, alice, { cmd: 'count' })).toBe(0);
      });

      it('receipt order; a re-upload keeps its place (75)', async () => {
        const { core, alice, bob } = await setup();
        const n = randomNonceB64();
        await commandPlain(core, alice, { cmd: 'upload', to: bob.hpk, payload: { nonce: n, ctext: 'first' } });
        await commandPlain(core, alice, { cmd: 'upload', to: bob.hpk, payload: 'second' });
        core.clock.advanceSec(2);
        await commandPlain(core, alice, { cmd: 'upload', to: bob.hpk, payload: { nonce: n, ctext: 'first v2' } });
        const items = await download(core, bob);
        expect(items.map((i) => i.data)).toEqual(['first v2', 'second']);
        expect(items[0]!.time).toBe(core.clock.nowMs() / 1000);
      });

      it('start/count paging (76) and field validation (77)', async () => {
        const { core, alice, bob } = await setup();
        for (const d of ['a', 'b', 'c']) await commandPlain(core, alice, { cmd: 'upload', to: bob.hpk, payload: d });
        expect((await download(core, bob, { start: 1, count: 1 })).map((i) => i.data)).toEqual(['b']);
        expect(await download(core, bob, { start: 5 })).toEqual([]);
        expect((await download(core, bob, { start: null, count: null })).map((i) => i.data)).toEqual(['a', 'b', 'c']);
        expect((await download(core, bob, { count: 2.0 })).map((i) => i.data)).toEqual(['a', 'b']);
        for (const bad of [{ count: 0 }, { count: '1' }, { start: -1 }, { start: 1.5 }, { from: [] }, { from: 'x' }, { from: ['x'] }, { from: Array(101).fill(alice.hpk) }]) {
          expectG(await command(core, bob, { cmd: 'download', ...bad }));
        }
      });

      it('count above 100 returns at most 100 items (77)', async () => {
        const { core, alice, bob } = await setup();
        await Promise.all(Array.from({ length: 105 }, (_, i) => commandPlain(core, alice, { cmd: 'upload', to: bob.hpk, payload: `m${i}` })));
        expect(await download(core, bob, { count: 500 })).toHaveLength(100);
        expect(await download(core, bob, { start: 100, count: 500 })).toHaveLength(5);
      });

      it('from filter keeps only those senders, in receipt order (78)', async () => {
        const { core, alice, bob, carol } = await setup();
        await commandPlain(core, alice, { cmd: 'upload', to: carol.hpk, payload: 'a1' });
        await commandPlain(core, bob, { cmd: 'upload', to: carol.hpk, payload: 'b1' });
        await commandPlain(core, alice, { cmd: 'upload', to: carol.hpk, payload: 'a2' });
        await commandPlain(core, bob, { cmd: 'upload', to: carol.hpk, payload: 'b2' });
        expect((await download(core, carol, { from: [bob.hpk] })).map((i) => i.data)).toEqual(['b1', 'b2']);
        expect((await download(core, carol, { from: [bob.hpk], start: 1 })).map((i) => i.data)).toEqual(['b2']);
        expect((await download(core, carol, { from: [alice.hpk, bob.hpk], count: 3 })).map((i) => i.data)).toEqual(['a1', 'b1', 'a2']);
      });
    });

    describe('messageStatus and delete', () => {
      it('messageStatus right after upload is in (ttl − 5, ttl], rounded up (79)', async () => {
        const { core, alice, bob } = await setup();
        const token = await commandPlain(core, alice, { cmd: 'upload', to: bob.hpk, payload: 'x' });
        expect(await commandPlain(core, alice, { cmd: 'messageStatus', token })).toBe('432000');
        core.clock.ms += 1500;
        expect(await commandPlain(core, alice, { cmd: 'messageStatus', token })).toBe('431999');
        core.clock.ms += 1;
        expect(await commandPlain(core, bob, { cmd: 'messageStatus', token })).toBe('431999');
      });

      it('after the recipient deletes it → -2; unknown tokens → -2 (80); a 43-char token → 400 G (81)', async () => {
        const { core, alice, bob } = await setup();
        const token = await commandPlain(core, alice, { cmd: 'upload', to: bob.hpk, payload: 'x' });
        const [item] = await download(core, bob);
        expect(await commandPlain(core, bob, { cmd: 'delete', payload: [item!.nonce] })).toBe('0');
        expect(await commandPlain(core, alice, { cmd: 'messageStatus', token })).toBe('-2');
        expect(await commandPlain(core, alice, { cmd: 'messageStatus', token: b64(randomBytes(32)) })).toBe('-2');
        for (const t of [token.slice(0, 43), 5, b64(randomBytes(31)), undefined]) expectG(await command(core, alice, { cmd: 'messageStatus', token: t }));
      });

      it('delete: [] → unchanged count; the only message → 0 (82); 101 entries or a non-array → 400 G (83)', async () => {
        const { core, alice, bob } = await setup();
        await commandPlain(core, alice, { cmd: 'upload', to: bob.hpk, payload: 'x' });
        expect(await commandPlain(core, bob, { cmd: 'delete', payload: [] })).toBe('1');
        expect(await commandPlain(core, bob, { cmd: 'delete', payload: ['junk', 'also junk', randomNonceB64()] })).toBe('1');
        for (const p of [Array(101).fill(randomNonceB64()), 'x', { a: 1 }, [1], undefined]) expectG(await command(core, bob, { cmd: 'delete', payload: p }));
        const [item] = await download(core, bob);
        expect(await commandPlain(core, bob, { cmd: 'delete', payload: [item!.nonce, item!.nonce] })).toBe('0');
        expect(await commandPlain(core, bob, { cmd: 'delete', payload: Array(100).fill(item!.nonce) })).toBe('0');
      });

      it('delete never removes a message from another mailbox (84)', async () => {
        const { core, alice, bob, carol } = await setup();
        const token = await commandPlain(core, alice, { cmd: 'upload', to: bob.hpk, payload: 'x' });
        await commandPlain(core, alice, { cmd: 'upload', to: carol.hpk, payload: 'y' });
        const [item] = await download(core, bob);
        expect(await commandPlain(core, carol, { cmd: 'delete', payload: [item!.nonce] })).toBe('1');
        expect(await commandPlain(core, alice, { cmd: 'delete', payload: [item!.nonce] })).toBe('0');
        expect(await commandJson(core, bob, { cmd: 'count' })).toBe(1);
        expect(Number(await commandPlain(core, alice, { cmd: 'messageStatus', token }))).toBeGreaterThan(0);
      });
    });

    describe('getEntropy and the file store switch', () => {
      it('getEntropy size 1000 → plain b64 of {"entropy": E}, E of 1000 bytes (86)', async () => {
        const { core, alice } = await setup();
        const line = await commandPlain(core, alice, { cmd: 'getEntropy', size: 1000 });
        expect(line).not.toContain('\r\n');
        const obj = JSON.parse(Buffer.from(line, 'base64').toString('ascii')) as { entropy: string };
        expect(Object.keys(obj)).toEqual(['entropy']);
        expect(Buffer.from(obj.entropy, 'base64')).toHaveLength(1000);
        const max = await commandPlain(core, alice, { cmd: 'getEntropy', size: 512000 });
        expect(Buffer.from((JSON.parse(Buffer.from(max, 'base64').toString()) as { entropy: string }).entropy, 'base64')).toHaveLength(512000);
      });

      it('getEntropy size 0, maxChunkSize + 1, a string or a fraction → 400 G (87)', async () => {
        const { core, alice } = await setup();
        for (const size of [0, 512001, '10', 1.5, -1, undefined]) expectG(await command(core, alice, { cmd: 'getEntropy', size }));
      });

      it('FILE_STORE_ENABLED=false: well-formed file commands → 405 empty body; malformed ones are still 400/413; upload works (99)', async () => {
        const { core, alice, bob } = await setup({ FILE_STORE_ENABLED: 'false' });
        const uploadID = b64(randomBytes(32));
        const ok = [
          { cmd: 'startFileUpload', to: bob.hpk, file_size: 10, metadata: { nonce: randomNonceB64(), ctext: 'm' } },
          { cmd: 'fileStatus', uploadID },
          { cmd: 'downloadFileChunk', uploadID, part: 0 },
          { cmd: 'deleteFile', uploadID },
          { cmd: 'uploadFileChunk', uploadID, part: 0, nonce: randomNonceB64(), ctext: 'AAAA' },
        ];
        for (const c of ok) {
          const r = await command(core, alice, c);
          expect(r.status, c.cmd).toBe(405);
          expect(r.body).toBe('');
          expect(r.headers.get('x-error-details')).toBeNull();
        }
        const line4 = await command(core, alice, { cmd: 'uploadFileChunk', uploadID, part: 0, nonce: randomNonceB64() }, { line4: 'AAAA' });
        expect(line4.status).toBe(405);
        expectG(await command(core, alice, { cmd: 'fileStatus', uploadID: 'x' }));
        expectG(await command(core, alice, { cmd: 'downloadFileChunk', uploadID, part: '1' }));
        const big = await command(core, alice, { cmd: 'uploadFileChunk', uploadID, part: 0, nonce: randomNonceB64() }, { line4: b64(randomBytes(512001)) });
        expect(big.status).toBe(413);
        expect((await command(core, alice, { cmd: 'upload', to: bob.hpk, payload: 'x' })).status).toBe(200);
        expect((await command(core, alice, { cmd: 'getEntropy', size: 8 })).status).toBe(200);
        expect(await core.redis.keys(`${core.prefix}f:*`)).toEqual([]);
      });

      it('the file store is on by default', async () => {
        const { core, alice } = await setup();
        const r = await command(core, alice, { cmd: 'fileStatus', uploadID: b64(randomBytes(32)) });
        expect(r.status).toBe(200);
        expect(r.body.split('\r\n')).toHaveLength(2);
      });
    });
  });
}
