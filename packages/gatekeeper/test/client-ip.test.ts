/** Client identity for the throttle (docs/PROTOCOL.md §7; trusted proxies by CIDR, IPv4-mapped peers). */
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { clientIdentity, ipv6Bucket, parseAddress, type ClientIdentityOptions } from '../src/client-ip.js';
import { loadConfig } from '../src/config.js';

const BASE = { REDIS_URL: 'redis://127.0.0.1:6379', INTERNAL_SECRET: 'sixteen-chars-ok' };

function options(env: Record<string, string> = {}): ClientIdentityOptions {
  return loadConfig({ ...BASE, ...env });
}

/** A request as the identity function sees it: the socket's peer and the headers. */
function req(remoteAddress: string | undefined, headers: Record<string, string | string[]> = {}): IncomingMessage {
  return { socket: { remoteAddress }, headers } as unknown as IncomingMessage;
}

describe('socket address', () => {
  const id = clientIdentity(options());

  it('is an IPv4 peer as it is', () => {
    expect(id(req('203.0.113.9'))).toBe('203.0.113.9');
  });

  it('turns IPv4-mapped IPv6 (a server on ::) back into IPv4, in both notations', () => {
    expect(id(req('::ffff:203.0.113.9'))).toBe('203.0.113.9');
    expect(id(req('::ffff:cb00:7109'))).toBe('203.0.113.9');
    expect(id(req('0:0:0:0:0:ffff:203.0.113.9'))).toBe('203.0.113.9');
  });

  it('groups IPv6 peers by their /64 (IPV6_PREFIX_LENGTH), whatever the notation', () => {
    const a = id(req('2001:db8:1:2:aaaa:bbbb:cccc:dddd'));
    expect(a).toBe('2001:db8:1:2::/64');
    expect(id(req('2001:0db8:0001:0002::1'))).toBe(a);
    expect(id(req('2001:db8:1:2::ffff:1.2.3.4'))).toBe(a);
    expect(id(req('fe80::1%eth0'))).toBe('fe80:0:0:0::/64');
    expect(id(req('2001:db8:1:3::1'))).not.toBe(a);
  });

  it('uses another prefix length when configured', () => {
    const id56 = clientIdentity(options({ IPV6_PREFIX_LENGTH: '56' }));
    expect(id56(req('2001:db8:1:2ff::1'))).toBe('2001:db8:1:200::/56');
    expect(id56(req('2001:db8:1:2ff::1'))).toBe(id56(req('2001:db8:1:201::1')));
    const id128 = clientIdentity(options({ IPV6_PREFIX_LENGTH: '128' }));
    expect(id128(req('2001:db8::1'))).toBe('2001:db8:0:0:0:0:0:1/128');
  });

  it('ignores forwarding headers from a peer that is not a trusted proxy (spoofing)', () => {
    const headers = { 'x-forwarded-for': '198.51.100.1', forwarded: 'for=198.51.100.2' };
    expect(id(req('203.0.113.9', headers))).toBe('203.0.113.9');
    const trusting = clientIdentity(options({ TRUSTED_PROXIES: '10.0.0.0/8' }));
    expect(trusting(req('203.0.113.9', headers))).toBe('203.0.113.9');
  });

  it('names a socket without an address "unknown"', () => {
    expect(id(req(undefined))).toBe('unknown');
  });
});

describe('X-Forwarded-For from trusted proxies', () => {
  const id = clientIdentity(options({ TRUSTED_PROXIES: '10.0.0.0/8,fd00::/8' }));

  it('takes the right-most address that is not a trusted proxy', () => {
    expect(id(req('10.0.0.1', { 'x-forwarded-for': '198.51.100.7' }))).toBe('198.51.100.7');
    // a client-written entry on the left is ignored; trusted hops on the right are skipped
    expect(id(req('10.0.0.1', { 'x-forwarded-for': '1.2.3.4, 198.51.100.7, 10.9.9.9' }))).toBe('198.51.100.7');
    expect(id(req('::ffff:10.0.0.1', { 'x-forwarded-for': '198.51.100.7' }))).toBe('198.51.100.7');
  });

  it('trusts IPv6 CIDRs, and groups an IPv6 client by prefix', () => {
    expect(id(req('fd12::5', { 'x-forwarded-for': '2001:db8:5:6::7, fd00::1' }))).toBe('2001:db8:5:6::/64');
    expect(id(req('fd12::5', { 'x-forwarded-for': '[2001:db8:5:6::7]:4711' }))).toBe('2001:db8:5:6::/64');
  });

  it('accepts an IPv4 entry with a port and an IPv4-mapped entry', () => {
    expect(id(req('10.0.0.1', { 'x-forwarded-for': '198.51.100.7:5555' }))).toBe('198.51.100.7');
    expect(id(req('10.0.0.1', { 'x-forwarded-for': '::ffff:198.51.100.7' }))).toBe('198.51.100.7');
  });

  it('uses the peer when the header is missing, and the left-most entry when every hop is trusted', () => {
    expect(id(req('10.0.0.1'))).toBe('10.0.0.1');
    expect(id(req('10.0.0.1', { 'x-forwarded-for': '10.1.1.1, 10.2.2.2' }))).toBe('10.1.1.1');
  });

  it('stops at an entry that is not an address: the last vouched-for hop is the client', () => {
    expect(id(req('10.0.0.1', { 'x-forwarded-for': 'garbage' }))).toBe('10.0.0.1');
    expect(id(req('10.0.0.1', { 'x-forwarded-for': '198.51.100.9, nonsense, 10.5.5.5' }))).toBe('10.5.5.5');
    // many made-up values never become many buckets
    const seen = new Set([0, 1, 2, 3].map((i) => id(req('10.0.0.1', { 'x-forwarded-for': `spoof-${i}` }))));
    expect([...seen]).toEqual(['10.0.0.1']);
  });

  it('does not read Forwarded when the proxies write X-Forwarded-For', () => {
    expect(id(req('10.0.0.1', { forwarded: 'for=198.51.100.2' }))).toBe('10.0.0.1');
  });
});

describe('Forwarded (RFC 7239) from trusted proxies', () => {
  const id = clientIdentity(options({ TRUSTED_PROXIES: '10.0.0.0/8', TRUSTED_PROXY_HEADER: 'forwarded' }));

  it('reads the for= of the right-most untrusted element, quoted, with ports and brackets', () => {
    expect(id(req('10.0.0.1', { forwarded: 'for=198.51.100.2;proto=https;by=10.0.0.1' }))).toBe('198.51.100.2');
    expect(id(req('10.0.0.1', { forwarded: 'for=1.1.1.1, for="198.51.100.2:4711", for=10.3.3.3' }))).toBe('198.51.100.2');
    expect(id(req('10.0.0.1', { forwarded: 'For="[2001:db8:cafe::17]:4711"' }))).toBe('2001:db8:cafe:0::/64');
    expect(id(req('10.0.0.1', { forwarded: ['for=1.1.1.1', 'for=198.51.100.3'] }))).toBe('198.51.100.3');
  });

  it('stops at an obfuscated or unknown node, and ignores X-Forwarded-For', () => {
    expect(id(req('10.0.0.1', { forwarded: 'for=198.51.100.2, for=unknown' }))).toBe('10.0.0.1');
    expect(id(req('10.0.0.1', { forwarded: 'for=_hidden' }))).toBe('10.0.0.1');
    expect(id(req('10.0.0.1', { forwarded: 'proto=https' }))).toBe('10.0.0.1');
    expect(id(req('10.0.0.1', { 'x-forwarded-for': '198.51.100.2' }))).toBe('10.0.0.1');
  });
});

describe('address helpers', () => {
  it('parseAddress refuses what is not an address', () => {
    for (const bad of ['', 'x', '1.2.3', '1.2.3.256', '01.2.3.4', '2001:db8::g', '[::1]']) expect(parseAddress(bad)).toBeNull();
  });

  it('ipv6Bucket masks inside a group', () => {
    expect(ipv6Bucket(parseAddress('2001:db8:ffff::')!.bytes!, 36)).toBe('2001:db8:f000::/36');
    expect(ipv6Bucket(parseAddress('2001:db8::')!.bytes!, 1)).toBe('0::/1');
  });
});
