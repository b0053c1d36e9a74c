/** Stand-in for `k6/crypto`: randomBytes (the only function the scripts use). */
import { randomFillSync } from 'node:crypto';

export function randomBytes(size: number): ArrayBuffer {
  const b = new Uint8Array(size);
  randomFillSync(b);
  return b.buffer;
}

export default { randomBytes };
