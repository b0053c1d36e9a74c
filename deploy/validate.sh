#!/usr/bin/env bash
# Validates every deployment file offline and fails on a broken one; then checks the image recipe.
# Called by .ci/run; run it by hand after editing anything under deploy/ or docker-compose.yml.
#
#   deploy/validate.sh            all checks, then deploy/check-build.sh
#   deploy/validate.sh --static   the file checks only (a few seconds)
#
# Installs what it needs when missing: docker-compose (Debian, v1.29: validates offline), caddy
# (Debian: validates the front's config), openssl, and the pinned npm tools in deploy/tools
# (kubernetes-models for the Kubernetes schemas, typescript for the strict field check,
# dockerfile-utils for the Dockerfile lint, yaml). kubectl >= 1.27 (kustomize v5) or kustomize 5
# comes with the machine image (apt can install `kubectl` only where the Kubernetes package
# repository is configured; Debian's own kubernetes-client, 1.20, is too old to read the overlays);
# without it the Kubernetes step says how to get it.
#
# Checks:
#   compose     docker-compose.yml alone, and with each override in deploy/compose/ (sentinel.yml:
#               the core store replicated with Sentinel): docker-compose --env-file .env.example
#               config -q (Compose's own schema and interpolation), then tools/validate-compose.mjs
#               on the resolved file (scaling, network segmentation of the stores, Redis flags,
#               the core's store topology, health-gated start-up, Prometheus targets)
#   front       caddy validate of deploy/caddy/Caddyfile (with a throw-away certificate) and
#               Caddyfile.acme
#   kubernetes  deploy/scripts/preview.sh of every overlay in deploy/k8s/overlays (kustomize on a
#               copy, the Secret from secrets.env.example; production takes in the component
#               components/core-store-sentinel), then tools/validate-k8s.mjs: Kubernetes JSON
#               schemas, unknown fields, relay policy (the Sentinel group's too) and references,
#               NetworkPolicy in both directions; and no secrets.env is tracked by git
#   dockerfile  tools/validate-dockerfile.mjs: lint + the image requirements
#   scripts     bash -n / sh -n on the deploy scripts (redis-store.sh included)
#   prometheus  promtool check config deploy/prometheus/prometheus.yml (its rule_files too) and
#               promtool check rules deploy/prometheus/alerts.yml, when promtool is installed (Debian's
#               `prometheus` package; .ci/run installs it); skipped with a note otherwise
#   grafana     tools/validate-grafana.mjs on deploy/grafana/zax-relay.json (the model: datasource
#               variable used everywhere, unique ids, grid, queries), and every query parsed as PromQL
#               by promtool (as recording rules). That the dashboard and the rules name only
#               exported metrics is test/repo/dashboard-metrics.test.ts (against a live /metrics).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
T0=$SECONDS
STATIC=0
[ "${1:-}" = "--static" ] && STATIC=1

say() { echo "validate: $*"; }
FAILED=()
check() { # name command...: runs one check, records a failure, goes on
  local name="$1"; shift
  local t=$SECONDS
  if "$@"; then say "PASS $name ($((SECONDS - t)) s)"; else say "FAIL $name"; FAILED+=("$name"); fi
}

# ---- tools -------------------------------------------------------------------------------------
missing=()
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v caddy >/dev/null || missing+=(caddy)
command -v openssl >/dev/null || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]} (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v kubectl >/dev/null && ! command -v kustomize >/dev/null; then
  say "installing kubectl (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kubectl >/dev/null 2>&1 || true
fi
TOOLS="$REPO/deploy/tools"
LOCK_SUM="$(sha256sum "$TOOLS/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$TOOLS/node_modules/.zax-lock-sum" 2>/dev/null)" != "$LOCK_SUM" ]; then
  say "installing deploy/tools (npm ci)"
  npm ci --prefix "$TOOLS" --no-audit --no-fund --loglevel=error --engine-strict=false >/dev/null
  echo "$LOCK_SUM" > "$TOOLS/node_modules/.zax-lock-sum"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/zax-validate.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# ---- compose -----------------------------------------------------------------------------------
compose_check() {
  local files override ok=0
  # docker-compose.yml alone, then with each override (docker-compose -f docker-compose.yml -f <it>).
  for override in "" deploy/compose/*.yml; do
    [ -z "$override" ] || [ -f "$override" ] || continue
    files=(-f docker-compose.yml)
    [ -z "$override" ] || files+=(-f "$override")
    echo "validate: compose: ${files[*]}"
    if docker-compose --env-file .env.example "${files[@]}" config -q \
      && docker-compose --env-file .env.example "${files[@]}" config > "$WORK/compose.yml" \
      && node "$TOOLS/validate-compose.mjs" "$WORK/compose.yml"; then :; else ok=1; fi
  done
  return "$ok"
}
check compose compose_check

# ---- front (Caddy) -----------------------------------------------------------------------------
front_check() {
  mkdir -p "$WORK/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -keyout "$WORK/tls/tls.key" -out "$WORK/tls/tls.crt" 2>/dev/null || return 1
  local f ok=0
  for f in deploy/caddy/Caddyfile deploy/caddy/Caddyfile.acme; do
    if (cd deploy/caddy && env HOME="$WORK" XDG_DATA_HOME="$WORK/caddy" XDG_CONFIG_HOME="$WORK/caddy" \
        TLS_CERT_FILE="$WORK/tls/tls.crt" TLS_KEY_FILE="$WORK/tls/tls.key" \
        RELAY_DOMAIN=relay.example.com ACME_EMAIL=ops@example.com \
        caddy validate --config "$(basename "$f")" --adapter caddyfile > "$WORK/caddy.log" 2>&1); then
      echo "validate: caddy: $f: valid"
    else
      grep -v '"level":"\(info\|warn\)"' "$WORK/caddy.log" | tail -n 5 | sed "s|^|validate: caddy: $f: |" >&2
      ok=1
    fi
  done
  return "$ok"
}
check front front_check

# ---- kubernetes --------------------------------------------------------------------------------
k8s_check() {
  local tracked
  tracked="$(git ls-files -- 'deploy/k8s/**/secrets.env' 'deploy/k8s/*/secrets.env' '.env' 2>/dev/null || true)"
  if [ -n "$tracked" ]; then echo "validate: secrets are tracked by git: $tracked" >&2; return 1; fi
  local overlay name rendered=()
  for overlay in deploy/k8s/overlays/*/; do
    name="$(basename "$overlay")"
    # The documented preview: renders a copy, the Secret from the committed secrets.env.example.
    if ! deploy/scripts/preview.sh "$name" > "$WORK/$name.yaml" 2> "$WORK/$name.err"; then
      sed "s|^|validate: kustomize $name: |" "$WORK/$name.err" >&2
      return 1
    fi
    rendered+=("$name=$WORK/$name.yaml")
  done
  [ "${#rendered[@]}" -gt 0 ] || { echo "validate: no overlays in deploy/k8s/overlays" >&2; return 1; }
  node "$TOOLS/validate-k8s.mjs" "${rendered[@]}"
}
check kubernetes k8s_check

# ---- Dockerfile --------------------------------------------------------------------------------
check dockerfile node "$TOOLS/validate-dockerfile.mjs" deploy/Dockerfile

# ---- scripts -----------------------------------------------------------------------------------
scripts_check() {
  local f
  for f in deploy/*.sh deploy/scripts/*.sh; do [ -e "$f" ] && { bash -n "$f" || return 1; }; done
  # POSIX sh (run by busybox sh or dash inside the Redis image).
  for f in deploy/k8s/components/*/*.sh; do [ -e "$f" ] && { sh -n "$f" || return 1; }; done
  sh -n deploy/docker/entrypoint.sh && node --check deploy/docker/healthcheck.mjs
}
check scripts scripts_check

# ---- Prometheus --------------------------------------------------------------------------------
prometheus_check() {
  if ! command -v promtool >/dev/null; then
    say "prometheus: promtool not found (apt-get install prometheus), rules and config not checked"
    return 0
  fi
  promtool check config deploy/prometheus/prometheus.yml && promtool check rules deploy/prometheus/alerts.yml
}
check prometheus prometheus_check

# ---- Grafana -----------------------------------------------------------------------------------
grafana_check() {
  local rules
  rules="$(mktemp --suffix .yml)"
  node deploy/tools/validate-grafana.mjs "$rules" deploy/grafana/zax-relay.json || { rm -f "$rules"; return 1; }
  if command -v promtool >/dev/null; then
    # Every query parsed as PromQL: the queries as recording rules.
    promtool check rules "$rules" || { rm -f "$rules"; return 1; }
  else
    say "grafana: promtool not found, the queries' PromQL not parsed"
  fi
  rm -f "$rules"
}
check grafana grafana_check

if [ "${#FAILED[@]}" -gt 0 ]; then
  say "FAILED: ${FAILED[*]} ($((SECONDS - T0)) s)"
  exit 1
fi
say "deployment files OK ($((SECONDS - T0)) s)"

# ---- the image recipe, without Docker ----------------------------------------------------------
if [ "$STATIC" = 0 ]; then
  deploy/check-build.sh
fi
say "done in $((SECONDS - T0)) s"
