/**
 * A request made as a client that gives up on its own: tests assert that an answer came before
 * that, never that it came under some number of milliseconds. The latency is returned for printing.
 */
import type { Reply } from './helpers.js';

export async function asClient(r: Promise<Reply>, timeoutMs: number): Promise<Reply & { ms: number }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const giveUp = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer before the client's own timeout (${timeoutMs} ms)`)), timeoutMs);
  });
  try {
    const reply = await Promise.race([r, giveUp]);
    return { ...reply, ms: performance.now() - started };
  } finally {
    clearTimeout(timer);
  }
}
