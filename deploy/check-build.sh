#!/usr/bin/env bash
# CI check that the image recipe still works, without Docker: what deploy/Dockerfile does, step by
# step, on a clean copy of the repo.
#   1. copy the repo's files (tracked + untracked, minus .gitignore and .dockerignore) to a temp dir,
#      as `docker build` would see them;
#   2. run deploy/build.sh --out <tree> there (the Dockerfile's RUN: frozen install, tsc -b,
#      production-only reinstall, runtime tree);
#   3. start core and gatekeeper from that tree through the image's entry point, against two private
#      redis-servers (core store, edge store; password, no persistence, noeviction), on free ports;
#   4. wait for /readyz with the image's health check, run a handshake through both tiers
#      (deploy/tools/smoke.mjs), fetch the self-test page (DASHBOARD=1);
#   5. when caddy is installed (deploy/validate.sh installs it): the compose front's
#      deploy/caddy/Caddyfile in front of that gatekeeper with a throw-away CA and certificate made
#      with openssl, and the same handshake over HTTPS (HSTS set, plain HTTP refused);
#   6. SIGTERM both services and require a clean exit 0.
# Needs git, node, redis-server (and openssl + caddy for step 5). Leaves nothing behind.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
T0=$SECONDS
say() { echo "check-build: $*"; }
die() { echo "check-build: FAIL: $*" >&2; exit 1; }

command -v redis-server >/dev/null || die "redis-server is not installed (apt-get install redis-server)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/zax-check-build.XXXXXX")"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# 1. Clean copy.
mkdir -p "$WORK/src"
git -C "$REPO" ls-files -z --cached --others --exclude-standard \
  | tar -C "$REPO" --null --ignore-failed-read -cf - -T - 2>/dev/null \
  | tar -C "$WORK/src" -xf -
(
  cd "$WORK/src"
  shopt -s globstar nullglob dotglob
  while IFS= read -r pattern || [ -n "$pattern" ]; do
    pattern="${pattern%%#*}"; pattern="${pattern%"${pattern##*[![:space:]]}"}"
    [ -n "$pattern" ] || continue
    # shellcheck disable=SC2086 # the pattern is meant to glob
    rm -rf -- $pattern
  done < "$REPO/.dockerignore"
)
say "clean copy: $(find "$WORK/src" -type f | wc -l) files after .dockerignore"

# 2. The Dockerfile's build step.
"$WORK/src/deploy/build.sh" --out "$WORK/app" > "$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; die "deploy/build.sh failed"; }
grep '^build.sh: done' "$WORK/build.log" | sed 's/^/check-build: /'
rm -rf "$WORK/src"   # the services must run from the runtime tree alone

# 3. Two private Redis stores and both services, on free ports.
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
REDIS_PASSWORD="$(node -p 'require("crypto").randomBytes(16).toString("hex")')"
SECRET="$(node -p 'require("crypto").randomBytes(24).toString("hex")')"
start_redis() { # name port
  redis-server --port "$2" --bind 127.0.0.1 --save "" --appendonly no --maxmemory 64mb \
    --maxmemory-policy noeviction --requirepass "$REDIS_PASSWORD" --dir "$WORK" > "$WORK/$1.log" 2>&1 &
  PIDS+=("$!")
}
CORE_REDIS_PORT="$(free_port)"; EDGE_REDIS_PORT="$(free_port)"
start_redis redis-core "$CORE_REDIS_PORT"
start_redis redis-edge "$EDGE_REDIS_PORT"
CORE_PORT="$(free_port)"; GK_PORT="$(free_port)"

ENTRY="$WORK/app/deploy/docker/entrypoint.sh"
core_env=(CORE_PORT="$CORE_PORT" CORE_HOST=127.0.0.1 REDIS_URL="redis://:$REDIS_PASSWORD@127.0.0.1:$CORE_REDIS_PORT/0"
  REDIS_PREFIX=zax-check: INTERNAL_SECRET="$SECRET")
gk_env=(PORT="$GK_PORT" HOST=127.0.0.1 CORE_URL="http://127.0.0.1:$CORE_PORT"
  EDGE_REDIS_URL="redis://:$REDIS_PASSWORD@127.0.0.1:$EDGE_REDIS_PORT/0" REDIS_PREFIX=zax-check:
  INTERNAL_SECRET="$SECRET" DIFFICULTY=0 DIFFICULTY_PERIOD_MIN=1 DASHBOARD=1)
# As in the container: a bare environment, and a working directory that is not the tree.
(cd / && exec env -i PATH="$PATH" NODE_ENV=production "${core_env[@]}" "$ENTRY" core) > "$WORK/core.log" 2>&1 &
CORE_PID=$!; PIDS+=("$CORE_PID")
(cd / && exec env -i PATH="$PATH" NODE_ENV=production "${gk_env[@]}" "$ENTRY" gatekeeper) > "$WORK/gatekeeper.log" 2>&1 &
GK_PID=$!; PIDS+=("$GK_PID")

show_logs() { local f; for f in "$WORK"/*.log; do echo "--- $(basename "$f")" >&2; tail -n 30 "$f" >&2; done; }

# 4. Ready (the image's health check), a handshake through both tiers, a clean stop.
wait_ready() { # service env...
  local service="$1"; shift
  for _ in $(seq 1 100); do
    if env -i PATH="$PATH" "$@" "$ENTRY" healthcheck /readyz "$service" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  show_logs; die "$service did not become ready"
}
wait_ready core "${core_env[@]}"
wait_ready gatekeeper "${gk_env[@]}"
env -i PATH="$PATH" "${gk_env[@]}" "$ENTRY" healthcheck /livez gatekeeper || { show_logs; die "gatekeeper /livez"; }
say "core and gatekeeper ready (image health check, /readyz)"

node "$REPO/deploy/tools/smoke.mjs" "http://127.0.0.1:$GK_PORT" "$WORK/app" | sed 's/^/check-build: /' \
  || { show_logs; die "handshake through the runtime tree failed"; }
# The self-test page (DASHBOARD=1) is in the runtime tree: each file answers 200 under the page's CSP.
node -e '
  const base = process.argv[1];
  Promise.all(["dashboard", "dashboard/dashboard.js", "dashboard/dashboard.css"].map(async (p) => {
    const r = await fetch(`${base}/${p}`);
    if (r.status !== 200 || !/script-src .self./.test(r.headers.get("content-security-policy") ?? "")) throw new Error(`/${p}: ${r.status}`);
  })).then(() => process.exit(0), (e) => { console.error(e.message); process.exit(1); });
' "http://127.0.0.1:$GK_PORT" || { show_logs; die "the self-test page (DASHBOARD=1) is not served from the runtime tree"; }
say "self-test page served (DASHBOARD=1)"

# 5. The compose front (Caddy) terminating TLS in front of the gatekeeper.
if command -v caddy >/dev/null && command -v openssl >/dev/null; then
  TLS="$WORK/tls"; mkdir -p "$TLS"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=zax check CA" \
    -keyout "$TLS/ca.key" -out "$TLS/ca.crt" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout "$TLS/tls.key" -out "$TLS/tls.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$TLS/ext.cnf"
  openssl x509 -req -in "$TLS/tls.csr" -CA "$TLS/ca.crt" -CAkey "$TLS/ca.key" -CAcreateserial -days 1 \
    -extfile "$TLS/ext.cnf" -out "$TLS/tls.crt" 2>/dev/null
  FRONT_PORT="$(free_port)"; HEALTH_PORT="$(free_port)"; ADMIN_PORT_CADDY="$(free_port)"
  (cd "$REPO/deploy/caddy" && exec env -i PATH="$PATH" HOME="$WORK" XDG_DATA_HOME="$WORK/caddy" XDG_CONFIG_HOME="$WORK/caddy" \
    FRONT_HTTPS_PORT="$FRONT_PORT" FRONT_HEALTH_PORT="$HEALTH_PORT" CADDY_ADMIN="127.0.0.1:$ADMIN_PORT_CADDY" \
    TLS_CERT_FILE="$TLS/tls.crt" TLS_KEY_FILE="$TLS/tls.key" GATEKEEPER_HOST=127.0.0.1 GATEKEEPER_PORT="$GK_PORT" \
    caddy run --config Caddyfile --adapter caddyfile) > "$WORK/front.log" 2>&1 &
  FRONT_PID=$!; PIDS+=("$FRONT_PID")
  for _ in $(seq 1 50); do
    node -e 'fetch(process.argv[1]).then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))' "http://127.0.0.1:$HEALTH_PORT/healthz" && break
    sleep 0.2
  done
  NODE_EXTRA_CA_CERTS="$TLS/ca.crt" node "$REPO/deploy/tools/smoke.mjs" "https://localhost:$FRONT_PORT" | sed 's/^/check-build: front: /' \
    || { show_logs; die "handshake through the Caddy front (deploy/caddy/Caddyfile) failed"; }
  kill -TERM "$FRONT_PID"; wait "$FRONT_PID" 2>/dev/null || true
else
  say "caddy or openssl not installed: front (deploy/caddy/Caddyfile) not exercised"
fi

# 6. A clean stop.
stop() { # name pid: SIGTERM, then at most 20 s for the drain
  kill -TERM "$2"
  for _ in $(seq 1 200); do kill -0 "$2" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$2" 2>/dev/null; then kill -KILL "$2"; show_logs; die "$1 still running 20 s after SIGTERM"; fi
  local rc=0
  wait "$2" || rc=$?
  [ "$rc" -eq 0 ] || { show_logs; die "$1 exited $rc after SIGTERM (expected 0)"; }
}
stop gatekeeper "$GK_PID"
stop core "$CORE_PID"
say "SIGTERM: gatekeeper and core exited 0"
say "OK in $((SECONDS - T0)) s"
