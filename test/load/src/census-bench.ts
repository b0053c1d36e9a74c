/**
 * `pnpm bench:census`: what one census (packages/core/src/census.ts) costs the store. It starts a
 * private memory-only redis-server, fills it with `--mailboxes` mailboxes of `--messages` live
 * messages each (their expiry sets, as the upload script writes them, plus as many other keys per
 * mailbox as a real one has, so SCAN walks a realistic keyspace), runs the census `--rounds` times
 * and prints, per census, its wall time and the Redis CPU it used (INFO used_cpu_*), per mailbox
 * and per minute at the default CENSUS_INTERVAL_SEC. Not a test.
 *
 *   pnpm bench:census [--mailboxes 100000] [--messages 3] [--rounds 3] [--json]
 */
import { parseArgs } from 'node:util';
import { createFileStore, createKeys, createRedis, takeCensus, waitReady } from '@zax/core';
import { RedisServer } from '@zax/service';
import { RedisInfo } from './redis-info.js';

const { values: args } = parseArgs({
  options: {
    mailboxes: { type: 'string', default: '100000' },
    messages: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    json: { type: 'boolean', default: false },
  },
});
const MAILBOXES = Number(args.mailboxes);
const MESSAGES = Number(args.messages);
const ROUNDS = Number(args.rounds);
if (!(MAILBOXES >= 1) || !(MESSAGES >= 1) || !(ROUNDS >= 1)) throw new Error('--mailboxes, --messages and --rounds must be positive');
/** CENSUS_INTERVAL_SEC's default. */
const DEFAULT_INTERVAL_SEC = 60;

const server = await RedisServer.start();
const keys = createKeys('bench:census:');
const redis = createRedis(server.url, { commandTimeoutMs: 60_000 });
const info = await RedisInfo.connect(server.url);
try {
  await waitReady(redis, 10_000);
  const now = Date.now();
  const fillStarted = performance.now();
  for (let i = 0; i < MAILBOXES; i += 1000) {
    const p = redis.pipeline();
    for (let j = i; j < Math.min(MAILBOXES, i + 1000); j++) {
      const mk = keys.mailbox(`hpk${j}`);
      const exp: (string | number)[] = [];
      const order: (string | number)[] = [];
      const msgs: string[] = [];
      for (let m = 0; m < MESSAGES; m++) {
        exp.push(now + 86_400_000, String(m));
        order.push(m, `nonce-${j}-${m}`);
        msgs.push(String(m), 'x'.repeat(64));
      }
      p.zadd(mk.exp, ...exp);
      p.zadd(mk.order, ...order);
      p.hset(mk.msgs, ...msgs);
      p.hset(keys.session(`hpk${j}`), 'key', 'k', 'exp', String(now + 3_600_000));
    }
    for (const [err] of (await p.exec()) ?? []) if (err) throw err;
  }
  const fillSec = (performance.now() - fillStarted) / 1000;
  const deps = { redis, keys, files: createFileStore(redis, keys) };
  const rounds: { ms: number; redisCpuMs: number; mailboxes: number; messages: number; complete: boolean }[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const cpu0 = await info.cpuMs();
    const t0 = performance.now();
    const c = await takeCensus(deps, Date.now());
    const ms = performance.now() - t0;
    const redisCpuMs = (await info.cpuMs()) - cpu0;
    if (c.mailboxes !== MAILBOXES || c.messages !== MAILBOXES * MESSAGES) throw new Error(`census counted ${c.mailboxes} mailboxes, ${c.messages} messages`);
    rounds.push({ ms, redisCpuMs, mailboxes: c.mailboxes, messages: c.messages, complete: c.complete });
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const ms = median(rounds.map((r) => r.ms));
  const cpu = median(rounds.map((r) => r.redisCpuMs));
  const keysTotal = await redis.dbsize();
  if (args.json) {
    console.log(JSON.stringify({ mailboxes: MAILBOXES, messagesPerMailbox: MESSAGES, keys: keysTotal, fillSec, rounds }, null, 2));
  } else {
    console.log(`${MAILBOXES} mailboxes × ${MESSAGES} messages (${keysTotal} keys, filled in ${fillSec.toFixed(1)} s); ${ROUNDS} census(es), counts checked`);
    for (const r of rounds) console.log(`  census: ${r.ms.toFixed(0)} ms wall, Redis CPU ${r.redisCpuMs.toFixed(0)} ms${r.complete ? '' : ' (incomplete)'}`);
    console.log(
      `median: ${ms.toFixed(0)} ms wall, Redis CPU ${cpu.toFixed(0)} ms (${((cpu * 1000) / MAILBOXES).toFixed(1)} µs per mailbox); ` +
        `at CENSUS_INTERVAL_SEC=${DEFAULT_INTERVAL_SEC}: ${((cpu / (DEFAULT_INTERVAL_SEC * 1000)) * 100).toFixed(2)} % of one Redis core`,
    );
  }
} finally {
  info.close();
  redis.disconnect();
  await server.stop();
}
