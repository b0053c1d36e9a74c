/**
 * The one message both services print when a server cannot listen: which port, which variable sets
 * it, and what to do. It takes the error's code, so it can be tested without a socket.
 */

/** Why a server cannot listen on `host`:`port` (set by `portVariable`, the host by `hostVariable`), and the fix. */
export function cannotListenMessage(code: string | undefined, host: string, port: number, portVariable: string, hostVariable: string): string {
  const where = `port ${port} on ${host} (${portVariable})`;
  if (code === 'EADDRINUSE') return `cannot listen: ${where} is already in use; set ${portVariable}=… to another port, or stop what listens there`;
  if (code === 'EACCES') return `cannot listen: no permission to use ${where}; set ${portVariable}=… to a port above 1023`;
  if (code === 'EADDRNOTAVAIL') return `cannot listen: ${host} is not an address of this machine; set ${hostVariable}=… to one that is`;
  return `cannot listen on ${where}: ${code ?? 'unknown error'}`;
}
