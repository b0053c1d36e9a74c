// Health check for the relay image, with node only (the image has no curl or wget).
//
//   node healthcheck.mjs [path] [core|gatekeeper]
//
// GETs `path` (default /livez) on the local service and exits 0 on a 200, 1 otherwise. The service
// is the one named, else the one running as PID 1 (the container's entry point), else both are
// tried. Ports follow docs/CONTRACT.md: the admin port when set (ADMIN_PORT, CORE_ADMIN_PORT), then
// the main port (PORT, default 8080; CORE_PORT, default 8081). A port that refuses the connection
// is skipped; any other answer decides. When the gatekeeper terminates TLS itself
// (TLS_CERT_FILE set), its main port is asked over HTTPS.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

const TIMEOUT_MS = 2500;
const path = process.argv[2] ?? '/livez';
let service = process.argv[3];
const env = process.env;

if (service === undefined) {
  try {
    const cmdline = readFileSync('/proc/1/cmdline', 'utf8');
    if (cmdline.includes('core/dist/main.js')) service = 'core';
    else if (cmdline.includes('gatekeeper/dist/main.js')) service = 'gatekeeper';
  } catch {
    // not Linux, or no /proc: try both services
  }
}

const gatekeeper = [
  { port: env.ADMIN_PORT, tls: false },
  { port: env.PORT || '8080', tls: Boolean(env.TLS_CERT_FILE) },
];
const core = [
  { port: env.CORE_ADMIN_PORT, tls: false },
  { port: env.CORE_PORT || '8081', tls: false },
];
const candidates = (service === 'core' ? core : service === 'gatekeeper' ? gatekeeper : [...gatekeeper, ...core]).filter(
  (c) => c.port !== undefined && c.port !== '',
);

/** Resolves to the status code, or to null when nothing listens there. */
function probe({ port, tls }) {
  return new Promise((resolve) => {
    const get = tls ? https.get : http.get;
    const req = get({ host: '127.0.0.1', port: Number(port), path, timeout: TIMEOUT_MS, rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve(err.code === 'ECONNREFUSED' ? null : 0));
  });
}

for (const candidate of candidates) {
  const status = await probe(candidate);
  if (status === null) continue;
  if (status === 200) process.exit(0);
  process.stderr.write(`healthcheck: GET ${path} on port ${candidate.port}: ${status || 'no answer'}\n`);
  process.exit(1);
}
process.stderr.write(`healthcheck: nothing listens on port(s) ${candidates.map((c) => c.port).join(', ')}\n`);
process.exit(1);
