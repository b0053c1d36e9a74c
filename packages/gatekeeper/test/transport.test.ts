/**
 * The production-mode decision (REQUIRE_HTTPS) in-process, with fake sockets: TLS, a trusted proxy
 * that says https, loopback, or refused. The process-level test with a real non-loopback peer is
 * test/https/require-https.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { transportOf, type TransportRequest } from '../src/transport.js';

const BASE = { REDIS_URL: 'redis://127.0.0.1:6379', INTERNAL_SECRET: 'sixteen-chars-ok' };

const req = (remoteAddress: string | undefined, headers: Record<string, string | string[]> = {}, encrypted = false): TransportRequest => ({
  socket: { remoteAddress, encrypted },
  headers,
});

describe('transportOf', () => {
  const none = transportOf(loadConfig(BASE));
  const xff = transportOf(loadConfig({ ...BASE, TRUSTED_PROXIES: '10.0.0.0/8, fd00::/8' }));
  const fwd = transportOf(loadConfig({ ...BASE, TRUSTED_PROXIES: '10.0.0.0/8', TRUSTED_PROXY_HEADER: 'forwarded' }));

  it('TLS terminated here is TLS, whoever the peer is', () => {
    expect(none(req('198.51.100.4', {}, true))).toBe('tls');
    expect(none(req('127.0.0.1', {}, true))).toBe('tls');
  });

  it('plain HTTP from loopback (v4 /8, ::1, IPv4-mapped) is loopback; from anywhere else insecure', () => {
    for (const a of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) expect(none(req(a)), a).toBe('loopback');
    for (const a of ['198.51.100.4', '10.1.2.3', '::ffff:10.1.2.3', '2001:db8::1', 'fd00::2', '0.0.0.0', '::']) expect(none(req(a)), a).toBe('insecure');
    // a socket already torn down has no address: refused, not trusted
    expect(none(req(undefined))).toBe('insecure');
  });

  it('an untrusted peer cannot claim https', () => {
    expect(none(req('198.51.100.4', { 'x-forwarded-proto': 'https' }))).toBe('insecure');
    expect(xff(req('198.51.100.4', { 'x-forwarded-proto': 'https' }))).toBe('insecure');
    expect(fwd(req('198.51.100.4', { forwarded: 'proto=https' }))).toBe('insecure');
  });

  it('a trusted proxy that says X-Forwarded-Proto: https is proxied-https; otherwise it is insecure', () => {
    expect(xff(req('10.0.0.5', { 'x-forwarded-proto': 'https' }))).toBe('proxied-https');
    expect(xff(req('::ffff:10.0.0.5', { 'x-forwarded-proto': 'HTTPS' }))).toBe('proxied-https');
    expect(xff(req('fd00::7', { 'x-forwarded-proto': ' https ' }))).toBe('proxied-https');
    expect(xff(req('10.0.0.5', { 'x-forwarded-proto': 'http' }))).toBe('insecure');
    expect(xff(req('10.0.0.5'))).toBe('insecure');
    expect(xff(req('10.0.0.5', { 'x-forwarded-proto': 'wss' }))).toBe('insecure');
  });

  it('reads the right-most X-Forwarded-Proto entry: the one the trusted proxy wrote', () => {
    expect(xff(req('10.0.0.5', { 'x-forwarded-proto': 'http, https' }))).toBe('proxied-https');
    expect(xff(req('10.0.0.5', { 'x-forwarded-proto': 'https,http' }))).toBe('insecure');
    expect(xff(req('10.0.0.5', { 'x-forwarded-proto': ['http', 'https'] }))).toBe('proxied-https');
  });

  it('with TRUSTED_PROXY_HEADER=forwarded, reads proto= of the right-most Forwarded element, and only that header', () => {
    expect(fwd(req('10.0.0.5', { forwarded: 'for=203.0.113.7;proto=https' }))).toBe('proxied-https');
    expect(fwd(req('10.0.0.5', { forwarded: 'for=203.0.113.7;PROTO="https";by=10.0.0.5' }))).toBe('proxied-https');
    expect(fwd(req('10.0.0.5', { forwarded: 'for=1.1.1.1;proto=http, for="[2001:db8::1]:443";proto=https' }))).toBe('proxied-https');
    expect(fwd(req('10.0.0.5', { forwarded: 'for=1.1.1.1;proto=https, for=203.0.113.7;proto=http' }))).toBe('insecure');
    expect(fwd(req('10.0.0.5', { forwarded: 'for=1.1.1.1;proto=https, for=203.0.113.7' }))).toBe('insecure');
    // the other family is not read, so a client cannot smuggle it past a proxy that only writes one
    expect(fwd(req('10.0.0.5', { 'x-forwarded-proto': 'https' }))).toBe('insecure');
    expect(xff(req('10.0.0.5', { forwarded: 'proto=https' }))).toBe('insecure');
  });

  it('a trusted proxy on loopback that says http is still loopback (allowed); saying https makes it proxied-https (HSTS)', () => {
    const local = transportOf(loadConfig({ ...BASE, TRUSTED_PROXIES: '127.0.0.1' }));
    expect(local(req('127.0.0.1', { 'x-forwarded-proto': 'http' }))).toBe('loopback');
    expect(local(req('127.0.0.1', { 'x-forwarded-proto': 'https' }))).toBe('proxied-https');
  });

  it('caches the peer flags per socket, but reads the header of every request', () => {
    const socket = { remoteAddress: '10.0.0.5', encrypted: false };
    expect(xff({ socket, headers: { 'x-forwarded-proto': 'https' } })).toBe('proxied-https');
    expect(xff({ socket, headers: {} })).toBe('insecure');
    expect(xff({ socket, headers: { 'x-forwarded-proto': 'https' } })).toBe('proxied-https');
  });
});
