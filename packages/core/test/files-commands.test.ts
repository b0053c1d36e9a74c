/**
 * The five file commands over HTTP (docs/PROTOCOL.md §5.7–5.11): checklist items 88–98, the file access
 * rule, D13–D16, and the chunk bookkeeping (re-uploads counted once, out-of-order parts, the last
 * chunk first, parallel uploads of one file). Vectors: `vectors/files.json`.
 */
import { describe, expect, it } from 'vitest';
import { TEXT_MAILBOX_FULL, TEXT_TOO_LARGE, b64, h2, tweetnaclCrypto as C } from '@zax/protocol';
import { hex, loadVector } from '../../../test/support/vectors.js';
import { storageId, storageName, uploadId } from '../src/file-ids.js';
import { command, commandBody, commandJson, coresWithThreeSessions, establishSession, openResponse, randomHpk, randomNonceB64, startCore, type Core, type Session, fileBytesTotal, fileKey } from './helpers.js';
import {
  NOT_FOUND_STATUS,
  deleteFile,
  expectG,
  fileStatus,
  getChunk,
  getChunkBytes,
  openJson,
  putChunk,
  putChunkOk,
  rnd,
  startFile,
} from './files-fixture.js';

const V = loadVector('files.json');
const P = loadVector('prove.json');

const { setup, track } = coresWithThreeSessions();

interface Item {
  data: string;
  time: number;
  from: string;
  nonce: string;
  kind: string;
}

describe('file ids (vectors/files.json)', () => {
  it('reproduces the reference relay vector: uploadID, storage_id, storage_name', () => {
    const r = V.reference_vector;
    const id = uploadId(Buffer.from(r.hpk_from_ascii), Buffer.from(r.hpk_to_ascii), Buffer.from(r.nonce_ascii), r.seed);
    expect(Buffer.from(id).toString('hex')).toBe(r.upload_id_hex);
    expect(b64(id)).toBe(r.upload_id_b64);
    expect(Buffer.from(storageId(id, r.seed)).toString('hex')).toBe(r.storage_id_hex);
    expect(storageName(storageId(id, r.seed))).toBe(r.storage_name);
  });

  it('reproduces the startFileUpload vector ids', () => {
    const v = V.start_file_upload_vector;
    const id = uploadId(Buffer.from(v.hpk_from_b64, 'base64'), Buffer.from(v.hpk_to_b64, 'base64'), Buffer.from(v.metadata.nonce, 'base64'), v.seed);
    expect(b64(id)).toBe(v.upload_id_b64);
    expect(storageName(storageId(id, v.seed))).toBe(v.storage_name);
    expect(b64(h2(v.hpk_to_b64, v.metadata.nonce))).toBe(v.storage_token_b64);
  });
});

describe('startFileUpload', () => {
  it('vector: uploadID with the configured seed, storage token, response JSON, recipient file message (88, 89)', async () => {
    const v = V.start_file_upload_vector;
    const core = track(await startCore({ env: { FILE_SEED: v.seed } }));
    const sender = await establishSession(core, C.keyPairFromSecretKey(hex(P.keys.a_comm_sk_hex)));
    const recipient = await establishSession(core, C.keyPairFromSecretKey(hex(v.to_comm_sk_hex)));
    expect(sender.hpk).toBe(v.hpk_from_b64);
    expect(recipient.hpk).toBe(v.hpk_to_b64);

    const r = await command(core, sender, v.command_json);
    expect(r.status).toBe(200);
    expect(openResponse(sender, r.body)).toBe(v.response_plaintext_json);

    const [item, ...rest] = await commandJson<Item[]>(core, recipient, { cmd: 'download' });
    expect(rest).toEqual([]);
    expect(item).toEqual({ ...v.recipient_message, time: core.clock.nowMs() / 1000 });
    expect(JSON.parse(item!.data)).toEqual({ ...v.metadata, uploadID: v.upload_id_b64 });
    // The message lives fileTtlSec (7 days), not messageTtlSec.
    const ttl = await command(core, sender, { cmd: 'messageStatus', token: v.storage_token_b64 });
    expect(ttl.body).toBe('604800');

    // The chunk vector: 27 stored bytes, COMPLETE, and the 3-line download.
    const c = V.chunk_vector;
    const up = await core.post('/command', commandBody(sender, c.command_json, { nowSec: core.clock.nowSec(), line4: c.line4_b64 }));
    expect(openResponse(sender, up.body)).toBe('{"status":"OK"}');
    expect(Buffer.from(c.line4_b64, 'base64')).toHaveLength(c.stored_bytes);
    for (const s of [sender, recipient]) {
      const st = await command(core, s, { cmd: 'fileStatus', uploadID: v.upload_id_b64 });
      expect(openResponse(s, st.body)).toBe(c.file_status_after_json);
    }
    const d = await command(core, recipient, { cmd: 'downloadFileChunk', uploadID: v.upload_id_b64, part: 0 });
    const lines = d.body.split('\r\n');
    expect(lines).toHaveLength(3);
    expect(openResponse(recipient, lines.slice(0, 2).join('\r\n'))).toBe(c.download_response_line2_plaintext_json);
    expect(lines[2]).toBe(c.download_response_line3);
  });

  it('fileStatus right after start is START with zeros for both parties (90); a third hpk sees NOT_FOUND (91)', async () => {
    const { core, alice, bob, carol } = await setup();
    const f = await startFile(core, alice, bob, 12345);
    expect(f.max_chunk_size).toBe(512000);
    expect(f.uploadID).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    for (const s of [alice, bob]) {
      const r = await command(core, s, { cmd: 'fileStatus', uploadID: f.uploadID });
      expect(openResponse(s, r.body)).toBe('{"status":"START","file_size":12345,"bytes_stored":0,"total_chunks":0}');
    }
    expect(await fileStatus(core, carol, f.uploadID)).toEqual(NOT_FOUND_STATUS);
    const unknown = await command(core, alice, { cmd: 'fileStatus', uploadID: randomHpk() });
    expect(openResponse(alice, unknown.body)).toBe('{"status":"NOT_FOUND","file_size":0,"bytes_stored":0,"total_chunks":0}');
  });

  it('the uploadID depends on sender, recipient and metadata nonce; a repeat resets the file and its chunks', async () => {
    const { core, alice, bob } = await setup();
    const nonce = randomNonceB64();
    const start = (from: Session, to: Session, n = nonce) =>
      commandJson<{ uploadID: string }>(core, from, { cmd: 'startFileUpload', to: to.hpk, file_size: 100, metadata: { nonce: n, ctext: 'm' } });
    const a = (await start(alice, bob)).uploadID;
    expect((await start(bob, alice)).uploadID).not.toBe(a);
    expect((await start(alice, bob, randomNonceB64())).uploadID).not.toBe(a);
    await putChunkOk(core, alice, a, 0, rnd(40));
    expect((await fileStatus(core, bob, a)).bytes_stored).toBe(40);
    expect((await start(alice, bob)).uploadID).toBe(a);
    expect(await fileStatus(core, bob, a)).toEqual({ status: 'START', file_size: 100, bytes_stored: 0, total_chunks: 0 });
    expect((await getChunk(core, bob, a, 0)).kind).toBe('status');
    // The recipient still has one message per metadata nonce (replaced, not duplicated).
    expect(await commandJson(core, bob, { cmd: 'count' })).toBe(2);
  });

  it('validation: to, file_size (1..maxFileSize), metadata → 400 G; ctext above maxMessageBytes → 413', async () => {
    const { core, alice, bob } = await setup({ MAX_FILE_SIZE: '1000', MAX_MESSAGE_BYTES: '50' });
    const md = { nonce: randomNonceB64(), ctext: 'm' };
    const bad: unknown[] = [
      { to: 'x', file_size: 10, metadata: md },
      { to: b64(rnd(31)), file_size: 10, metadata: md },
      { file_size: 10, metadata: md },
      { to: bob.hpk, file_size: 0, metadata: md },
      { to: bob.hpk, file_size: 1001, metadata: md },
      { to: bob.hpk, file_size: '10', metadata: md },
      { to: bob.hpk, file_size: 1.5, metadata: md },
      { to: bob.hpk, metadata: md },
      { to: bob.hpk, file_size: 10 },
      { to: bob.hpk, file_size: 10, metadata: 'x' },
      { to: bob.hpk, file_size: 10, metadata: { nonce: md.nonce } },
      { to: bob.hpk, file_size: 10, metadata: { nonce: md.nonce, ctext: '' } },
      { to: bob.hpk, file_size: 10, metadata: { nonce: md.nonce, ctext: 5 } },
      { to: bob.hpk, file_size: 10, metadata: { nonce: b64(rnd(23)), ctext: 'm' } },
      { to: bob.hpk, file_size: 10, metadata: { ctext: 'm' } },
    ];
    for (const b of bad) expectG(await command(core, alice, { cmd: 'startFileUpload', ...(b as object) }));
    const big = await command(core, alice, { cmd: 'startFileUpload', to: bob.hpk, file_size: 10, metadata: { nonce: md.nonce, ctext: 'x'.repeat(51) } });
    expect(big.status).toBe(413);
    expect(big.headers.get('x-error-details')).toBe(TEXT_TOO_LARGE);
    expect(await commandJson(core, bob, { cmd: 'count' })).toBe(0);
    expect((await command(core, alice, { cmd: 'startFileUpload', to: bob.hpk, file_size: 1000, metadata: md })).status).toBe(200);
  });

  it('a full recipient mailbox → 429 and no file is created', async () => {
    const { core, alice, bob } = await setup({ MAILBOX_QUOTA: '1' });
    expect((await command(core, alice, { cmd: 'upload', to: bob.hpk, payload: 'fill' })).status).toBe(200);
    const nonce = randomNonceB64();
    const r = await command(core, alice, { cmd: 'startFileUpload', to: bob.hpk, file_size: 10, metadata: { nonce, ctext: 'm' } });
    expect(r.status).toBe(429);
    expect(r.headers.get('x-error-details')).toBe(TEXT_MAILBOX_FULL);
    expect(r.headers.get('retry-after')).toBe('3600');
    const id = b64(uploadId(Buffer.from(alice.hpk, 'base64'), Buffer.from(bob.hpk, 'base64'), Buffer.from(nonce, 'base64'), await seedOf(core)));
    expect(await fileStatus(core, alice, id)).toEqual(NOT_FOUND_STATUS);
    expect(await core.redis.exists(fileKey(core, id, 'rec'))).toBe(0);
  });
});

/** The generated seed this core keeps in Redis (created on first use). */
async function seedOf(core: Core): Promise<string> {
  const s = await core.redis.get(`${core.prefix}files:seed`);
  if (s === null) throw new Error('no seed yet');
  return s;
}

describe('uploadFileChunk, fileStatus, downloadFileChunk', () => {
  it('parts 0..n−1 with last_chunk → COMPLETE, total_chunks n, bytes_stored = Σ sizes (92); chunks come back exactly (96)', async () => {
    const { core, alice, bob } = await setup();
    const sizes = [1000, 2000, 17];
    const f = await startFile(core, alice, bob, 3000);
    const chunks = sizes.map((n) => rnd(n));
    const nonces = sizes.map(() => randomNonceB64());
    for (let i = 0; i < chunks.length; i++) {
      await putChunkOk(core, alice, f.uploadID, i, chunks[i]!, { last: i === chunks.length - 1, nonce: nonces[i]! });
      if (i === 0) expect((await fileStatus(core, bob, f.uploadID)).status).toBe('UPLOADING');
    }
    for (const s of [alice, bob]) expect(await fileStatus(core, s, f.uploadID)).toEqual({ status: 'COMPLETE', file_size: 3000, bytes_stored: 3017, total_chunks: 3 });
    for (let i = 0; i < chunks.length; i++) {
      const d = await getChunk(core, bob, f.uploadID, i);
      expect(d).toMatchObject({ kind: 'chunk', nonce: nonces[i], line3: b64(chunks[i]!) });
    }
    // Either party may download.
    expect((await getChunkBytes(core, alice, f.uploadID, 1)).equals(chunks[1]!)).toBe(true);
  });

  it('a re-uploaded part replaces the old one and is counted once (93, D14)', async () => {
    const { core, alice, bob } = await setup();
    const f = await startFile(core, alice, bob, 500);
    await putChunkOk(core, alice, f.uploadID, 0, rnd(300));
    await putChunkOk(core, alice, f.uploadID, 1, rnd(100));
    const replacement = rnd(200);
    await putChunkOk(core, bob, f.uploadID, 0, replacement, { nonce: 'AAAAAGVT8RXQ0dLT1NXW19jZ2tvc3d7f' });
    expect(await fileStatus(core, alice, f.uploadID)).toEqual({ status: 'UPLOADING', file_size: 500, bytes_stored: 300, total_chunks: 2 });
    expect(await getChunk(core, alice, f.uploadID, 0)).toMatchObject({ nonce: 'AAAAAGVT8RXQ0dLT1NXW19jZ2tvc3d7f', line3: b64(replacement) });
    for (let i = 0; i < 3; i++) await putChunkOk(core, alice, f.uploadID, 1, rnd(100));
    expect((await fileStatus(core, alice, f.uploadID)).bytes_stored).toBe(300);
    expect(await fileBytesTotal(core)).toBe(300);
  });

  it('out-of-order parts, the last chunk first: COMPLETE at once and final; total_chunks = highest part + 1', async () => {
    const { core, alice, bob } = await setup();
    const f = await startFile(core, alice, bob, 5000);
    await putChunkOk(core, alice, f.uploadID, 4, rnd(10), { last: true });
    expect(await fileStatus(core, bob, f.uploadID)).toEqual({ status: 'COMPLETE', file_size: 5000, bytes_stored: 10, total_chunks: 5 });
    for (const p of [2, 0, 3, 1]) await putChunkOk(core, alice, f.uploadID, p, rnd(1000), { last: false });
    expect(await fileStatus(core, bob, f.uploadID)).toEqual({ status: 'COMPLETE', file_size: 5000, bytes_stored: 4010, total_chunks: 5 });
    // last_chunk on a middle part, then more parts: still COMPLETE, total_chunks keeps growing.
    const g = await startFile(core, alice, bob, 5000);
    await putChunkOk(core, alice, g.uploadID, 1, rnd(5), { last: true });
    await putChunkOk(core, alice, g.uploadID, 3, rnd(5));
    expect(await fileStatus(core, bob, g.uploadID)).toMatchObject({ status: 'COMPLETE', total_chunks: 4, bytes_stored: 10 });
  });

  it('parallel uploads of different parts of one file leave a consistent record', async () => {
    const { core, alice, bob } = await setup();
    const n = 40;
    const chunks = Array.from({ length: n }, (_, i) => rnd(100 + i * 37));
    const f = await startFile(core, alice, bob, chunks.reduce((a, c) => a + c.length, 0));
    await Promise.all(chunks.map((c, i) => putChunkOk(core, i % 2 === 0 ? alice : bob, f.uploadID, i, c, { last: i === n - 1 })));
    const total = chunks.reduce((a, c) => a + c.length, 0);
    expect(await fileStatus(core, bob, f.uploadID)).toEqual({ status: 'COMPLETE', file_size: total, bytes_stored: total, total_chunks: n });
    const back = await Promise.all(chunks.map((_, i) => getChunkBytes(core, bob, f.uploadID, i)));
    expect(Buffer.concat(back).equals(Buffer.concat(chunks))).toBe(true);
    expect(await fileBytesTotal(core)).toBe(total);
    expect(await core.redis.hlen(fileKey(core, f.uploadID, 'chunks'))).toBe(n);
  });

  it('the chunk may come as `ctext` in the JSON when line 4 is absent; line 4 wins when both are there', async () => {
    const { core, alice, bob } = await setup();
    const f = await startFile(core, alice, bob, 100);
    const a = rnd(20);
    const r = await command(core, alice, { cmd: 'uploadFileChunk', uploadID: f.uploadID, part: 0, nonce: randomNonceB64(), ctext: b64(a) });
    expect(openJson(alice, r.body)).toEqual({ status: 'OK' });
    expect((await getChunkBytes(core, bob, f.uploadID, 0)).equals(a)).toBe(true);
    const b = rnd(30);
    await command(core, alice, { cmd: 'uploadFileChunk', uploadID: f.uploadID, part: 1, nonce: randomNonceB64(), ctext: b64(rnd(10)) }, { line4: b64(b) });
    expect((await getChunkBytes(core, bob, f.uploadID, 1)).equals(b)).toBe(true);
  });

  it('validation (94, D16): part = file_size or a string part → 400 G; chunk > maxChunkSize → 413; bad fields → 400 G', async () => {
    const { core, alice, bob } = await setup({ MAX_CHUNK_SIZE: '1000' });
    const f = await startFile(core, alice, bob, 50);
    const id = f.uploadID;
    expectG(await putChunk(core, alice, id, 50, rnd(10)));
    expectG(await command(core, alice, { cmd: 'uploadFileChunk', uploadID: id, part: '1', nonce: randomNonceB64() }, { line4: b64(rnd(10)) }));
    const big = await putChunk(core, alice, id, 0, rnd(1001));
    expect(big.status).toBe(413);
    expect(big.headers.get('x-error-details')).toBe(TEXT_TOO_LARGE);
    expect((await putChunk(core, alice, id, 0, rnd(1000))).status).toBe(413); // 1000 > 50 + 16 (D16), not the chunk limit
    const ok = { cmd: 'uploadFileChunk', uploadID: id, part: 0, nonce: randomNonceB64() };
    for (const bad of [
      { uploadID: 'x' },
      { uploadID: b64(rnd(31)) },
      { uploadID: undefined },
      { part: -1 },
      { part: 1.5 },
      { part: undefined },
      { nonce: b64(rnd(23)) },
      { nonce: undefined },
      { last_chunk: 'true' },
      { last_chunk: 1 },
    ]) {
      expectG(await command(core, alice, { ...ok, ...bad }, { line4: b64(rnd(10)) }));
    }
    expectG(await command(core, alice, ok)); // no chunk at all
    expectG(await command(core, alice, { ...ok, ctext: 'not base64!' }));
    expect(await fileStatus(core, bob, id)).toEqual({ status: 'START', file_size: 50, bytes_stored: 0, total_chunks: 0 });
    // last_chunk: null counts as absent.
    await putChunkOk(core, alice, id, 0, rnd(10), { last: null as unknown as boolean });
  });

  it('D16: bytes_stored may reach file_size + 16 per chunk, not more; the refused chunk changes nothing', async () => {
    const { core, alice, bob } = await setup();
    const f = await startFile(core, alice, bob, 100);
    await putChunkOk(core, alice, f.uploadID, 0, rnd(60));
    await putChunkOk(core, alice, f.uploadID, 1, rnd(72)); // 132 = 100 + 2 × 16
    const over = await putChunk(core, alice, f.uploadID, 1, rnd(73));
    expect(over.status).toBe(413);
    expect(await fileStatus(core, bob, f.uploadID)).toEqual({ status: 'UPLOADING', file_size: 100, bytes_stored: 132, total_chunks: 2 });
    expect((await getChunkBytes(core, bob, f.uploadID, 1)).length).toBe(72);
  });

  it('an unknown uploadID → encrypted {"status":"NOT_FOUND"} (95); a third hpk cannot upload, download or delete', async () => {
    const { core, alice, bob, carol } = await setup();
    const unknown = await putChunk(core, alice, randomHpk(), 0, rnd(10));
    expect(unknown.status).toBe(200);
    expect(openResponse(alice, unknown.body)).toBe('{"status":"NOT_FOUND"}');
    const f = await startFile(core, alice, bob, 100);
    await putChunkOk(core, alice, f.uploadID, 0, rnd(10));
    expect(openJson(carol, (await putChunk(core, carol, f.uploadID, 1, rnd(10))).body)).toEqual({ status: 'NOT_FOUND' });
    expect((await getChunk(core, carol, f.uploadID, 0)).kind).toBe('notFound');
    expect(await deleteFile(core, carol, f.uploadID)).toEqual({ status: 'NOT_FOUND' });
    expect(await fileStatus(core, bob, f.uploadID)).toEqual({ status: 'UPLOADING', file_size: 100, bytes_stored: 10, total_chunks: 1 });
  });

  it('downloadFileChunk: unknown file → 2 lines NOT_FOUND; a missing part → 400 G; bad part → 400 G (97)', async () => {
    const { core, alice, bob } = await setup();
    const r = await command(core, bob, { cmd: 'downloadFileChunk', uploadID: randomHpk(), part: 0 });
    expect(r.body.split('\r\n')).toHaveLength(2);
    expect(openResponse(bob, r.body)).toBe('{"status":"NOT_FOUND"}');
    const f = await startFile(core, alice, bob, 100);
    await putChunkOk(core, alice, f.uploadID, 1, rnd(10));
    expectG(await command(core, bob, { cmd: 'downloadFileChunk', uploadID: f.uploadID, part: 0 }));
    expectG(await command(core, bob, { cmd: 'downloadFileChunk', uploadID: f.uploadID, part: 2 }));
    for (const part of ['0', -1, 0.5, undefined]) expectG(await command(core, bob, { cmd: 'downloadFileChunk', uploadID: f.uploadID, part }));
    expectG(await command(core, bob, { cmd: 'downloadFileChunk', uploadID: 'abc', part: 1 }));
  });
});

describe('deleteFile', () => {
  it('by the sender: OK, then NOT_FOUND for both; a second delete → NOT_FOUND; the file message stays (98)', async () => {
    const { core, alice, bob } = await setup();
    const f = await startFile(core, alice, bob, 100);
    await putChunkOk(core, alice, f.uploadID, 0, rnd(50), { last: true });
    const r = await command(core, alice, { cmd: 'deleteFile', uploadID: f.uploadID });
    expect(openResponse(alice, r.body)).toBe('{"status":"OK"}');
    for (const s of [alice, bob]) expect(await fileStatus(core, s, f.uploadID)).toEqual(NOT_FOUND_STATUS);
    expect((await getChunk(core, bob, f.uploadID, 0)).kind).toBe('notFound');
    expect(openJson(alice, (await putChunk(core, alice, f.uploadID, 1, rnd(5))).body)).toEqual({ status: 'NOT_FOUND' });
    const again = await command(core, alice, { cmd: 'deleteFile', uploadID: f.uploadID });
    expect(openResponse(alice, again.body)).toBe('{"status":"NOT_FOUND"}');
    expect((await commandJson<Item[]>(core, bob, { cmd: 'download' })).map((i) => i.kind)).toEqual(['file']);
    expect(await core.redis.keys(`${core.prefix}f:*`)).toEqual([]);
    expect(await fileBytesTotal(core)).toBe(0);
  });

  it('by the recipient removes it for the sender too (D15); deleting the file message keeps the file (§5.5)', async () => {
    const { core, alice, bob } = await setup();
    const f = await startFile(core, alice, bob, 100);
    await putChunkOk(core, alice, f.uploadID, 0, rnd(50));
    expect((await command(core, bob, { cmd: 'delete', payload: [f.metadataNonce] })).body).toBe('0');
    expect((await fileStatus(core, bob, f.uploadID)).status).toBe('UPLOADING');
    expect(await deleteFile(core, bob, f.uploadID)).toEqual({ status: 'OK' });
    for (const s of [alice, bob]) expect(await fileStatus(core, s, f.uploadID)).toEqual(NOT_FOUND_STATUS);
    expect(await deleteFile(core, alice, f.uploadID)).toEqual({ status: 'NOT_FOUND' });
  });

  it('a file sent to oneself works like any other', async () => {
    const { core, alice } = await setup();
    const f = await startFile(core, alice, alice, 10);
    await putChunkOk(core, alice, f.uploadID, 0, rnd(26), { last: true });
    expect(await fileStatus(core, alice, f.uploadID)).toEqual({ status: 'COMPLETE', file_size: 10, bytes_stored: 26, total_chunks: 1 });
    expect(await deleteFile(core, alice, f.uploadID)).toEqual({ status: 'OK' });
  });
});
