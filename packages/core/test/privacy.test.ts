/**
 * Logs at debug level never hold bodies, data, tokens, keys, nonces or full hpks (docs/PROTOCOL.md §7.1,
 * checklist item 100), across a whole flow including failures.
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { b64, tweetnaclCrypto as C } from '@zax/protocol';
import { command, commandJson, commandPlain, establishSession, mint, nonceAt, proveBody, randomNonceB64, startCore, type Core } from './helpers.js';

let core: Core | null = null;
afterEach(async () => {
  await core?.close();
  core = null;
});

describe('privacy of logs', () => {
  it('a full flow logs no secret material and at most 8 characters of an hpk', async () => {
    let out = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        out += chunk.toString();
        cb();
      },
    });
    const log = pino({ level: 'trace' }, sink);
    core = await startCore({ env: { MAILBOX_QUOTA: '2' }, log });
    const c = core;

    const secrets: string[] = [];
    const { handshake } = await mint(c);
    secrets.push(b64(handshake.clientToken), b64(handshake.relayToken), b64(handshake.relaySessionPk), handshake.handshakeId);
    const alice = await establishSession(c);
    const bob = await establishSession(c);
    secrets.push(alice.hpk, bob.hpk, b64(alice.aSess.publicKey), b64(alice.identity.publicKey), b64(alice.sharedKey));
    const n = randomNonceB64();
    secrets.push(n);
    const token = await commandPlain(c, alice, { cmd: 'upload', to: bob.hpk, payload: { nonce: n, ctext: 'TOP-SECRET-DATA' } });
    secrets.push(token);
    await commandPlain(c, alice, { cmd: 'upload', to: bob.hpk, payload: 'MORE-SECRET-DATA' });
    expect((await command(c, alice, { cmd: 'upload', to: bob.hpk, payload: 'x' })).status).toBe(429);
    await commandJson(c, bob, { cmd: 'download' });
    await commandPlain(c, alice, { cmd: 'messageStatus', token });
    await commandPlain(c, bob, { cmd: 'delete', payload: [n] });
    expect((await command(c, bob, '{"cmd":"nope"}')).status).toBe(400);
    const now = c.clock.nowSec();
    const badProve = proveBody({ handshake, identity: C.keyPair(), aSess: C.keyPair(), outerNonce: nonceAt(now), innerNonce: nonceAt(now), sign: new Uint8Array(32) });
    await c.post('/prove', badProve);

    expect(out).toContain('"msg":"command"');
    for (const s of [...secrets, 'TOP-SECRET-DATA', 'MORE-SECRET-DATA']) {
      expect(out.includes(s), `log contains ${s.slice(0, 8)}…`).toBe(false);
      expect(out.includes(s.slice(0, 9)), `log contains 9 chars of ${s.slice(0, 8)}…`).toBe(false);
    }
    expect(out).not.toMatch(/[A-Za-z0-9+/]{43}=/);
    expect(out).not.toMatch(/[A-Za-z0-9+/]{32}/);
  });

  it('a file flow (start, chunks, status, download, delete, refusals) logs no uploadID, chunk or metadata', async () => {
    let out = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        out += chunk.toString();
        cb();
      },
    });
    core = await startCore({ env: { MAX_FILE_BYTES_TOTAL: '100' }, log: pino({ level: 'trace' }, sink) });
    const c = core;
    const alice = await establishSession(c);
    const bob = await establishSession(c);
    const metadataNonce = randomNonceB64();
    const start = await commandJson<{ uploadID: string; storage_token: string }>(c, alice, {
      cmd: 'startFileUpload',
      to: bob.hpk,
      file_size: 200,
      metadata: { nonce: metadataNonce, ctext: 'SECRET-METADATA' },
    });
    const chunk = Buffer.from('SECRET-CHUNK-BYTES-SECRET-CHUNK-BYTES');
    const chunkNonce = randomNonceB64();
    const upload = (part: number, bytes: Buffer) => command(c, alice, { cmd: 'uploadFileChunk', uploadID: start.uploadID, part, nonce: chunkNonce }, { line4: b64(bytes) });
    expect((await upload(0, chunk)).status).toBe(200);
    expect((await upload(1, Buffer.alloc(90))).status).toBe(503);
    expect((await upload(500, chunk)).status).toBe(400);
    await commandJson(c, bob, { cmd: 'fileStatus', uploadID: start.uploadID });
    expect((await command(c, bob, { cmd: 'downloadFileChunk', uploadID: start.uploadID, part: 0 })).status).toBe(200);
    expect((await command(c, bob, { cmd: 'downloadFileChunk', uploadID: start.uploadID, part: 7 })).status).toBe(400);
    await commandJson(c, bob, { cmd: 'deleteFile', uploadID: start.uploadID });

    expect(out).toContain('"cmd":"uploadFileChunk"');
    for (const s of [start.uploadID, start.storage_token, metadataNonce, chunkNonce, b64(chunk), alice.hpk, bob.hpk]) {
      expect(out.includes(s.slice(0, 9)), `log contains 9 chars of ${s.slice(0, 8)}…`).toBe(false);
    }
    for (const s of ['SECRET-METADATA', 'SECRET-CHUNK']) expect(out).not.toContain(s);
    expect(out).not.toMatch(/[A-Za-z0-9+/]{32}/);
  });
});
