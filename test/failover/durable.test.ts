/**
 * REDIS_WAIT_REPLICAS (docs/STORES.md "Durable acknowledgement"): with the replicas gone, an upload
 * waits REDIS_WAIT_TIMEOUT_MS and is answered 503 + Retry-After (BUSY_RETRY_AFTER_SEC); the client
 * resends the same message (same message nonce, a new request) once the store is whole again, and
 * the recipient finds it once, not twice. A delete answers the same way. A 503 here means "not
 * confirmed", not "not done": the primary applied both, and resending them is harmless.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { b64 } from '@zax/protocol';
import { Relay } from '../support/relay.js';
import * as raw from '../support/raw.js';
import { startSentinelGroup, type SentinelGroupHandle } from '../support/redis-topology.js';
import { sentinelSpec } from '../support/store.js';

let group: SentinelGroupHandle;
let relay: Relay;

beforeAll(async () => {
  group = await startSentinelGroup();
  relay = await Relay.start({
    redisUrl: sentinelSpec(group.name, group.sentinels),
    env: { REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '300', BUSY_RETRY_AFTER_SEC: '3' },
  });
});
afterAll(async () => {
  await relay?.stop();
  await group?.stop();
});

it('a write the replicas do not confirm is 503 + Retry-After; resending the same message stores it once', async () => {
  const alice = await raw.connect(relay.url);
  const bob = await raw.connect(relay.url);
  const nonce = b64(raw.rnd(24));
  const payload = { nonce, ctext: 'durable hello' };
  const first = await raw.command(alice, { cmd: 'upload', to: bob.id.hpk, payload });
  expect(first.status).toBe(200);

  const primary = await group.primaryPort();
  const replicas = group.dataPorts.filter((p) => p !== primary);
  await Promise.all(replicas.map((p) => group.kill(p)));

  const t0 = performance.now();
  const second = { nonce: b64(raw.rnd(24)), ctext: 'second' };
  const refused = await raw.command(alice, { cmd: 'upload', to: bob.id.hpk, payload: second });
  const waitedMs = performance.now() - t0;
  expect(refused.status).toBe(503);
  expect(refused.headers.get('retry-after')).toBe('3');
  expect(refused.text).toBe('');
  expect(waitedMs).toBeGreaterThanOrEqual(250); // it waited for the replicas (REDIS_WAIT_TIMEOUT_MS)
  // A delete is a write too.
  expect((await raw.command(bob, { cmd: 'delete', payload: [nonce] })).status).toBe(503);
  // Reads do not wait for replicas.
  const readWhileDown = await raw.command(bob, { cmd: 'count' });
  expect(readWhileDown.status).toBe(200);

  await Promise.all(replicas.map((p) => group.restart(p)));
  await group.waitHealthy(30_000);

  // The primary stored the refused upload (only its replication was unconfirmed). The same message
  // again (same message nonce, a fresh request), twice: replaced, never doubled.
  expect((await raw.command(alice, { cmd: 'upload', to: bob.id.hpk, payload: second })).status).toBe(200);
  expect((await raw.command(alice, { cmd: 'upload', to: bob.id.hpk, payload: second })).status).toBe(200);
  // The refused delete had been applied by the primary too; resending it is harmless.
  expect((await raw.command(bob, { cmd: 'delete', payload: [nonce] })).status).toBe(200);
  const items = JSON.parse((await raw.command(bob, { cmd: 'download' })).plain!) as { data: string; nonce: string }[];
  expect(items.map((i) => [i.data, i.nonce])).toEqual([['second', second.nonce]]);
}, 90_000);

