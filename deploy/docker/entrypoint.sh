#!/bin/sh
# Entry point of the relay image: one image, two services.
#   core         node packages/core/dist/main.js
#   gatekeeper   node packages/gatekeeper/dist/main.js   (the default)
#   healthcheck  [path] [core|gatekeeper]: GET the local service's health route (deploy/docker/healthcheck.mjs)
#   anything else is run as given (e.g. `node -v`, `sh`).
# The services are exec'd, so node is PID 1 and gets SIGTERM directly (it drains, then exits 0).
set -eu
APP_DIR="$(CDPATH='' cd -- "$(dirname -- "$0")/../.." && pwd)"
cmd="${1:-gatekeeper}"
[ "$#" -gt 0 ] && shift
case "$cmd" in
  core) exec node "$APP_DIR/packages/core/dist/main.js" "$@" ;;
  gatekeeper) exec node "$APP_DIR/packages/gatekeeper/dist/main.js" "$@" ;;
  healthcheck) exec node "$APP_DIR/deploy/docker/healthcheck.mjs" "$@" ;;
  *) exec "$cmd" "$@" ;;
esac
