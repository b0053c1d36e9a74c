#!/usr/bin/env bash
# The one recipe for the relay's runtime files: install, build, prune, assemble.
#
#   deploy/build.sh                 install (frozen lockfile) and build core + gatekeeper in place
#   deploy/build.sh --out DIR       ... then reinstall production dependencies only and assemble the
#                                   runtime tree in DIR (what the image runs: DIR/deploy/docker/entrypoint.sh)
#
# deploy/Dockerfile runs `deploy/build.sh --out /app` in its build stage, and deploy/check-build.sh
# (CI) runs the same command on a clean copy of the repo and starts the services from DIR, so the
# image recipe cannot rot without CI noticing. --out replaces the tree's node_modules with
# production ones, so it refuses to run in a git work tree (use a copy, as both callers do).
set -euo pipefail

OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="${2:?--out needs a directory}"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
# pnpm: never prompt (e.g. before purging node_modules), behave as in CI.
export CI=true
say() { echo "build.sh: $*"; }

if [ -n "$OUT" ] && [ -e .git ]; then
  echo "build.sh: --out prunes node_modules to production dependencies; run it on a copy, not in a git work tree" >&2
  exit 2
fi

# pnpm, pinned to the packageManager version of package.json.
PNPM_VERSION="$(node -p "require('./package.json').packageManager.split('@')[1]")"
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version)" != "$PNPM_VERSION" ]; then
  say "installing pnpm@$PNPM_VERSION"
  npm install -g --no-audit --no-fund --loglevel=error "pnpm@$PNPM_VERSION" >/dev/null
fi

say "install (frozen lockfile)"
pnpm install --frozen-lockfile --reporter=append-only
say "build (tsc -b packages/core packages/gatekeeper)"
pnpm exec tsc -b packages/core packages/gatekeeper
# The gatekeeper's self-test page (DASHBOARD=1): bundled with esbuild, a dev dependency, so here,
# before the production-only reinstall; it lands in packages/gatekeeper/dist/dashboard.
say "build the self-test page (scripts/src/build-dashboard.ts)"
pnpm exec tsc -b packages/client scripts
node scripts/dist/build-dashboard.js

[ -n "$OUT" ] || exit 0

# Production dependencies only: a fresh install from the store (no network), so nothing that only
# a dev dependency needed is left in node_modules/.pnpm.
say "reinstall production dependencies only"
rm -rf node_modules packages/*/node_modules scripts/node_modules
pnpm install --prod --frozen-lockfile --offline --reporter=append-only

# The runtime tree: root manifest + virtual store, and for each service package (and the protocol
# they import) its manifest, compiled dist/, Lua scripts and dependency links. pnpm's links are
# relative, so the tree can be moved as a whole.
say "assemble $OUT"
rm -rf "$OUT"
mkdir -p "$OUT/packages" "$OUT/deploy/docker"
cp -a package.json node_modules "$OUT/"
for pkg in protocol service core gatekeeper; do
  mkdir -p "$OUT/packages/$pkg"
  for part in package.json dist lua node_modules; do
    if [ -e "packages/$pkg/$part" ]; then cp -a "packages/$pkg/$part" "$OUT/packages/$pkg/"; fi
  done
  find "$OUT/packages/$pkg/dist" -name '*.tsbuildinfo' -delete
done
cp -a deploy/docker/entrypoint.sh deploy/docker/healthcheck.mjs "$OUT/deploy/docker/"

# Guard: no build tool may reach the runtime tree.
for dev in typescript vitest esbuild; do
  if compgen -G "$OUT/node_modules/.pnpm/$dev@*" >/dev/null; then
    echo "build.sh: dev dependency $dev ended up in $OUT" >&2
    exit 1
  fi
done
test -f "$OUT/packages/core/dist/main.js" && test -f "$OUT/packages/gatekeeper/dist/main.js"
test -f "$OUT/packages/gatekeeper/dist/dashboard/index.html" && test -f "$OUT/packages/gatekeeper/dist/dashboard/dashboard.js"
say "done: $(du -sh "$OUT" | cut -f1) in $OUT"
