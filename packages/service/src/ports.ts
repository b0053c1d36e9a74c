/**
 * Free TCP ports on this machine, for whatever a process starts beside itself: the private Redis of
 * `pnpm start`, the admin port of a core's cluster workers, the servers of tests and benchmarks.
 */
import { createServer } from 'node:net';

/**
 * A port nothing listens on now at `host`: the OS picks it, the probe closes it again. Another
 * process may take it before the caller does; callers bind it soon after.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
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
