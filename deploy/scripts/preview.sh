#!/usr/bin/env bash
# Prints the manifests a Kubernetes overlay would apply, from any checkout, a fresh clone included
# (which has no secrets.env for the overlay's secretGenerator to read).
#
#   deploy/scripts/preview.sh single-node                 # or: production, or the overlay's path
#   deploy/scripts/preview.sh production > rendered.yaml
#
# The overlay is rendered (kubectl kustomize, or kustomize build) from a throw-away copy of
# deploy/k8s in which every secrets.env is left out and the overlay's Secret zax-secrets is made
# from its committed secrets.env.example: the Secret in the output holds those placeholders, never
# your values. A real secrets.env is only checked for the example's keys (its values are not read
# into the output). Nothing in the checkout is written.
#
# Needs kubectl >= 1.27 (kustomize v5 inside) or kustomize >= 5 on PATH.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
K8S="$ROOT/deploy/k8s"
say() { echo "preview: $*" >&2; }

arg="${1:-}"
if [ -z "$arg" ] || [ "$arg" = "-h" ] || [ "$arg" = "--help" ] || [ "$#" -gt 1 ]; then
  echo "usage: deploy/scripts/preview.sh <overlay>   (one of: $(ls "$K8S/overlays" | tr '\n' ' '| sed 's/ $//'), or a path to an overlay under deploy/k8s)" >&2
  exit 2
fi
if [ -d "$K8S/overlays/$arg" ] && [[ "$arg" != */* ]]; then
  overlay="$K8S/overlays/$arg"
elif [ -d "$arg" ]; then
  overlay="$(cd "$arg" && pwd -P)"
else
  say "no overlay '$arg' (overlays: $(ls "$K8S/overlays" | tr '\n' ' ' | sed 's/ $//'))"
  exit 2
fi
k8s_real="$(cd "$K8S" && pwd -P)"
case "$overlay/" in
  "$k8s_real"/*) rel="${overlay#"$k8s_real"/}" ;;
  "$K8S"/*) rel="${overlay#"$K8S"/}" ;;
  *) say "$arg is not under deploy/k8s: preview copies deploy/k8s and renders the overlay inside it"; exit 2 ;;
esac
[ -f "$overlay/kustomization.yaml" ] || { say "$overlay has no kustomization.yaml"; exit 2; }

# kustomize v5: kubectl >= 1.27 carries it (`kubectl version --client` names it); older kubectl
# (e.g. Debian's kubernetes-client 1.20, kustomize v2) cannot read these overlays.
major() { sed -n 's/^[^0-9]*v\([0-9][0-9]*\)\..*/\1/p' | head -n 1; }
render=()
if command -v kubectl >/dev/null && [ "$(kubectl version --client 2>/dev/null | grep -i kustomize | major)" -ge 5 ] 2>/dev/null; then
  render=(kubectl kustomize)
elif command -v kustomize >/dev/null && [ "$(kustomize version 2>/dev/null | major)" -ge 5 ] 2>/dev/null; then
  render=(kustomize build)
else
  say "needs kubectl >= 1.27 (https://kubernetes.io/docs/tasks/tools/) or kustomize >= 5 on PATH;"
  say "the kubectl found (if any) has no kustomize v5 (Debian's kubernetes-client package is 1.20: too old)"
  exit 1
fi

# A real secrets.env must have the keys of the example (values are not looked at).
keys() { grep -E '^[A-Za-z_][A-Za-z0-9_]*=' "$1" | cut -d= -f1 | sort -u; }
if [ -f "$overlay/secrets.env" ] && [ -f "$overlay/secrets.env.example" ]; then
  missing="$(comm -13 <(keys "$overlay/secrets.env") <(keys "$overlay/secrets.env.example") | tr '\n' ' ')"
  extra="$(comm -23 <(keys "$overlay/secrets.env") <(keys "$overlay/secrets.env.example") | tr '\n' ' ')"
  [ -z "$missing" ] || say "WARNING: deploy/k8s/$rel/secrets.env lacks ${missing% } (see secrets.env.example)"
  [ -z "$extra" ] || say "WARNING: deploy/k8s/$rel/secrets.env has keys the example does not: ${extra% }"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/zax-preview.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
# Copy deploy/k8s without any secrets.env (real secrets never enter the copy).
tar -C "$ROOT/deploy" --exclude='secrets.env' -cf - k8s | tar -C "$WORK" -xf -
copy="$WORK/k8s/$rel"
if [ -f "$copy/secrets.env.example" ]; then
  cp "$copy/secrets.env.example" "$copy/secrets.env"
  say "deploy/k8s/$rel: the Secret zax-secrets below holds the placeholders of secrets.env.example, not your secrets"
fi
if ! "${render[@]}" "$copy" 2> "$WORK/err"; then
  sed -e "s|$WORK/k8s|deploy/k8s|g" -e 's|^|preview: |' "$WORK/err" >&2
  exit 1
fi
