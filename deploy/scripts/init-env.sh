#!/usr/bin/env bash
# Writes the secrets files from their committed examples, with fresh random values (hex, 32 bytes).
#
#   deploy/scripts/init-env.sh                      .env for docker compose (from .env.example)
#   deploy/scripts/init-env.sh --k8s <overlay dir>  <overlay>/secrets.env (from secrets.env.example)
#   deploy/scripts/init-env.sh --out FILE           FILE instead of .env (for `docker compose --env-file FILE`)
#
# Replaces every CHANGE_ME with its own random value; everything else is copied as is. Refuses to
# overwrite an existing file (delete it first). Both outputs are git-ignored.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
if [ "${1:-}" = "--k8s" ]; then
  dir="${2:?usage: init-env.sh --k8s <overlay dir>}"
  src="$dir/secrets.env.example"; dst="$dir/secrets.env"
elif [ "${1:-}" = "--out" ]; then
  src="$ROOT/.env.example"; dst="${2:?usage: init-env.sh --out FILE}"
else
  src="$ROOT/.env.example"; dst="$ROOT/.env"
fi
[ -f "$src" ] || { echo "init-env: $src not found" >&2; exit 1; }
[ ! -e "$dst" ] || { echo "init-env: $dst exists; delete it first to start over" >&2; exit 1; }
random() { if command -v openssl >/dev/null; then openssl rand -hex 32; else node -p 'require("crypto").randomBytes(32).toString("hex")'; fi; }
umask 077
while IFS= read -r line || [ -n "$line" ]; do
  while [[ "$line" == *CHANGE_ME* ]]; do line="${line/CHANGE_ME/$(random)}"; done
  printf '%s\n' "$line"
done < "$src" > "$dst"
echo "init-env: wrote $dst (mode 600); keep it out of git and back it up somewhere safe"
