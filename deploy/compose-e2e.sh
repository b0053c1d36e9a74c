#!/usr/bin/env bash
# The operators' path, run for real: builds the relay image, brings up docker-compose.yml (the TLS
# front, several gatekeepers, the core, both Redis and the Prometheus profile) and drives it through
# https://localhost with the published glow.ts client and @zax/client, then faults: a gatekeeper
# killed mid-traffic, a gatekeeper crashing mid-traffic, the core restarted mid-traffic. It checks
# the network isolation from inside the networks, reads `up` for every target from Prometheus's
# API, takes the stack down with its volumes and checks that nothing is left. The checks are the
# suite test/compose/stack.test.ts; this script prepares everything around it and prints what was
# measured.
#
#   deploy/compose-e2e.sh              run it (needs root for the engine; `pnpm install` done)
#   deploy/compose-e2e.sh --keep       leave the stack up afterwards (take it down with the command
#                                      the script prints)
#
# On a machine without a Docker engine it installs Debian's docker.io and docker-compose and starts
# dockerd. Base images come from deploy/scripts/standin-images.sh: pulled when a registry answers,
# else stand-ins built from Debian packages (the offline path, deploy/README.md). Settings:
# ZAX_E2E_PROJECT (compose project, default zaxe2e), ZAX_E2E_GATEKEEPERS (replicas, default 3),
# ZAX_E2E_STORE=sentinel (with deploy/compose/sentinel.yml: the core store replicated, the core on
# REDIS_SENTINELS with REDIS_WAIT_REPLICAS=1; the suite then also kills the store's primary).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
PROJECT="${ZAX_E2E_PROJECT:-zaxe2e}"
GATEKEEPERS="${ZAX_E2E_GATEKEEPERS:-3}"
STORE="${ZAX_E2E_STORE:-single}"
case "$STORE" in
  single) OVERRIDE=(); STORE_CONTAINERS=0 ;;
  sentinel) OVERRIDE=(-f "$ROOT/deploy/compose/sentinel.yml"); STORE_CONTAINERS=5 ;; # 2 replicas, 3 sentinels
  *) echo "compose-e2e: ZAX_E2E_STORE must be single or sentinel, not $STORE" >&2; exit 2 ;;
esac
KEEP=false
case "${1:-}" in
  --keep) KEEP=true ;;
  "") ;;
  -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
  *) echo "compose-e2e: unknown argument: $1" >&2; exit 2 ;;
esac
say() { echo "compose-e2e: $*"; }
T0=$SECONDS
FIGURES=()
figure() { FIGURES+=("$(printf '%-44s %s' "$1" "$2")"); say "$1: $2"; }

[ -d node_modules ] || { say "run 'pnpm install' first (the checks use glow.ts and @zax/client)" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/zax-compose-e2e.XXXXXX")"
DOCKERD_PID=""

# ---- the engine ----------------------------------------------------------------------------------
apt_install() {
  say "installing $* (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
t=$SECONDS
command -v dockerd >/dev/null 2>&1 || apt_install docker.io
# A client that builds with BuildKit (deploy/Dockerfile uses RUN --mount): one with the buildx
# plugin, or one older than 23 (BuildKit built in). A newer client without buildx cannot build.
DOCKER=""
for d in docker /usr/bin/docker; do
  command -v "$d" >/dev/null 2>&1 || continue
  major="$("$d" version -f '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)" || true
  if "$d" buildx version >/dev/null 2>&1 || { [ -n "$major" ] && [ "$major" -lt 23 ]; }; then DOCKER="$(command -v "$d")"; break; fi
done
[ -n "$DOCKER" ] || { say "no docker client here can build with BuildKit (install the buildx plugin)" >&2; exit 1; }
if ! "$DOCKER" info >/dev/null 2>&1; then
  say "starting dockerd"
  dockerd > "$WORK/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 60); do "$DOCKER" info >/dev/null 2>&1 && break; sleep 1; done
  "$DOCKER" info >/dev/null 2>&1 || { tail -n 20 "$WORK/dockerd.log" >&2; say "dockerd did not start" >&2; exit 1; }
fi
if "$DOCKER" compose version >/dev/null 2>&1; then
  COMPOSE_BIN=("$DOCKER" compose)
else
  command -v docker-compose >/dev/null 2>&1 || apt_install docker-compose
  COMPOSE_BIN=(docker-compose)
fi
figure "engine ready" "$((SECONDS - t)) s ($("$DOCKER" version -f 'server {{.Server.Version}}'), $("${COMPOSE_BIN[@]}" version --short 2>/dev/null || echo compose))"

# ---- base images and the relay image -------------------------------------------------------------
t=$SECONDS
DOCKER="$DOCKER" deploy/scripts/standin-images.sh
figure "base images ready" "$((SECONDS - t)) s"

t=$SECONDS
DOCKERFILE=deploy/Dockerfile
if ! "$DOCKER" image inspect docker/dockerfile:1 >/dev/null 2>&1 && ! "$DOCKER" pull -q docker/dockerfile:1 >/dev/null 2>&1; then
  # The `# syntax=` line makes BuildKit pull its front end; offline, build with the built-in one.
  say "docker/dockerfile:1 cannot be pulled: building with the engine's built-in Dockerfile front end"
  sed '/^# syntax=/d' deploy/Dockerfile > "$WORK/Dockerfile"
  DOCKERFILE="$WORK/Dockerfile"
fi
IMAGE="zax-relay:local"
DOCKER_BUILDKIT=1 "$DOCKER" build --network host -f "$DOCKERFILE" -t "$IMAGE" . > "$WORK/build.log" 2>&1 \
  || { tail -n 40 "$WORK/build.log" >&2; say "the image build failed" >&2; exit 1; }
size="$("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE")"
figure "relay image built" "$((SECONDS - t)) s ($((size / 1000000)) MB)"

# ---- secrets, certificate, ports -----------------------------------------------------------------
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
ENV_FILE="$WORK/env"
deploy/scripts/init-env.sh --out "$ENV_FILE" >/dev/null
deploy/scripts/self-signed-cert.sh "$WORK/tls" localhost 127.0.0.1 >/dev/null
HTTPS_PORT="$(free_port)"; HTTP_PORT="$(free_port)"; PROMETHEUS_PORT="$(free_port)"
set_env() { # KEY VALUE: sets KEY in the env file
  if grep -q "^$1=" "$ENV_FILE"; then sed -i "s|^$1=.*|$1=$2|" "$ENV_FILE"; else echo "$1=$2" >> "$ENV_FILE"; fi
}
set_env ZAX_IMAGE "$IMAGE"
set_env TLS_DIR "$WORK/tls"
set_env RELAY_DOMAIN localhost
set_env HTTPS_PORT "$HTTPS_PORT"
set_env HTTP_PORT "$HTTP_PORT"
set_env PROMETHEUS_PORT "$PROMETHEUS_PORT"
COMPOSE=("${COMPOSE_BIN[@]}" -p "$PROJECT" -f "$ROOT/docker-compose.yml" "${OVERRIDE[@]}" --env-file "$ENV_FILE" --profile metrics)

# ---- on the way out: what went wrong, then down -v and the leftovers check -----------------------
leftovers() { # what of the project is still there
  local kind
  for kind in container volume network; do
    if [ "$kind" = container ]; then "$DOCKER" ps -a -q --filter "label=com.docker.compose.project=$PROJECT"
    else "$DOCKER" "$kind" ls -q --filter "label=com.docker.compose.project=$PROJECT"; fi | sed "s/^/$kind /"
  done
}
finish() {
  local rc=$?
  trap - EXIT
  if [ "$rc" != 0 ] && "$DOCKER" info >/dev/null 2>&1; then
    say "FAILED (exit $rc); the stack as it was:"
    "${COMPOSE[@]}" ps 2>&1 | sed 's/^/  /' || true
    "${COMPOSE[@]}" logs --no-color --tail 30 2>&1 | sed 's/^/  /' || true
  fi
  if $KEEP; then
    say "the stack is left up: ${COMPOSE[*]} down -v"
  elif "$DOCKER" info >/dev/null 2>&1; then
    local t=$SECONDS left
    "${COMPOSE[@]}" down -v --remove-orphans > "$WORK/down.log" 2>&1 || { cat "$WORK/down.log" >&2; rc=1; }
    left="$(leftovers)"
    if [ -n "$left" ]; then say "docker compose down -v left behind:"; echo "$left" | sed 's/^/  /'; rc=1
    else figure "down -v" "$((SECONDS - t)) s, no container, network or volume left"; fi
  fi
  [ -z "$DOCKERD_PID" ] || $KEEP || { kill "$DOCKERD_PID" 2>/dev/null; wait "$DOCKERD_PID" 2>/dev/null || true; }
  rm -rf "$WORK"
  figure "total" "$((SECONDS - T0)) s"
  echo "compose-e2e: ---- figures ----"
  printf '  %s\n' "${FIGURES[@]}"
  [ "$rc" = 0 ] && say "passed" || say "FAILED"
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

[ -z "$(leftovers)" ] || { say "a previous run's stack is still there: ${COMPOSE[*]} down -v"; "${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1; }

# ---- up, and the time until every container is healthy ------------------------------------------
t=$SECONDS
"${COMPOSE[@]}" up -d --no-build --scale "gatekeeper=$GATEKEEPERS" > "$WORK/up.log" 2>&1 \
  || { cat "$WORK/up.log" >&2; say "docker compose up failed" >&2; exit 1; }
expected=$((GATEKEEPERS + 5 + STORE_CONTAINERS)) # + core, redis-core, redis-edge, front, prometheus (+ the store's)
for _ in $(seq 120); do
  states="$("$DOCKER" ps -q --filter "label=com.docker.compose.project=$PROJECT" | xargs -r "$DOCKER" inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}')"
  healthy="$(grep -cE '^(healthy|running)$' <<<"$states" || true)"
  [ "$healthy" = "$expected" ] && break
  sleep 1
done
[ "$healthy" = "$expected" ] || { say "only $healthy of $expected containers healthy after 120 s" >&2; exit 1; }
figure "up -d to all healthy" "$((SECONDS - t)) s ($expected containers, $GATEKEEPERS gatekeepers, core store: $STORE)"

# ---- the checks ----------------------------------------------------------------------------------
pnpm exec tsc -b packages/client >/dev/null
REPORT="$WORK/report.txt"
: > "$REPORT"
NODE_EXTRA_CA_CERTS="$WORK/tls/ca.crt" \
ZAX_E2E_URL="https://localhost:$HTTPS_PORT" \
ZAX_E2E_PROMETHEUS="http://127.0.0.1:$PROMETHEUS_PORT" \
ZAX_E2E_PROJECT="$PROJECT" \
ZAX_E2E_GATEKEEPERS="$GATEKEEPERS" \
ZAX_E2E_STORE="$STORE" \
ZAX_E2E_DOCKER="$DOCKER" \
ZAX_E2E_IMAGE="$IMAGE" \
ZAX_E2E_REPORT="$REPORT" \
  pnpm exec vitest run --config test/compose/vitest.config.ts || suite_rc=$?
while IFS=$'\t' read -r name value; do [ -n "$name" ] && figure "$name" "$value"; done < "$REPORT"
exit "${suite_rc:-0}"
