// Smoke test of a running relay, used by deploy/check-build.sh (and handy by hand):
//
//   node deploy/tools/smoke.mjs <relay URL> [runtime tree]
//
// Runs a handshake at difficulty 0: POST /start_session with a fresh client token, then
// POST /verify_session with h2(client_token) and h2(client_token ‖ relay_token). The verify step
// makes the gatekeeper ask the core to mint session keys, so both tiers, both Redis stores, the
// Lua scripts and the shared secret are exercised. h2 comes from the runtime tree's @zax/protocol
// when one is given (so its production install is loaded too), else from node:crypto.
// Over HTTPS (a private CA: NODE_EXTRA_CA_CERTS=ca.crt) it also requires an HSTS header and that
// the same port refuses plain HTTP.
import { createHash, randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const [base, tree] = process.argv.slice(2);
if (!base) {
  process.stderr.write('usage: node smoke.mjs <relay URL> [runtime tree]\n');
  process.exit(2);
}

let h2 = (...parts) => {
  const inner = createHash('sha256').update(Buffer.alloc(64));
  for (const p of parts) inner.update(p);
  return createHash('sha256').update(inner.digest()).digest();
};
if (tree) ({ h2 } = await import(pathToFileURL(join(tree, 'packages/protocol/dist/index.js')).href));
/** Base64 of bytes, whichever h2 made them (the protocol's gives a Uint8Array, node:crypto a Buffer). */
const b64 = (bytes) => Buffer.from(bytes).toString('base64');

async function post(path, body) {
  const res = await fetch(new URL(path, base), {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body,
    signal: AbortSignal.timeout(5000),
  });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

function fail(msg) {
  process.stderr.write(`smoke: ${msg}\n`);
  process.exit(1);
}

const clientToken = randomBytes(32);
const start = await post('/start_session', clientToken.toString('base64'));
if (start.status !== 200) fail(`/start_session: HTTP ${start.status}`);
const [rtB64, difficulty] = start.text.split('\r\n');
const relayToken = Buffer.from(rtB64 ?? '', 'base64');
if (relayToken.length !== 32 || !/^\d+$/.test(difficulty ?? '')) fail(`/start_session: unexpected body ${JSON.stringify(start.text)}`);
const https = new URL(base).protocol === 'https:';
if (https && !/max-age=\d+/.test(start.headers.get('strict-transport-security') ?? '')) fail('/start_session over HTTPS: no HSTS header');
if (difficulty !== '0') fail(`/start_session: difficulty ${difficulty}, this smoke test needs 0`);

const verify = await post(
  '/verify_session',
  `${b64(h2(clientToken))}\r\n${b64(h2(clientToken, relayToken))}`,
);
if (verify.status !== 200) fail(`/verify_session: HTTP ${verify.status}`);
if (Buffer.from(verify.text, 'base64').length !== 32) fail(`/verify_session: unexpected body ${JSON.stringify(verify.text)}`);
let plain = '';
if (https) {
  const url = new URL('/start_session', base);
  url.protocol = 'http:';
  const res = await fetch(url, { method: 'POST', body: clientToken.toString('base64'), signal: AbortSignal.timeout(5000) }).catch(() => null);
  if (res !== null && res.ok) fail(`plain HTTP to ${url.host} answered ${res.status}`);
  plain = `, HSTS set, plain HTTP refused (${res === null ? 'connection failed' : `HTTP ${res.status}`})`;
}
process.stdout.write(`smoke: ${base}: /start_session 200 (difficulty ${difficulty}), /verify_session 200 (session key minted by the core)${plain}\n`);
