#!/usr/bin/env bash
# The offline path: base images for a machine that cannot reach a public image registry.
#
#   deploy/scripts/standin-images.sh            every base image that is missing: pull it, and
#                                               when the pull fails, build a stand-in
#   deploy/scripts/standin-images.sh --list     the images deploy/Dockerfile and docker-compose.yml name
#
# The images are the ones deploy/Dockerfile (`node:<NODE_VERSION>-bookworm-slim`) and
# docker-compose.yml (`redis:…`, `caddy:…`, `prom/prometheus:…`, the defaults of REDIS_IMAGE,
# FRONT_IMAGE and PROMETHEUS_IMAGE) name; nothing in those files changes. An image already present
# is left alone; a real one is always preferred: the script first tries `docker pull`. Otherwise it
# builds, under that same name, a stand-in from Debian bookworm packages (debootstrap, minbase,
# imported with `docker import` as zax-standin/bookworm), labelled `zax.standin=true`:
#
#   node        this machine's node and npm (same major as NODE_VERSION), user `node` uid 1000,
#               and this machine's CA bundle (in case a TLS proxy stands in front of the npm
#               registry), NODE_EXTRA_CA_CERTS pointing at it
#   redis       Debian's redis-server and redis-cli (7.0 where the real image is 7.2), /data
#   caddy       Debian's caddy (2.6 where the real image is 2.11: a POST that was in flight to a
#               replica that vanished is not replayed but answered 503 + Retry-After) and wget
#   prometheus  Debian's prometheus (2.42), the real image's entry point, command and `nobody` user
#
# The stand-ins are for tests on such a machine (deploy/compose-e2e.sh), never for a deployment.
# Needs a running Docker engine, debootstrap (apt), and Debian's package mirror.
set -euo pipefail
cd "$(dirname "$0")/../.."
DOCKER="${DOCKER:-docker}"
say() { echo "standin-images: $*"; }

# The names, read from the files that use them (so they cannot drift).
node_version="$(sed -n 's/^ARG NODE_VERSION=//p' deploy/Dockerfile | head -n1)"
default_of() { # VAR: the default image of ${VAR:-image} in docker-compose.yml
  sed -n "s/.*\${$1:-\([^}]*\)}.*/\1/p" docker-compose.yml | head -n1
}
NODE_IMAGE="node:${node_version}-bookworm-slim"
REDIS_IMAGE="$(default_of REDIS_IMAGE)"
CADDY_IMAGE="$(default_of FRONT_IMAGE)"
PROM_IMAGE="$(default_of PROMETHEUS_IMAGE)"
for v in node_version REDIS_IMAGE CADDY_IMAGE PROM_IMAGE; do
  [ -n "${!v}" ] || { say "could not read $v from deploy/Dockerfile / docker-compose.yml" >&2; exit 1; }
done
if [ "${1:-}" = "--list" ]; then printf '%s\n' "$NODE_IMAGE" "$REDIS_IMAGE" "$CADDY_IMAGE" "$PROM_IMAGE"; exit 0; fi

BASE=zax-standin/bookworm:minbase
WORK="$(mktemp -d "${TMPDIR:-/tmp}/zax-standin.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

present() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

base_image() { # the Debian bookworm minbase root file system as an image, made once
  present "$BASE" && return 0
  command -v debootstrap >/dev/null || {
    say "installing debootstrap (apt)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  }
  local mirror t=$SECONDS
  mirror="$(sed -n 's/^URIs: *//p; s/^deb \(http[^ ]*\) bookworm .*/\1/p' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | grep -v security | head -n1)"
  mirror="${mirror:-http://deb.debian.org/debian}"
  say "debootstrap bookworm (minbase) from $mirror"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" "$mirror" > "$WORK/debootstrap.log" 2>&1 \
    || { tail -n 20 "$WORK/debootstrap.log" >&2; return 1; }
  rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
  tar -C "$WORK/rootfs" -c . | "$DOCKER" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - "$BASE" >/dev/null
  rm -rf "$WORK/rootfs"
  say "$BASE imported ($((SECONDS - t)) s)"
}

build() { # tag context-dir: builds the stand-in from context-dir/Dockerfile
  local t=$SECONDS
  # The classic builder: RUN steps reach Debian's mirror through the host network, and nothing
  # (no BuildKit frontend image) has to be pulled.
  DOCKER_BUILDKIT=0 "$DOCKER" build --network host --label zax.standin=true -t "$1" "$2" > "$WORK/build.log" 2>&1 \
    || { tail -n 30 "$WORK/build.log" >&2; say "building the stand-in $1 failed" >&2; return 1; }
  say "$1: stand-in built ($((SECONDS - t)) s)"
}

APT='apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends'
CLEAN='apt-get clean && rm -rf /var/lib/apt/lists/*'

standin_node() {
  local ctx="$WORK/node" node npm_dir major
  node="$(command -v node)"; major="$("$node" -p 'process.versions.node.split(".")[0]')"
  [ "$major" = "${node_version%%.*}" ] || { say "this machine's node is $("$node" -v); $NODE_IMAGE needs major ${node_version%%.*}" >&2; return 1; }
  npm_dir="$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)"
  mkdir -p "$ctx"
  cp "$node" "$ctx/node"
  cp -a "$npm_dir" "$ctx/npm"
  # This machine's trust store: where the npm registry is reached through a TLS proxy, its CA is
  # there and not in Debian's bundle, and the image build's `npm install` must trust it.
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
  cat > "$ctx/Dockerfile" <<EOF
FROM $BASE
RUN $APT ca-certificates libstdc++6 && $CLEAN
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# The real image's layout: /usr/local/bin/node, npm under /usr/local/lib/node_modules.
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
ENV NODE_VERSION=$("$node" -p 'process.versions.node') NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
CMD ["node"]
EOF
  build "$NODE_IMAGE" "$ctx"
}

standin_redis() {
  mkdir -p "$WORK/redis"
  cat > "$WORK/redis/Dockerfile" <<EOF
FROM $BASE
RUN $APT redis-server redis-tools && $CLEAN && mkdir -p /data && chmod 1777 /data
WORKDIR /data
EXPOSE 6379
CMD ["redis-server"]
EOF
  build "$REDIS_IMAGE" "$WORK/redis"
}

standin_caddy() {
  mkdir -p "$WORK/caddy"
  cat > "$WORK/caddy/Dockerfile" <<EOF
FROM $BASE
RUN $APT caddy wget ca-certificates && $CLEAN && mkdir -p /config/caddy /data/caddy /etc/caddy /srv
ENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data
WORKDIR /srv
EXPOSE 80 443 2019
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
EOF
  build "$CADDY_IMAGE" "$WORK/caddy"
}

standin_prometheus() {
  mkdir -p "$WORK/prometheus"
  cat > "$WORK/prometheus/Dockerfile" <<EOF
FROM $BASE
RUN $APT prometheus && $CLEAN && mkdir -p /prometheus && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
EXPOSE 9090
VOLUME ["/prometheus"]
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
EOF
  build "$PROM_IMAGE" "$WORK/prometheus"
}

ensure() { # image standin-function
  if present "$1"; then
    if [ "$("$DOCKER" image inspect -f '{{index .Config.Labels "zax.standin"}}' "$1")" = true ]; then
      say "$1: present (a stand-in)"
    else
      say "$1: present"
    fi
    return 0
  fi
  if "$DOCKER" pull -q "$1" >/dev/null 2>&1; then say "$1: pulled"; return 0; fi
  say "$1: cannot be pulled; building a stand-in from Debian packages"
  base_image && "$2"
}

ensure "$NODE_IMAGE" standin_node
ensure "$REDIS_IMAGE" standin_redis
ensure "$CADDY_IMAGE" standin_caddy
ensure "$PROM_IMAGE" standin_prometheus
