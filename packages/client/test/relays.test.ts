/**
 * Delivery through several relays: pickRelays (rendezvous hashing: the score formula, determinism,
 * spread, minimal disruption, errors) and MultiMailbox over three in-memory fake relays (one copy
 * per relay, de-duplication, a relay that fails, argument errors). Live relays: test/e2e/multi-relay.test.ts.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { b64 } from '@zax/protocol';
import {
  AllRelaysFailedError,
  distinctRelayUrls,
  generateIdentity,
  IdentityError,
  isRelayFailure,
  MultiMailbox,
  pickRelays,
  RelayHttpError,
  UsageError,
} from '../src/index.js';
import { startFakeRelay, type FakeRelay } from './support/fake-relay.js';

const URLS = ['https://a.example', 'https://b.example', 'https://c.example', 'https://d.example', 'https://e.example'];
/** Deterministic, well-spread hpks: sha256 of a counter. */
const hpkN = (i: number): Uint8Array => new Uint8Array(createHash('sha256').update(`hpk ${i}`).digest());
const sameSet = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x) => b.includes(x));

describe('pickRelays', () => {
  it('scores sha256(hpk ‖ UTF-8(url)) as a big-endian number and returns the top k, highest first', () => {
    const hpk = hpkN(1);
    const ranked = [...URLS].sort((x, y) => {
      const sx = createHash('sha256').update(hpk).update(x, 'utf8').digest('hex');
      const sy = createHash('sha256').update(hpk).update(y, 'utf8').digest('hex');
      return sy.localeCompare(sx);
    });
    for (let k = 1; k <= URLS.length; k++) expect(pickRelays(URLS, hpk, k)).toEqual(ranked.slice(0, k));
  });

  it('is deterministic: the same for base64 or bytes, any order and any spelling of the list', () => {
    for (let i = 0; i < 50; i++) {
      const hpk = hpkN(i);
      const picked = pickRelays(URLS, hpk, 2);
      expect(pickRelays(URLS, b64(hpk), 2)).toEqual(picked);
      expect(pickRelays([...URLS].reverse(), hpk, 2)).toEqual(picked);
      const respelled = URLS.map((u) => `${u.toUpperCase()}:443/`);
      expect(pickRelays([...respelled, ...URLS], hpk, 2)).toEqual(picked);
    }
  });

  it('normalises and de-duplicates the list', () => {
    expect(distinctRelayUrls(['http://127.0.0.1:8080/', 'http://127.0.0.1:8080', 'HTTP://127.0.0.1:8080//', 'http://127.0.0.1:80/'])).toEqual([
      'http://127.0.0.1:8080',
      'http://127.0.0.1',
    ]);
    expect(() => pickRelays(['http://x.example', 'http://x.example/'], hpkN(0), 2)).toThrow(UsageError);
  });

  it('spreads the load: over many hpks each relay is chosen about k/n of the time', () => {
    const hpks = 5000;
    for (const k of [1, 2, 3]) {
      const chosen = new Map(URLS.map((u) => [u, 0]));
      for (let i = 0; i < hpks; i++) for (const u of pickRelays(URLS, hpkN(i), k)) chosen.set(u, chosen.get(u)! + 1);
      const expected = (hpks * k) / URLS.length;
      // Binomial spread: σ ≤ 35 here; 8 % of the expectation is more than 4 σ.
      for (const n of chosen.values()) expect(Math.abs(n - expected)).toBeLessThan(expected * 0.08);
    }
  });

  it('disrupts minimally: removing a relay changes only the hpks that had it; adding one, only those it wins', () => {
    const without = URLS.filter((u) => u !== 'https://c.example');
    let had = 0;
    for (let i = 0; i < 2000; i++) {
      const before = pickRelays(URLS, hpkN(i), 2);
      const after = pickRelays(without, hpkN(i), 2);
      if (!before.includes('https://c.example')) expect(after).toEqual(before);
      else {
        had++;
        // The survivor stays; the removed relay's place goes to the next in rank.
        expect(after).toContain(before.find((u) => u !== 'https://c.example'));
        expect(sameSet(after, pickRelays(URLS, hpkN(i), 3).filter((u) => u !== 'https://c.example'))).toBe(true);
      }
      // Adding it back: the hpks that change are exactly those it wins.
      const added = pickRelays([...without, 'https://c.example'], hpkN(i), 2);
      expect(added).toEqual(before);
    }
    expect(had).toBeGreaterThan(600);
    expect(had).toBeLessThan(1000);
  });

  it('refuses bad arguments with clear errors', () => {
    const hpk = hpkN(0);
    expect(() => pickRelays(URLS, hpk, 0)).toThrow(/k must be an integer from 1 to the number of distinct relays \(5\), not 0/);
    expect(() => pickRelays(URLS, hpk, 6)).toThrow(UsageError);
    expect(() => pickRelays(URLS, hpk, 1.5)).toThrow(UsageError);
    expect(() => pickRelays(URLS, hpk, Number.NaN)).toThrow(UsageError);
    expect(() => pickRelays([], hpk, 1)).toThrow(/the list is empty/);
    expect(() => pickRelays(['https://a.example', 'not a url'], hpk, 1)).toThrow(/not a URL: not a url/);
    expect(() => pickRelays(['ftp://a.example'], hpk, 1)).toThrow(/must be http or https/);
    expect(() => pickRelays(['https://a.example/?x=1'], hpk, 1)).toThrow(/query or fragment/);
    expect(() => pickRelays('https://a.example' as unknown as string[], hpk, 1)).toThrow(UsageError);
    expect(() => pickRelays(URLS, 'c2hvcnQ=', 1)).toThrow(IdentityError);
    expect(() => pickRelays(URLS, new Uint8Array(31), 1)).toThrow(/recipient hpk: expected 32 bytes, got 31/);
  });
});

describe('MultiMailbox over three fake relays', () => {
  let relays: FakeRelay[];
  beforeAll(async () => {
    relays = await Promise.all([startFakeRelay(), startFakeRelay(), startFakeRelay()]);
  });
  afterAll(async () => {
    await Promise.all(relays.map((r) => r.close()));
  });
  const urls = (): string[] => relays.map((r) => r.url);
  const relayAt = (url: string): FakeRelay => relays.find((r) => r.url === url)!;

  it('stores one copy (same nonce, same data) on each of the recipient’s k relays and none elsewhere; receives each once', async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const a = new MultiMailbox({ urls: urls(), identity: alice, guests: [bob.publicKey] });
    const b = new MultiMailbox({ urls: [...urls()].reverse(), identity: bob, guests: [alice.publicKey] });
    expect(a.k).toBe(2);
    expect(a.relaysFor(bob.hpk)).toEqual(b.ownRelays);

    const sent = [await a.send(bob.publicKey, 'one'), await a.send(bob.publicKey, 'two'), await a.send({ hpk: bob.hpk }, 'plain', { encrypt: false })];
    for (const s of sent) {
      expect(s.failures).toEqual([]);
      expect(s.relays.map((r) => r.url)).toEqual(b.ownRelays);
    }
    for (const url of urls()) {
      const stored = relayAt(url).mailboxes.get(b64(bob.hpk)) ?? [];
      if (b.ownRelays.includes(url)) expect(stored.map((m) => m.nonce)).toEqual(sent.map((s) => s.nonce));
      else expect(stored).toEqual([]);
    }

    const got = await b.receive();
    expect(got.failures).toEqual([]);
    expect(got.messages.map((m) => [m.text ?? m.data, m.nonce, m.relays])).toEqual([
      ['one', sent[0]!.nonce, b.ownRelays],
      ['two', sent[1]!.nonce, b.ownRelays],
      ['plain', sent[2]!.nonce, b.ownRelays],
    ]);
    expect(got.messages[2]!.status).toBe('undecryptable');
    expect((await b.count()).relays).toEqual(b.ownRelays.map((url) => ({ url, count: 3 })));

    const del = await b.delete([sent[0]!.nonce]);
    expect(del.relays).toEqual(b.ownRelays.map((url) => ({ url, remaining: 2 })));
    expect((await b.deleteAll()).relays).toEqual(b.ownRelays.map((url) => ({ url, remaining: 0 })));
    expect((await b.receive()).messages).toEqual([]);
  });

  it('goes on when one of the k relays fails, and throws naming every failure when all do', async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const a = new MultiMailbox({ urls: urls(), identity: alice });
    const b = new MultiMailbox({ urls: urls(), identity: bob, guests: [alice.publicKey] });
    const [first, second] = b.ownRelays as [string, string];

    relayAt(first).failNext('/command', 'invalid', 1);
    const s = await a.send(bob.publicKey, 'through one');
    expect(s.relays.map((r) => r.url)).toEqual([first, second]);
    expect(s.failures.map((f) => f.url)).toEqual([first]);
    expect(s.failures[0]!.error).toBeInstanceOf(RelayHttpError);
    expect(isRelayFailure(s.relays[0]!)).toBe(true);

    // Stored on the second relay only; reading works with the first one failing, or with both up.
    relayAt(first).failNext('/command', 'invalid', 1);
    const got = await b.receive();
    expect(got.failures.map((f) => f.url)).toEqual([first]);
    expect(got.messages.map((m) => [m.text, m.relays])).toEqual([['through one', [second]]]);
    expect((await b.receive()).messages.map((m) => [m.text, m.relays])).toEqual([['through one', [second]]]);

    relayAt(first).failNext('/command', 'invalid', 1);
    relayAt(second).failNext('/command', 'invalid', 1);
    const err = await a.send(bob.publicKey, 'nowhere').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AllRelaysFailedError);
    const all = err as AllRelaysFailedError;
    expect(all.failures.map((f) => f.url)).toEqual([first, second]);
    expect(all.message).toContain(`send to ${b64(bob.hpk)} failed on every relay (2): ${first}: relay answered 400`);
    expect(all.message).toContain(`; ${second}: relay answered 400`);
  });

  it('keeps the earliest time of a message found on several relays', async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const a = new MultiMailbox({ urls: urls(), identity: alice });
    const b = new MultiMailbox({ urls: urls(), identity: bob });
    const { nonce } = await a.send(bob.publicKey, 'x');
    const [first, second] = b.ownRelays as [string, string];
    const copy = relayAt(second).mailboxes.get(b64(bob.hpk))![0]!;
    const earliest = relayAt(first).mailboxes.get(b64(bob.hpk))![0]!.time - 7;
    copy.time = earliest;
    const got = await b.receive();
    expect(got.messages.map((m) => [m.nonce, m.time, m.relays])).toEqual([[nonce, earliest, [first, second]]]);
  });

  it('refuses bad arguments before any request', async () => {
    const id = generateIdentity();
    expect(() => new MultiMailbox({ urls: [], identity: id })).toThrow(/the list is empty/);
    expect(() => new MultiMailbox({ urls: urls(), identity: id, k: 4 })).toThrow(/k must be an integer from 1 to the number of distinct relays \(3\), not 4/);
    expect(() => new MultiMailbox({ urls: urls(), identity: undefined as unknown as typeof id })).toThrow(/an identity is required/);
    expect(new MultiMailbox({ urls: [urls()[0]!], identity: id }).k).toBe(1);
    const m = new MultiMailbox({ urls: urls(), identity: id });
    const before = relays.map((r) => r.log.length);
    await expect(m.send({ hpk: id.hpk }, 'x')).rejects.toThrow(/cannot encrypt to a bare hpk/);
    await expect(m.send('not a key', 'x')).rejects.toThrow(IdentityError);
    await expect(m.send(id.publicKey, 42 as unknown as string)).rejects.toThrow(UsageError);
    await expect(m.receive({ from: ['bad'] })).rejects.toThrow(IdentityError);
    await expect(m.delete('nonce' as unknown as string[])).rejects.toThrow(UsageError);
    expect(() => m.mailboxAt('https://elsewhere.example')).toThrow(/not in this mailbox's relay list/);
    expect(relays.map((r) => r.log.length)).toEqual(before);
  });
});
