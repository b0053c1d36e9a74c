/**
 * Free TCP ports on this machine, for whatever a process starts beside itself: the private Redis of
 * `pnpm start`, the admin port of a core's cluster workers, the servers of tests and benchmarks.
 *
 * A port is handed out free and bound a moment later by another process, so something may take it
 * in between. The usual taker is an outgoing connection: its local port comes from the kernel's
 * ephemeral range (Linux: /proc/sys/net/ipv4/ip_local_port_range, 32768–60999 by default), the same
 * range `listen(0)` picks from. So ports are drawn at random from below that range, where no
 * outgoing connection lands, and probed; only when that range is unknown or crowded does the OS
 * pick. Ports this process handed out lately are never handed out again.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Ports this process handed out lately, so two calls in a row never return the same one. */
const recent: number[] = [];
const RECENT_MAX = 256;
/** Lowest port drawn from (above the well-known and most registered service ports). */
const DRAW_LOW = 15_000;
/** Random draws before the OS is asked instead. */
const DRAWS = 20;

/** The first port of the kernel's ephemeral range, or null when it is not known. */
function ephemeralLow(): number | null {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : null;
  } catch {
    return null;
  }
}
const DRAW_HIGH = ((): number | null => {
  const low = ephemeralLow();
  return low !== null && low - 1 - DRAW_LOW >= 1000 ? low - 1 : null;
})();

/** Binds `port` (0: the OS picks) and closes it again; the port, or null when it is taken. */
function probe(host: string, port: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', (e: NodeJS.ErrnoException) => (port !== 0 && (e.code === 'EADDRINUSE' || e.code === 'EACCES') ? resolve(null) : reject(e)));
    srv.listen({ port, host, exclusive: true }, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no free port'))));
    });
  });
}

/**
 * A port nothing listens on now at `host`. Callers bind it soon after; `PORT` and `ADMIN_PORT` taken
 * one after the other always differ.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 64; attempt++) {
    const drawn = DRAW_HIGH !== null && attempt < DRAWS ? DRAW_LOW + Math.floor(Math.random() * (DRAW_HIGH - DRAW_LOW + 1)) : 0;
    if (drawn !== 0 && recent.includes(drawn)) continue;
    const port = await probe(host, drawn);
    if (port === null || recent.includes(port)) continue;
    recent.push(port);
    if (recent.length > RECENT_MAX) recent.shift();
    return port;
  }
  throw new Error('no free port: the OS keeps offering ports handed out a moment ago');
}
