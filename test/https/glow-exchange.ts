/**
 * One full glow.ts exchange against the relay URL given as the first argument: two mailboxes that
 * know each other, connect, upload to the guest, the guest counts, downloads and reads it, deletes
 * it. Run as a separate Node process (bundled by esbuild in glow-child.ts) so that the global fetch
 * glow.ts uses trusts the test CA through NODE_EXTRA_CA_CERTS, which Node reads only at start-up.
 * Prints one JSON line and exits (glow.ts keeps timers running otherwise).
 */
import * as glow from 'glow.ts';

export interface GlowExchangeResult {
  ok: boolean;
  error?: string;
  status?: number;
  connected?: number;
  tokenLength?: number;
  countBefore?: number;
  data?: string[];
  senderTags?: string[];
  /** What glow.ts `delete` answers: the messages left in the mailbox. */
  leftAfterDelete?: number;
  countAfter?: number;
}

async function main(url: string): Promise<GlowExchangeResult> {
  glow.NaCl.setDefaultInstance();
  glow.CryptoStorage.setStorageDriver(new glow.InMemoryStorage());
  const tag = Math.random().toString(36).slice(2);
  const alice = await glow.Mailbox.new(`alice-${tag}`);
  const bob = await glow.Mailbox.new(`bob-${tag}`);
  try {
    await alice.keyRing.addGuest('Bob', bob.keyRing.getPubCommKey());
    await bob.keyRing.addGuest('Alice', alice.keyRing.getPubCommKey());
    const connected = await alice.connectToRelay(url);
    const token = await alice.upload(url, 'Bob', 'over TLS, ünïcødé ✓');
    const countBefore = await bob.count(url);
    const msgs = await bob.download(url);
    const leftAfterDelete = await bob.delete(url, msgs.map((m) => m.nonce));
    const countAfter = await bob.count(url);
    return {
      ok: true,
      connected,
      tokenLength: token.length,
      countBefore,
      data: msgs.map((m) => String(m.data)),
      senderTags: msgs.map((m) => ('senderTag' in m ? String(m.senderTag) : '')),
      leftAfterDelete,
      countAfter,
    };
  } finally {
    alice.clearSession(url);
    bob.clearSession(url);
  }
}

const url = process.argv[2];
if (url !== undefined) {
  main(url).then(
    (r) => {
      process.stdout.write(`${JSON.stringify(r)}\n`);
      process.exit(0);
    },
    (e: unknown) => {
      const err = e as { message?: unknown; status?: unknown; cause?: { code?: unknown } };
      const error = `${String(err.message ?? e)}${err.cause?.code !== undefined ? ` (${String(err.cause.code)})` : ''}`;
      process.stdout.write(`${JSON.stringify({ ok: false, error, ...(typeof err.status === 'number' ? { status: err.status } : {}) })}\n`);
      process.exit(1);
    },
  );
}
