/**
 * Free TCP ports on this machine, for whatever a process starts beside itself: the private Redis of
 * `pnpm start`, the admin port of a core's cluster workers, the servers of tests and benchmarks.
 */
import { createServer } from 'node:net';

/** Ports this process handed out lately, so two calls in a row never return the same one. */
const recent: number[] = [];
const RECENT_MAX = 256;

function probe(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no free port'))));
    });
  });
}

/**
 * A port nothing listens on now at `host`: the OS picks it, the probe closes it again. Another
 * process may take it before the caller does; callers bind it soon after. The OS may offer a port
 * it just offered (nothing bound it yet), so a port this process handed out lately is skipped:
 * `PORT` and `ADMIN_PORT` taken one after the other always differ.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 64; attempt++) {
    const port = await probe(host);
    if (recent.includes(port)) continue;
    recent.push(port);
    if (recent.length > RECENT_MAX) recent.shift();
    return port;
  }
  throw new Error('no free port: the OS keeps offering ports handed out a moment ago');
}
