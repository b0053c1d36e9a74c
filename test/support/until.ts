/**
 * Waiting for something a test can observe: polls `check` every 50 ms until it gives a value (not
 * `false`, not `undefined`) and returns it. The patience is a guard against a hang, never a timing
 * assertion: a check that does not come true by then fails the test naming `what`.
 */
export async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, patienceMs = 20_000): Promise<T> {
  const deadline = Date.now() + patienceMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`still not true after ${patienceMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
