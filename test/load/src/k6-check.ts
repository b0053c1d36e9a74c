/**
 * `pnpm bench:k6-check`: the CI check of the k6 scripts (k6 itself is not installable here).
 *  1. bundles test/load/k6/*.ts with esbuild (the same bundles operators run with k6);
 *  2. cross-checks the portable platform the bundles use (@zax/protocol's h2 on a pure SHA-256,
 *     tweetnacl, a pure UTF-8 decoder) against node:crypto, Buffer and sodium-native;
 *  3. starts a relay (or uses --url) and runs every bundle briefly under Node with a stand-in for
 *     `k6`, `k6/http`, `k6/metrics`, `k6/crypto` and `k6/execution`, evaluating its thresholds.
 * Exits non-zero when a bundle fails to build, a cross-check differs, or a script run fails; a
 * relay that answers 429 (its per-client budgets throttle the one-address check) is named as such.
 *
 *   --build-only     only bundle (for operators: then `k6 run test/load/k6/dist/<scenario>.js`)
 *   --url URL        run against this relay instead of starting one
 *   --seconds N      seconds per script (default 2)     --vus N   VUs per script (default 2)
 *   --only a,b       run only these scripts             --relay-env K=V  for the relay it starts
 * BENCH_ALLOW_FILES_405=1 turns a 405 from a relay without file commands into a warning.
 */
import { createHash, randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { LocalRelay } from './harness.js';
import { buildK6Bundles } from './k6-build.js';
import { platformByName } from './platform-node.js';
import { h2, utf8Encode } from '@zax/protocol';
import { portablePlatform, utf8Decode } from './shared/portable.js';
import { THROTTLED, throttledMessage } from './shared/throttle.js';
import { makeNonce, type Platform } from './shared/wire.js';

function crossCheck(): string[] {
  const problems: string[] = [];
  const expect = (cond: boolean, what: string): void => {
    if (!cond) problems.push(what);
  };
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
  // docs/PROTOCOL.md §3.1 worked examples, and h2 against node:crypto's SHA-256.
  expect(hex(h2(new Uint8Array(0))) === 'e2f61c3f71d1defd3fa999dfa36953755c690689799962b48bebd836974e8cf9', 'h2(empty) vector');
  expect(hex(h2(utf8Encode('abc'))) === '4f16deb3ad853b88d8585b018319ad61455c1aba98a77a72b8fd324cbf0e775a', 'h2(abc) vector');
  const nodeSha256 = (m: Uint8Array): Buffer => createHash('sha256').update(m).digest();
  for (let len = 0; len < 300; len++) {
    const m = randomBytes(len);
    if (hex(h2(m)) !== hex(nodeSha256(nodeSha256(Buffer.concat([Buffer.alloc(64), m]))))) {
      problems.push(`h2 differs from node:crypto at length ${len}`);
      break;
    }
  }
  const text = 'zax ✓ 𝄞 é';
  expect(utf8Decode(Buffer.from(text, 'utf8')) === text, 'utf8 decode');
  // The two platforms agree on boxes and precomputed keys.
  const rnd = (n: number): Uint8Array => randomBytes(n);
  const portable: Platform = portablePlatform(rnd);
  const node: Platform = platformByName('best');
  for (let i = 0; i < 20; i++) {
    const a = node.keyPair();
    const b = portable.keyPair();
    const k1 = node.before(b.publicKey, a.secretKey)!;
    const k2 = portable.before(a.publicKey, b.secretKey)!;
    expect(hex(k1) === hex(k2), 'precomputed keys differ between platforms');
    const msg = rnd(i * 37);
    const nonce = makeNonce(portable);
    const box = portable.boxAfter(msg, nonce, k2);
    expect(hex(node.boxAfter(msg, nonce, k1)) === hex(box), 'boxes differ between platforms');
    const opened = node.boxOpenAfter(box, nonce, k1);
    expect(opened !== null && hex(opened) === hex(msg), 'box does not open across platforms');
  }
  expect(portable.before(new Uint8Array(32), rnd(32)) === null, 'portable before() accepts a low-order key');
  return problems;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      'build-only': { type: 'boolean', default: false },
      url: { type: 'string' },
      seconds: { type: 'string', default: '2' },
      vus: { type: 'string', default: '2' },
      'relay-env': { type: 'string', multiple: true },
      only: { type: 'string' },
    },
    strict: true,
  });
  const t0 = Date.now();
  const bundles = await buildK6Bundles();
  for (const b of bundles) console.log(`bundled ${b} (${(statSync(b).size / 1024).toFixed(1)} KiB)`);
  if (values['build-only']) return 0;

  const problems = crossCheck();
  for (const p of problems) console.log(`cross-check FAILED: ${p}`);
  if (problems.length === 0) console.log('cross-check: portable (k6) platform agrees with node:crypto/sodium-native');

  // Imported only now: it registers the k6 module hooks.
  const { runK6Script } = await import('./k6-standin/runner.js');
  let relay: LocalRelay | null = null;
  let url = values.url;
  if (url === undefined) {
    const env: Record<string, string> = {};
    for (const kv of values['relay-env'] ?? []) {
      const i = kv.indexOf('=');
      if (i <= 0) throw new Error(`--relay-env wants K=V, got ${kv}`);
      env[kv.slice(0, i)] = kv.slice(i + 1);
    }
    relay = await LocalRelay.start({ env });
    url = relay.url;
  }
  let passed = 0;
  let failed = problems.length > 0 ? 1 : 0;
  let throttled = 0;
  try {
    for (const bundle of bundles) {
      const name = basename(bundle, '.js');
      if (values.only !== undefined && !values.only.split(',').includes(name)) continue;
      const env: Record<string, string> = {
        RELAY_URL: url,
        VUS: values.vus!,
        DURATION: `${values.seconds!}s`,
        // Generous for a shared CI machine running tweetnacl in the stand-in; it checks the
        // thresholds evaluate, not the relay's speed.
        P99_MS: '5000',
        FILE_SIZE: '300000',
        CHUNK_SIZE: '100000',
      };
      let r: Awaited<ReturnType<typeof runK6Script>>;
      try {
        r = await runK6Script(bundle, env, Number(values.seconds) + 10);
      } catch (e) {
        failed++;
        console.log(`FAIL k6/${name}: ${e instanceof Error ? e.message : String(e)}`);
        continue;
      }
      const checks = `${r.checks.passes}/${r.checks.passes + r.checks.fails} checks`;
      const fileSkip = name === 'files' && r.aborted !== null && r.aborted.includes('405') && process.env.BENCH_ALLOW_FILES_405 === '1';
      // A throttled script measured the relay's per-client budgets: never a pass.
      const scriptThrottled = r.statuses[String(THROTTLED)] ?? 0;
      throttled += scriptThrottled;
      const ok = r.ok && scriptThrottled === 0;
      if (ok || fileSkip) passed++;
      else failed++;
      console.log(`${ok ? 'PASS' : fileSkip ? 'SKIP' : 'FAIL'} k6/${name}: ${r.iterations} iterations by ${r.vus} VUs in ${r.seconds.toFixed(1)} s, ${checks}`);
      if (scriptThrottled > 0) console.log(`    THROTTLED: ${throttledMessage(scriptThrottled)}`);
      for (const t of r.thresholds) console.log(`    ${t.ok ? 'ok  ' : 'FAIL'} ${t.metric}: ${t.expression} (${t.value === null ? 'no data' : Number(t.value.toFixed(3))})`);
      for (const e of r.errors) console.log(`    error: ${e}`);
      for (const e of r.exceptions) console.log(`    exception: ${e}`);
      if (r.aborted !== null) console.log(`    aborted: ${r.aborted}`);
      if (relay?.deadService()) console.log(`    ${relay.deadService()}`);
    }
  } finally {
    if (relay !== null) await relay.stop();
  }
  console.log(`k6-check finished in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  if (throttled > 0) {
    const own = relay !== null ? ' (the relay this check starts has them off unless --relay-env sets them)' : '';
    console.log(`k6-check: INVALID RUN: ${throttledMessage(throttled)}${own}`);
  }
  console.log(`k6-check: ${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exit(1);
  },
);
