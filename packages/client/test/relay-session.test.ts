/**
 * RelaySession against the in-memory fake relay: handshake (with and without proof of work), the
 * one-time re-handshake after a 401, proactive renewal before session and token expiry, shared
 * handshakes, timeouts and the typed errors.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { b64, decodeFixed, splitLines, type Clock } from '@zax/protocol';
import {
  generateIdentity,
  Mailbox,
  normalizeBaseUrl,
  parseRetryAfter,
  RelayHttpError,
  RelayNetworkError,
  RelayProtocolError,
  RelaySession,
  RelayTimeoutError,
  splitLineBytes,
  UsageError,
  ZaxClientError,
  type FetchLike,
} from '../src/index.js';
import { startFakeRelay, type FakeRelay, type FakeRelayOptions } from './support/fake-relay.js';

/** A clock the test moves by hand, shared by the relay and the client. */
function manualClock(startMs = Date.now()): Clock & { advanceSec(s: number): void } {
  let now = startMs;
  return {
    nowMs: () => now,
    advanceSec(s) {
      now += s * 1000;
    },
  };
}

let relays: FakeRelay[] = [];
async function fakeRelay(options: FakeRelayOptions = {}): Promise<FakeRelay> {
  const r = await startFakeRelay(options);
  relays.push(r);
  return r;
}
afterEach(async () => {
  await Promise.all(relays.map((r) => r.close()));
  relays = [];
});

const paths = (relay: FakeRelay): string[] => relay.log.map((l) => `${l.path} ${l.status}`);
const HANDSHAKE = ['/start_session 200', '/verify_session 200', '/prove 200'];

describe('handshake', () => {
  it('connects, reports the message count from /prove, and runs commands', async () => {
    const relay = await fakeRelay();
    const session = new RelaySession({ url: `${relay.url}/`, identity: generateIdentity() });
    expect(session.isConnected).toBe(false);
    expect(await session.connect()).toBe(0);
    expect(session.isConnected).toBe(true);
    const res = await session.command({ cmd: 'count' });
    expect(res.lines).toHaveLength(2);
    expect(res.open()).toBe(0);
    expect(paths(relay)).toEqual([...HANDSHAKE, '/command 200']);
    expect(session.handshakes).toBe(1);
  });

  it('sends the /prove and /command line shapes of docs/PROTOCOL.md §4.3–4.4', async () => {
    const relay = await fakeRelay();
    const identity = generateIdentity();
    const session = new RelaySession({ url: relay.url, identity });
    await session.command({ cmd: 'count' });
    const prove = relay.log.find((l) => l.path === '/prove')!.body.split('\r\n');
    expect(prove.map((l) => l.length)).toEqual([44, 44, 32, 256]);
    const command = relay.log.find((l) => l.path === '/command')!.body.split('\r\n');
    expect(command[0]).toBe(b64(identity.hpk));
    expect(decodeFixed(command[1]!, 24)).not.toBeNull();
    expect(command).toHaveLength(3);
  });

  it('solves proof of work at the announced difficulty', async () => {
    const relay = await fakeRelay({ difficulty: 10 });
    const session = new RelaySession({ url: relay.url, identity: generateIdentity() });
    expect(session.lastDifficulty).toBeNull();
    expect(await session.connect()).toBe(0);
    expect(paths(relay)).toEqual(HANDSHAKE);
    expect(session.lastDifficulty).toBe(10);
  });

  it('refuses a difficulty above maxDifficulty without working on it', async () => {
    const relay = await fakeRelay({ difficulty: 30 });
    const session = new RelaySession({ url: relay.url, identity: generateIdentity(), maxDifficulty: 20 });
    await expect(session.connect()).rejects.toThrow(/difficulty 30, above maxDifficulty 20/);
    expect(paths(relay)).toEqual(['/start_session 200']);
    expect(session.lastDifficulty).toBe(30);
  });

  it('shares one handshake between concurrent commands', async () => {
    const relay = await fakeRelay();
    const session = new RelaySession({ url: relay.url, identity: generateIdentity() });
    const counts = await Promise.all(Array.from({ length: 5 }, () => session.command({ cmd: 'count' })));
    expect(counts.map((c) => c.open())).toEqual([0, 0, 0, 0, 0]);
    expect(relay.log.filter((l) => l.path === '/start_session')).toHaveLength(1);
    expect(session.handshakes).toBe(1);
  });

  it('includes the optional fourth line', async () => {
    const relay = await fakeRelay();
    const session = new RelaySession({ url: relay.url, identity: generateIdentity() });
    await session.command({ cmd: 'count' }, 'AAAA');
    expect(relay.log.at(-1)!.body.split('\r\n')[3]).toBe('AAAA');
  });

  it('sends line 4 given as bytes, and reads an answer as byte lines (commandBytes)', async () => {
    const relay = await fakeRelay();
    const session = new RelaySession({ url: relay.url, identity: generateIdentity() });
    const ascii = new TextEncoder().encode('QUJD');
    const text = await session.command({ cmd: 'count' }, ascii);
    expect(relay.log.at(-1)!.body.split('\r\n')[3]).toBe('QUJD');
    const into = new Uint8Array(4096);
    const bytes = await session.commandBytes({ cmd: 'count' }, ascii, into);
    expect(relay.log.at(-1)!.body.split('\r\n')[3]).toBe('QUJD');
    expect(bytes.body.buffer).toBe(into.buffer);
    expect(bytes.lines).toHaveLength(text.lines.length);
    expect(bytes.open()).toEqual(text.open());
    // Too small a buffer: the answer goes into a new one.
    const small = await session.commandBytes({ cmd: 'count' }, undefined, new Uint8Array(3));
    expect(small.open()).toEqual(text.open());
  });

  it('builds the body around line 4 given with room before it, and copies when the room is short (Line4WithRoom)', async () => {
    const relay = await fakeRelay();
    const session = new RelaySession({ url: relay.url, identity: generateIdentity() });
    const buffer = new Uint8Array(512 + 4).fill(0x21);
    buffer.set(new TextEncoder().encode('QUJD'), 512);
    const res = await session.commandBytes({ cmd: 'count' }, { buffer, start: 512 });
    expect(res.open()).toBe(0);
    const sent = relay.log.at(-1)!.body;
    expect(sent.split('\r\n')).toHaveLength(4);
    expect(sent.split('\r\n')[3]).toBe('QUJD');
    // Lines 1–3 were written into the room, right before line 4.
    expect(new TextDecoder().decode(buffer.subarray(512 - (sent.length - 4), 512))).toBe(sent.slice(0, -4));
    expect(buffer[512 - (sent.length - 4) - 1]).toBe(0x21);
    // Too little room: the same command, line 4 copied into a new body; the buffer is untouched.
    const tight = new Uint8Array(10 + 4).fill(0x21);
    tight.set(new TextEncoder().encode('QUJD'), 10);
    expect((await session.commandBytes({ cmd: 'count' }, { buffer: tight, start: 10 })).open()).toBe(0);
    expect(relay.log.at(-1)!.body.split('\r\n')[3]).toBe('QUJD');
    expect(Array.from(tight.subarray(0, 10))).toEqual(new Array(10).fill(0x21));
  });

  it('sends a large byte body (a stream on Node) from the caller\'s buffer, again and again', async () => {
    const relay = await fakeRelay();
    const session = new RelaySession({ url: relay.url, identity: generateIdentity() });
    const line4 = new TextEncoder().encode('QUJD'.repeat(50_000));
    for (let i = 0; i < 3; i++) {
      expect((await session.commandBytes({ cmd: 'count' }, line4)).open()).toBe(0);
      expect(relay.log.at(-1)!.body.split('\r\n')[3]).toBe('QUJD'.repeat(50_000));
    }
    expect(line4.byteLength).toBe(200_000);
  });
});

describe('re-handshake', () => {
  it('after a 401 from /command: new handshake, and the command once more with a fresh nonce', async () => {
    const relay = await fakeRelay();
    const session = new RelaySession({ url: relay.url, identity: generateIdentity() });
    await session.connect();
    relay.dropSessions();
    const res = await session.command({ cmd: 'count' });
    expect(res.open()).toBe(0);
    expect(paths(relay)).toEqual([...HANDSHAKE, '/command 401', ...HANDSHAKE, '/command 200']);
    const commands = relay.log.filter((l) => l.path === '/command').map((l) => l.body.split('\r\n')[1]);
    expect(commands[0]).not.toBe(commands[1]);
    expect(session.handshakes).toBe(2);
  });

  it('when a second session for the same identity replaces it, the first renews on its 401', async () => {
    const relay = await fakeRelay();
    const identity = generateIdentity();
    const first = new RelaySession({ url: relay.url, identity });
    const second = new RelaySession({ url: relay.url, identity });
    await first.connect();
    await second.connect();
    expect((await first.command({ cmd: 'count' })).open()).toBe(0);
    expect(first.handshakes).toBe(2);
    expect(relay.log.filter((l) => l.path === '/command').map((l) => l.status)).toEqual([401, 200]);
  });

  it('gives up after one retry: a second 401 is thrown', async () => {
    const relay = await fakeRelay();
    const session = new RelaySession({ url: relay.url, identity: generateIdentity() });
    await session.connect();
    relay.failNext('/command', 'unauthorized', 2);
    const err = await session.command({ cmd: 'count' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RelayHttpError);
    expect((err as RelayHttpError).status).toBe(401);
    expect(paths(relay)).toEqual([...HANDSHAKE, '/command 401', ...HANDSHAKE, '/command 401']);
  });

  it('after a 401 from /prove: the whole handshake runs once more', async () => {
    const relay = await fakeRelay();
    const session = new RelaySession({ url: relay.url, identity: generateIdentity() });
    relay.failNext('/prove', 'unauthorized', 1);
    expect(await session.connect()).toBe(0);
    expect(paths(relay)).toEqual(['/start_session 200', '/verify_session 200', '/prove 401', ...HANDSHAKE]);
    // with a new client token
    const starts = relay.log.filter((l) => l.path === '/start_session').map((l) => l.body);
    expect(starts[0]).not.toBe(starts[1]);
  });

  it('does not retry other statuses', async () => {
    const relay = await fakeRelay();
    const session = new RelaySession({ url: relay.url, identity: generateIdentity() });
    await session.connect();
    relay.failNext('/command', 'invalid', 1);
    await expect(session.command({ cmd: 'count' })).rejects.toMatchObject({ status: 400, details: 'Your request can not be completed.' });
    expect(paths(relay)).toEqual([...HANDSHAKE, '/command 400']);
  });

  it('renews the session before the relay expires it (1200 s − 30 s)', async () => {
    const clock = manualClock();
    const relay = await fakeRelay({ clock });
    const session = new RelaySession({ url: relay.url, identity: generateIdentity(), clock });
    await session.connect();
    clock.advanceSec(1169);
    await session.command({ cmd: 'count' });
    expect(session.handshakes).toBe(1);
    clock.advanceSec(2);
    expect(session.isConnected).toBe(false);
    await session.command({ cmd: 'count' });
    expect(session.handshakes).toBe(2);
    // renewed proactively: the relay never had to answer 401
    expect(paths(relay)).toEqual([...HANDSHAKE, '/command 200', ...HANDSHAKE, '/command 200']);
  });

  it('starts over with a new client token when the relay token is older than 300 s − 30 s before /prove', async () => {
    const clock = manualClock();
    const relay = await fakeRelay({ clock });
    let slowOnce = true;
    const fetch: FetchLike = async (url, init) => {
      const res = await globalThis.fetch(url, init);
      if (url.endsWith('/verify_session') && slowOnce) {
        slowOnce = false;
        clock.advanceSec(271);
      }
      return res;
    };
    const session = new RelaySession({ url: relay.url, identity: generateIdentity(), clock, fetch });
    await session.connect();
    expect(paths(relay)).toEqual(['/start_session 200', '/verify_session 200', ...HANDSHAKE]);
  });

  it('fails when every handshake outlives the relay token', async () => {
    const clock = manualClock();
    const relay = await fakeRelay({ clock });
    const fetch: FetchLike = async (url, init) => {
      const res = await globalThis.fetch(url, init);
      if (url.endsWith('/verify_session')) clock.advanceSec(271);
      return res;
    };
    const session = new RelaySession({ url: relay.url, identity: generateIdentity(), clock, fetch });
    await expect(session.connect()).rejects.toThrow(ZaxClientError);
    expect(relay.log.filter((l) => l.path === '/prove')).toHaveLength(0);
  });

  it('disconnect() forgets the session; the next command handshakes', async () => {
    const relay = await fakeRelay();
    const session = new RelaySession({ url: relay.url, identity: generateIdentity() });
    await session.connect();
    session.disconnect();
    await session.command({ cmd: 'count' });
    expect(session.handshakes).toBe(2);
  });
});

describe('errors', () => {
  it('RelayHttpError carries status, X-Error-Details and Retry-After', async () => {
    const relay = await fakeRelay();
    const session = new RelaySession({ url: relay.url, identity: generateIdentity() });
    await session.connect();
    relay.failNext('/command', 'busy', 1, 7);
    const err = (await session.command({ cmd: 'count' }).catch((e: unknown) => e)) as RelayHttpError;
    expect(err).toBeInstanceOf(RelayHttpError);
    expect(err).toMatchObject({ status: 503, details: 'Relay is busy. Try again later.', retryAfter: 7, path: 'command' });
    expect(err.message).toBe('relay answered 503 to /command: Relay is busy. Try again later. (retry after 7 s)');
  });

  it('a relay slower than timeoutMs gives RelayTimeoutError', async () => {
    const relay = await fakeRelay();
    relay.delayMs = 500;
    const session = new RelaySession({ url: relay.url, identity: generateIdentity(), timeoutMs: 100 });
    const err = await session.connect().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RelayTimeoutError);
    expect(err).toBeInstanceOf(RelayNetworkError);
    expect(err).toMatchObject({ reason: 'timeout', url: `${relay.url}/start_session` });
  });

  it('an unreachable relay gives RelayNetworkError', async () => {
    const relay = await fakeRelay();
    const url = relay.url;
    await relay.close();
    relays = [];
    const err = await new RelaySession({ url, identity: generateIdentity() }).connect().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RelayNetworkError);
    expect(err).not.toBeInstanceOf(RelayTimeoutError);
    const port = new URL(url).port;
    expect(err).toMatchObject({ reason: 'connection-refused', code: 'ECONNREFUSED', url: `${url}/start_session` });
    expect((err as Error).message).toBe(
      `cannot reach ${url}/start_session: connection refused at 127.0.0.1:${port} (nothing listens there): is the relay running, and is that its address and port?`,
    );
  });

  it('https:// against a plain HTTP relay gives RelayNetworkError port-speaks-http, naming the http:// URL', async () => {
    const relay = await fakeRelay();
    const https = relay.url.replace(/^http:/, 'https:');
    const err = await new RelaySession({ url: https, identity: generateIdentity() }).connect().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RelayNetworkError);
    expect(err).toMatchObject({ reason: 'port-speaks-http', url: `${https}/start_session` });
    expect((err as Error).message).toMatch(new RegExp(`; use ${relay.url.replace(/\./g, '\\.')}$`));
  });

  it('a 200 with the wrong number of lines gives RelayProtocolError', async () => {
    const fetch: FetchLike = async () => new Response('AAAA\r\n0\r\nextra', { status: 200 });
    await expect(new RelaySession({ url: 'http://relay.test', identity: generateIdentity(), fetch }).connect()).rejects.toThrow(RelayProtocolError);
  });

  it('a relay token that is not 32 bytes gives RelayProtocolError', async () => {
    const fetch: FetchLike = async () => new Response('AAAA\r\n0', { status: 200 });
    await expect(new RelaySession({ url: 'http://relay.test', identity: generateIdentity(), fetch }).connect()).rejects.toThrow(/relay token/);
  });

  it('an encrypted response that does not open gives RelayProtocolError', async () => {
    const relay = await fakeRelay();
    const fetch: FetchLike = async (url, init) => {
      const res = await globalThis.fetch(url, init);
      if (!url.endsWith('/command')) return res;
      const [nonce] = (await res.text()).split('\r\n');
      return new Response(`${nonce}\r\n${b64(new Uint8Array(17))}`, { status: 200 });
    };
    const mailbox = Mailbox.create({ url: relay.url, identity: generateIdentity(), fetch });
    await expect(mailbox.count()).rejects.toThrow(RelayProtocolError);
    await expect(mailbox.count()).rejects.toThrow('count: response box does not open under the session key');
  });
});

describe('helpers', () => {
  it('normalizeBaseUrl accepts a base with or without trailing slash', () => {
    expect(normalizeBaseUrl('http://127.0.0.1:8080')).toBe('http://127.0.0.1:8080');
    expect(normalizeBaseUrl('http://127.0.0.1:8080/')).toBe('http://127.0.0.1:8080');
    expect(normalizeBaseUrl('https://relay.example/zax//')).toBe('https://relay.example/zax');
    expect(() => normalizeBaseUrl('relay.example')).toThrow(UsageError);
    expect(() => normalizeBaseUrl('ftp://relay.example')).toThrow(UsageError);
    expect(() => normalizeBaseUrl('http://relay.example/?x=1')).toThrow(UsageError);
  });

  it('parseRetryAfter reads seconds and HTTP dates', () => {
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseRetryAfter('5')).toBe(5);
    expect(parseRetryAfter('Thu, 01 Jan 2030 00:00:10 GMT', Date.UTC(2030, 0, 1))).toBe(10);
    expect(parseRetryAfter('soon')).toBeNull();
  });
});

describe('splitLineBytes', () => {
  it('splits like splitLines', () => {
    const enc = new TextEncoder();
    const dec = new TextDecoder();
    for (const body of ['', '\r\n', '\n', 'a', 'a\r\n', 'a\n', 'a\r', 'a\r\nb', 'a\nb\r\n', 'a\r\n\r\nb', '\n\n', '\r\n\r\n', 'a\rb\nc', 'x\r\ny\r\nz\n']) {
      expect(splitLineBytes(enc.encode(body)).map((l) => dec.decode(l)), JSON.stringify(body)).toEqual(splitLines(body));
    }
  });
});
