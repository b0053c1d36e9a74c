/**
 * How a request reached the gatekeeper, for production mode (REQUIRE_HTTPS) and HSTS:
 *
 * - `tls`: over TLS that this process terminated;
 * - `proxied-https`: from a peer inside TRUSTED_PROXIES that says the client used HTTPS — the
 *   right-most value of `X-Forwarded-Proto`, or the `proto=` of the right-most `Forwarded` element
 *   (TRUSTED_PROXY_HEADER picks the family, as for client addresses, so a client cannot smuggle the
 *   other one through). Right-most, because that is the value the trusted peer wrote or passed on;
 *   anything left of it may come from the client;
 * - `loopback`: plain HTTP from 127.0.0.0/8 or ::1 (a sidecar proxy, a local health check, `pnpm start`);
 * - `insecure`: anything else: plain HTTP from the network.
 *
 * A peer's trust and loopback flags are cached on its socket; only the header is read per request.
 */
import { BlockList, type Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { parseAddress } from './client-ip.js';
import type { Cidr } from './config.js';

export type Transport = 'tls' | 'proxied-https' | 'loopback' | 'insecure';

export interface TransportOptions {
  readonly trustedProxies: readonly Cidr[];
  readonly trustedProxyHeader: 'x-forwarded-for' | 'forwarded';
}

/** What the decision reads of a request (node:http IncomingMessage fits; tests pass plain objects). */
export interface TransportRequest {
  readonly socket: { readonly encrypted?: boolean; readonly remoteAddress?: string | undefined };
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

export type TransportOf = (req: TransportRequest | IncomingMessage) => Transport;

interface PeerFlags {
  readonly trusted: boolean;
  readonly loopback: boolean;
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

export function transportOf(opts: TransportOptions): TransportOf {
  const trusted = new BlockList();
  for (const c of opts.trustedProxies) trusted.addSubnet(c.address, c.prefix, c.family);
  const anyTrusted = opts.trustedProxies.length > 0;
  const saysHttps = opts.trustedProxyHeader === 'forwarded' ? forwardedProtoIsHttps : xForwardedProtoIsHttps;
  // One cache slot per decision function: flags depend on this instance's TRUSTED_PROXIES.
  const PEER = Symbol('zax.transportPeer');

  const flagsOf = (socket: TransportRequest['socket']): PeerFlags => {
    const tagged = socket as { [k: symbol]: PeerFlags | undefined };
    const cached = tagged[PEER];
    if (cached !== undefined) return cached;
    const addr = parseAddress(socket.remoteAddress ?? '');
    const flags: PeerFlags =
      addr === null
        ? { trusted: false, loopback: false }
        : { trusted: anyTrusted && trusted.check(addr.text, addr.family), loopback: LOOPBACK.check(addr.text, addr.family) };
    // Only a real address is cached: remoteAddress is undefined once the socket is gone.
    if (addr !== null) tagged[PEER] = flags;
    return flags;
  };

  return (req) => {
    const socket = req.socket as Socket & TransportRequest['socket'];
    if (socket.encrypted === true) return 'tls';
    const peer = flagsOf(socket);
    if (peer.trusted && saysHttps(req.headers)) return 'proxied-https';
    return peer.loopback ? 'loopback' : 'insecure';
  };
}

const joined = (raw: string | string[]): string => (typeof raw === 'string' ? raw : raw.join(','));

/** `X-Forwarded-Proto: https` (right-most entry of a list). */
function xForwardedProtoIsHttps(headers: TransportRequest['headers']): boolean {
  const raw = headers['x-forwarded-proto'];
  if (raw === undefined) return false;
  const entries = joined(raw).split(',');
  return entries[entries.length - 1]!.trim().toLowerCase() === 'https';
}

/** RFC 7239 `Forwarded`: the `proto=` of the right-most element is `https` (quoted or not). */
function forwardedProtoIsHttps(headers: TransportRequest['headers']): boolean {
  const raw = headers['forwarded'];
  if (raw === undefined) return false;
  const text = joined(raw);
  // The last element starts after the last comma outside a quoted string.
  let inQuotes = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') inQuotes = !inQuotes;
    else if (ch === ',' && !inQuotes) start = i + 1;
  }
  for (const pair of text.slice(start).split(';')) {
    const eq = pair.indexOf('=');
    if (eq === -1 || pair.slice(0, eq).trim().toLowerCase() !== 'proto') continue;
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    return value.toLowerCase() === 'https';
  }
  return false;
}
