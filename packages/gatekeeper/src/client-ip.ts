/**
 * Who a request comes from, for the throttle (docs/PROTOCOL.md §7: "the client IP is the socket peer
 * address, unless the operator configures a trusted proxy header"). The answer is a bucket name:
 * an IPv4 address, or an IPv6 address cut to IPV6_PREFIX_LENGTH bits (`2001:db8:1:2::/64`), so one
 * host with a /64 cannot mint a new budget per address. IPv4-mapped IPv6 (`::ffff:a.b.c.d`, how a
 * server on `::` sees IPv4 peers) is turned back into IPv4 first.
 *
 * A forwarding header (X-Forwarded-For, or RFC 7239 Forwarded: TRUSTED_PROXY_HEADER picks which one
 * the proxies write) is read only when the socket peer is inside TRUSTED_PROXIES. The chain is
 * walked from the right, skipping trusted hops; the first untrusted address is the client. Anything
 * left of it was written by the client and is ignored. An entry that is not an address stops the
 * walk at the last hop that was vouched for.
 *
 * The peer's bucket is cached on the socket, so keep-alive requests from untrusted peers (all of
 * them, without a proxy) cost no parsing.
 */
import { BlockList, isIP, type Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { Cidr } from './config.js';

export interface ClientIdentityOptions {
  readonly trustedProxies: readonly Cidr[];
  readonly trustedProxyHeader: 'x-forwarded-for' | 'forwarded';
  readonly ipv6PrefixLength: number;
}

/** Returns the bucket name of the client a request comes from. */
export type ClientIdentity = (req: IncomingMessage) => string;

interface Addr {
  readonly family: 'ipv4' | 'ipv6';
  /** IPv4 dotted quad, or IPv6 text without a zone. */
  readonly text: string;
  /** IPv6 only: the 16 bytes. */
  readonly bytes: Uint8Array | null;
}

/** Cached per socket: the peer's bucket name and whether the peer is a trusted proxy. */
const PEER = Symbol('zax.peer');
interface PeerInfo {
  readonly bucket: string;
  readonly addr: Addr | null;
  readonly trusted: boolean;
}
type TaggedSocket = Socket & { [PEER]?: PeerInfo };

/** Bucket name for a peer without an address (a socket already torn down). */
const UNKNOWN = 'unknown';

export function clientIdentity(opts: ClientIdentityOptions): ClientIdentity {
  const trusted = new BlockList();
  for (const c of opts.trustedProxies) trusted.addSubnet(c.address, c.prefix, c.family);
  const anyTrusted = opts.trustedProxies.length > 0;
  const isTrusted = (a: Addr): boolean => anyTrusted && trusted.check(a.text, a.family);
  const bucketOf = (a: Addr): string => (a.family === 'ipv4' ? a.text : ipv6Bucket(a.bytes!, opts.ipv6PrefixLength));
  const headerName = opts.trustedProxyHeader;

  const peerInfo = (socket: TaggedSocket): PeerInfo => {
    const cached = socket[PEER];
    if (cached !== undefined) return cached;
    const addr = parseAddress(socket.remoteAddress ?? '');
    const info: PeerInfo = { bucket: addr === null ? UNKNOWN : bucketOf(addr), addr, trusted: addr !== null && isTrusted(addr) };
    // Only cache a real address: remoteAddress is undefined once the socket is gone.
    if (addr !== null) socket[PEER] = info;
    return info;
  };

  return (req) => {
    const peer = peerInfo(req.socket as TaggedSocket);
    if (!peer.trusted) return peer.bucket;
    const raw = req.headers[headerName];
    if (raw === undefined) return peer.bucket;
    const entries = headerName === 'forwarded' ? forwardedFor(raw) : xffEntries(raw);
    let client = peer.addr!;
    for (let i = entries.length - 1; i >= 0; i--) {
      const a = parseHop(entries[i]!);
      if (a === null) break;
      client = a;
      if (!isTrusted(a)) break;
    }
    return bucketOf(client);
  };
}

const joined = (raw: string | string[]): string => (typeof raw === 'string' ? raw : raw.join(','));

/** X-Forwarded-For: comma-separated addresses, client first. */
function xffEntries(raw: string | string[]): string[] {
  return joined(raw).split(',');
}

/**
 * RFC 7239: elements separated by commas, pairs by semicolons; the `for=` value of each element,
 * in order. An element without `for=` yields "" (not an address: it stops the walk).
 */
function forwardedFor(raw: string | string[]): string[] {
  const out: string[] = [];
  // Commas and semicolons inside quoted strings are not separators.
  let inQuotes = false;
  let element = '';
  const flush = (): void => {
    let value = '';
    for (const pair of element.split(';')) {
      const eq = pair.indexOf('=');
      if (eq !== -1 && pair.slice(0, eq).trim().toLowerCase() === 'for') value = pair.slice(eq + 1).trim();
    }
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    out.push(value);
    element = '';
  };
  for (const ch of joined(raw)) {
    if (ch === '"') inQuotes = !inQuotes;
    if (ch === ',' && !inQuotes) flush();
    else element += ch;
  }
  flush();
  return out;
}

/** One hop of a forwarding header: an address, optionally `[v6]:port` or `v4:port`. */
function parseHop(entry: string): Addr | null {
  let s = entry.trim();
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end === -1) return null;
    s = s.slice(1, end);
  } else {
    const colon = s.indexOf(':');
    if (colon !== -1 && s.indexOf(':', colon + 1) === -1) s = s.slice(0, colon); // v4:port
  }
  return parseAddress(s);
}

/** An address as text → Addr (IPv4-mapped IPv6 becomes IPv4), or null if it is not one. */
export function parseAddress(text: string): Addr | null {
  const pct = text.indexOf('%');
  const s = pct === -1 ? text : text.slice(0, pct);
  const v = isIP(s);
  if (v === 4) return { family: 'ipv4', text: s, bytes: null };
  if (v !== 6) return null;
  const bytes = ipv6Bytes(s);
  if (bytes === null) return null;
  if (isMappedV4(bytes)) return { family: 'ipv4', text: `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`, bytes: null };
  return { family: 'ipv6', text: s, bytes };
}

/** `::ffff:a.b.c.d`: ten zero bytes, then ff ff. */
function isMappedV4(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** The 16 bytes of an IPv6 address already accepted by `isIP` (no zone). */
function ipv6Bytes(s: string): Uint8Array | null {
  const bytes = new Uint8Array(16);
  let head = s;
  if (s.includes('.')) {
    const cut = s.lastIndexOf(':');
    const quad = s.slice(cut + 1).split('.').map(Number);
    if (quad.length !== 4) return null;
    for (let i = 0; i < 4; i++) bytes[12 + i] = quad[i]!;
    head = `${s.slice(0, cut + 1)}0:0`;
  }
  const dbl = head.indexOf('::');
  const left = dbl === -1 ? head.split(':') : head.slice(0, dbl) === '' ? [] : head.slice(0, dbl).split(':');
  const right = dbl === -1 ? [] : head.slice(dbl + 2) === '' ? [] : head.slice(dbl + 2).split(':');
  const zeros = 8 - left.length - right.length;
  if (zeros < 0 || (dbl === -1 && zeros !== 0)) return null;
  const groups = [...left, ...new Array<string>(zeros).fill('0'), ...right];
  const tail = s.includes('.') ? 6 : 8; // the last two groups are the dotted quad
  for (let g = 0; g < tail; g++) {
    const n = parseInt(groups[g]!, 16);
    if (!(n >= 0 && n <= 0xffff)) return null;
    bytes[2 * g] = n >> 8;
    bytes[2 * g + 1] = n & 0xff;
  }
  return bytes;
}

/** The first `prefix` bits as `a:b:c:d::/prefix` (groups in lowercase hex, zero groups as 0). */
export function ipv6Bucket(bytes: Uint8Array, prefix: number): string {
  const groups: string[] = [];
  const lastGroup = Math.ceil(prefix / 16);
  for (let g = 0; g < lastGroup; g++) {
    let n = (bytes[2 * g]! << 8) | bytes[2 * g + 1]!;
    const bitsHere = Math.min(16, prefix - 16 * g);
    if (bitsHere < 16) n &= (0xffff << (16 - bitsHere)) & 0xffff;
    groups.push(n.toString(16));
  }
  return `${groups.join(':')}${lastGroup < 8 ? '::' : ''}/${prefix}`;
}
