#!/bin/sh
# A memory-only Redis store replicated with Sentinel: how its data nodes and sentinels start, when
# they are ready, and how a primary hands over when it is stopped. Runs inside the Redis image
# (busybox sh or dash, redis-server, redis-cli, timeout). One script for both deployments: the
# Kubernetes component core-store-sentinel (a ConfigMap) and the Compose override
# deploy/compose/sentinel.yml (a read-only bind mount).
#
#   redis-store.sh data [redis-server flags]   a data node: primary or replica, decided at start
#   redis-store.sh sentinel                    a sentinel
#   redis-store.sh ready data|sentinel         exit 0 when ready (the health check / readiness probe)
#
# Settings (environment):
#   STORE_NAME        the name the sentinels monitor the primary under (REDIS_SENTINEL_NAME)
#   STORE_SELF        this instance's host name, as the others reach it
#   STORE_NODES       the data nodes' host names (spaces or commas); the first one is the seed,
#                     the primary of a store that starts from nothing
#   STORE_SENTINELS   the sentinels' host names
#   STORE_ANNOUNCE    hostname (default): nodes and sentinels are known to Sentinel and to clients
#                     by these names (Kubernetes: stable per pod, and a missing one is answered at
#                     once by the cluster DNS); ip: by their addresses (Compose: Docker's DNS may
#                     take seconds to answer for a stopped container, and a sentinel that waits
#                     that long on a lookup stops acting, "tilt")
#   REDISCLI_AUTH     the password of every node and sentinel (redis-cli reads it from here)
#   STORE_QUORUM (2), STORE_DOWN_AFTER_MS (5000), STORE_FAILOVER_TIMEOUT_MS (30000),
#   STORE_HANDOVER_SEC (10), STORE_DIR (/data: the sentinel's config file, memory only),
#   STORE_PORT (6379), STORE_SENTINEL_PORT (26379)
#
# Memory only means a data node always starts empty. The one rule that keeps the store's contents:
# a node that starts empty never becomes the primary while another node holds data. So a data node
# asks the sentinels (the majority answer) which node is the primary and starts as its replica once
# that node answers; if the sentinels name this very node (it crashed and came back before they
# noticed), it waits until they have promoted a replica, and follows that one. Without any sentinel
# answering, a peer that is a primary is followed; failing that the seed starts as the primary, but
# only while no peer holds data. A sentinel starts monitoring the primary its peers monitor, else
# the data node that is a primary, else the seed.
set -eu

NAME="${STORE_NAME:?STORE_NAME is not set}"
SELF="${STORE_SELF:?STORE_SELF is not set}"
NODES="$(echo "${STORE_NODES:?STORE_NODES is not set}" | tr ',' ' ')"
SENTINELS="$(echo "${STORE_SENTINELS:?STORE_SENTINELS is not set}" | tr ',' ' ')"
: "${REDISCLI_AUTH:?REDISCLI_AUTH is not set}"
ANNOUNCE="${STORE_ANNOUNCE:-hostname}"
PORT="${STORE_PORT:-6379}"
SPORT="${STORE_SENTINEL_PORT:-26379}"
DIR="${STORE_DIR:-/data}"
SEED="$(echo $NODES | cut -d' ' -f1)"
case "$ANNOUNCE" in hostname | ip) ;; *) echo "redis-store: STORE_ANNOUNCE must be hostname or ip" >&2; exit 2 ;; esac

# Never a password in a log line: only names, addresses and states.
log() { echo "redis-store[$SELF]: $*" >&2; }
# redis-cli with a bound time (a node being rescheduled may not answer at all); the password comes
# from REDISCLI_AUTH.
ask() { # host port command...
  h="$1"; p="$2"; shift 2
  timeout 3 redis-cli -h "$h" -p "$p" "$@" 2>/dev/null
}
# How Sentinel knows an instance: its name, or (STORE_ANNOUNCE=ip) its current address; nothing
# when the name does not resolve (a stopped container).
id() {
  if [ "$ANNOUNCE" = hostname ]; then echo "$1"; return 0; fi
  if command -v getent >/dev/null; then
    timeout 3 getent hosts "$1" 2>/dev/null | awk 'NR == 1 { print $1 }'
  else # busybox: the first address after the "Name:" line
    timeout 3 nslookup "$1" 2>/dev/null | sed -n '/^Name:/,$ s/^Address[^:]*: *\([0-9a-fA-F.:]*\).*/\1/p' | sed -n 1p
  fi
}

# The primary named by the majority of the sentinels that answer; nothing when none answers.
sentinel_primary() {
  answers=""
  for s in $SENTINELS; do
    out="$(ask "$s" "$SPORT" SENTINEL get-master-addr-by-name "$NAME")" || continue
    host="$(printf '%s\n' "$out" | sed -n 1p)"
    port="$(printf '%s\n' "$out" | sed -n 2p)"
    case "$port" in '' | *[!0-9]*) continue ;; esac
    answers="$answers$host
"
  done
  printf '%s' "$answers" | sed '/^$/d' | sort | uniq -c | sort -rn | awk 'NR == 1 { print $2 }'
}

# A data node other than this one that runs as a primary (as id).
peer_primary() {
  for n in $NODES; do
    [ "$n" = "$SELF" ] && continue
    [ "$(ask "$n" "$PORT" ROLE | sed -n 1p)" = master ] && { id "$n"; return 0; }
  done
  return 0
}

# A data node other than this one that holds data. One that answers something else than a number
# (LOADING during a sync, an error) counts as holding data: when in doubt, do not start empty. One
# that does not answer at all holds nothing: memory only, it is not running.
peer_with_data() {
  for n in $NODES; do
    [ "$n" = "$SELF" ] && continue
    out="$(ask "$n" "$PORT" DBSIZE)" || continue
    [ -n "$out" ] || continue
    case "$out" in 0) ;; *) echo "$n"; return 0 ;; esac
  done
  return 0
}

field() { # name: a field of INFO replication, read from stdin
  tr -d '\r' | sed -n "s/^$1://p"
}

# Stopping a primary: hand over to a replica first, so that a planned stop loses nothing. Writes
# are paused (CLIENT PAUSE WRITE) while the replicas catch up and a sentinel promotes one of them
# (SENTINEL FAILOVER), and stay paused until this node stops: a write acknowledged here after the
# promotion would be held by the other replica only, and dropped when it follows the new primary.
# The paused writes fail when the connection closes, and the client retries them on the new
# primary. STORE_HANDOVER_SEC (10) at most; without a replica or a sentinel it just stops.
handover() {
  info="$(ask 127.0.0.1 "$PORT" INFO replication)" || return 0
  [ "$(printf '%s\n' "$info" | field role)" = master ] || return 0
  [ "$(printf '%s\n' "$info" | field connected_slaves)" -gt 0 ] 2>/dev/null || { log "stopping as the primary, without a replica"; return 0; }
  limit="${STORE_HANDOVER_SEC:-10}"
  me="$(id "$SELF")"
  ask 127.0.0.1 "$PORT" CLIENT PAUSE "$(((limit + 5) * 1000))" WRITE >/dev/null || true
  i=0
  while [ "$i" -lt 8 ]; do # up to 2 s for every replica to reach this node's offset
    info="$(ask 127.0.0.1 "$PORT" INFO replication)" || break
    offset="$(printf '%s\n' "$info" | field master_repl_offset)"
    behind="$(printf '%s\n' "$info" | tr -d '\r' | sed -n 's/^slave[0-9]*:.*,offset=\([0-9]*\),.*/\1/p' | awk -v o="$offset" '$1 != o' | wc -l)"
    [ "$behind" -eq 0 ] && break
    sleep 0.25
    i=$((i + 1))
  done
  asked=""
  for s in $SENTINELS; do
    [ "$(ask "$s" "$SPORT" SENTINEL FAILOVER "$NAME")" = OK ] && { asked="$s"; break; }
  done
  if [ -z "$asked" ]; then
    ask 127.0.0.1 "$PORT" CLIENT UNPAUSE >/dev/null || true
    log "stopping as the primary: no sentinel accepted a failover"
    return 0
  fi
  log "stopping: writes paused, sentinel $asked is promoting a replica"
  i=0
  while [ "$i" -lt "$((limit * 4))" ]; do
    now="$(ask "$asked" "$SPORT" SENTINEL get-master-addr-by-name "$NAME" | sed -n 1p)"
    if [ -n "$now" ] && [ "$now" != "$me" ]; then log "handed over to $now in $((i / 4)) s; stopping"; return 0; fi
    sleep 0.25
    i=$((i + 1))
  done
  log "no replica promoted within $limit s; stopping anyway"
}

# Runs redis-server (arguments: its command line) under this shell, so that SIGTERM (docker stop,
# pod deletion) hands over first; exits with its status, so that a crash restarts the container.
run() {
  "$@" &
  pid=$!
  trap 'handover; kill -TERM "$pid" 2>/dev/null || true' TERM INT
  status=0
  wait "$pid" || status=$?
  while kill -0 "$pid" 2>/dev/null; do status=0; wait "$pid" || status=$?; done
  exit "$status"
}

case "${1:-}" in
  data)
    shift
    # redis-server's own flags after the caller's: diskless replication both ways (nothing of the
    # store touches a disk; a replica that must resync while holding data cannot, and says so in
    # its log: restart it), and in hostname mode the name to be known by.
    set -- "$@" --port "$PORT" --masterauth "$REDISCLI_AUTH" --repl-diskless-sync yes --repl-diskless-load on-empty-db
    [ "$ANNOUNCE" = hostname ] && set -- "$@" --replica-announce-ip "$SELF"
    waited=0
    while :; do
      note() { [ $((waited % 10)) -eq 0 ] && log "$*"; waited=$((waited + 2)); sleep 2; }
      me="$(id "$SELF")"
      [ -n "$me" ] || { note "waiting for this node's own name to resolve"; continue; }
      primary="$(sentinel_primary)"
      by=sentinels
      if [ -z "$primary" ]; then
        primary="$(peer_primary)"; by="a peer (no sentinel answers)"
        [ -n "$primary" ] || { primary="$(id "$SEED")"; by="the seed (no sentinel answers, no peer is a primary)"; }
        [ -n "$primary" ] || { note "no sentinel answers, no peer is a primary, the seed $SEED does not resolve: waiting"; continue; }
      fi
      if [ "$primary" = "$me" ]; then
        # Named the primary, but starting empty: only when no other node holds data.
        other="$(peer_primary)"
        if [ -n "$other" ]; then
          primary="$other"; by="a peer"
        else
          holder="$(peer_with_data)"
          if [ -z "$holder" ]; then
            log "starting as the primary (named by $by; no other node holds data)"
            run redis-server "$@"
          fi
          note "named the primary by $by, but $holder holds data and this node starts empty: waiting for Sentinel to promote a replica (when no sentinel can, promote one by hand: redis-cli -h <replica> REPLICAOF NO ONE)"
          continue
        fi
      fi
      # Follow it once it answers (any answer): a replica of an address that is gone would never
      # be found by the sentinels again.
      if [ -z "$(ask "$primary" "$PORT" PING)" ]; then
        note "the primary $primary (named by $by) does not answer: waiting"
        continue
      fi
      log "starting as a replica of $primary (named by $by)"
      run redis-server "$@" --replicaof "$primary" "$PORT"
    done
    ;;

  sentinel)
    waited=0
    while :; do
      primary="$(sentinel_primary)"
      [ -n "$primary" ] || primary="$(peer_primary)"
      if [ -z "$primary" ] && [ -n "$(ask "$SEED" "$PORT" PING)" ]; then primary="$(id "$SEED")"; fi
      [ -n "$primary" ] && break
      [ $((waited % 10)) -eq 0 ] && log "no primary found yet (no sentinel answers, no data node is a primary, the seed $SEED does not answer)"
      waited=$((waited + 2))
      sleep 2
    done
    mkdir -p "$DIR"
    conf="$DIR/sentinel.conf"
    # The file holds the password: owner-only, in memory (tmpfs / emptyDir medium Memory).
    umask 077
    {
      echo "port $SPORT"
      echo "requirepass $REDISCLI_AUTH"
      if [ "$ANNOUNCE" = hostname ]; then
        echo "sentinel resolve-hostnames yes"
        echo "sentinel announce-hostnames yes"
        echo "sentinel announce-ip $SELF"
      fi
      echo "sentinel monitor $NAME $primary $PORT ${STORE_QUORUM:-2}"
      echo "sentinel auth-pass $NAME $REDISCLI_AUTH"
      echo "sentinel down-after-milliseconds $NAME ${STORE_DOWN_AFTER_MS:-5000}"
      echo "sentinel failover-timeout $NAME ${STORE_FAILOVER_TIMEOUT_MS:-30000}"
      echo "sentinel parallel-syncs $NAME 1"
    } > "$conf"
    log "starting; monitoring $NAME at $primary"
    exec redis-server "$conf" --sentinel
    ;;

  ready)
    case "${2:-}" in
      data)
        info="$(ask 127.0.0.1 "$PORT" INFO replication)" || exit 1
        case "$(printf '%s\n' "$info" | field role)" in
          master) exit 0 ;;
          # A replica is ready once it holds the primary's data (not while its first sync runs).
          slave)
            [ "$(printf '%s\n' "$info" | field master_link_status)" = up ] &&
              [ "$(printf '%s\n' "$info" | field master_sync_in_progress)" = 0 ] ;;
          *) exit 1 ;;
        esac
        ;;
      sentinel)
        [ -n "$(ask 127.0.0.1 "$SPORT" SENTINEL get-master-addr-by-name "$NAME" | sed -n 2p | tr -dc 0-9)" ] ;;
      *) echo "usage: redis-store.sh ready data|sentinel" >&2; exit 2 ;;
    esac
    ;;

  *)
    echo "usage: redis-store.sh data [redis-server flags] | sentinel | ready data|sentinel" >&2
    exit 2
    ;;
esac
