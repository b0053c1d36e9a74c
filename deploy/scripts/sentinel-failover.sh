#!/usr/bin/env bash
# The replicated core store of deploy/compose/sentinel.yml, for real: brings up only its Redis
# nodes and sentinels (not the relay) in a throw-away Compose project, runs its faults, prints what
# it measured, and takes it all down.
#
#   deploy/scripts/sentinel-failover.sh           (as root, with a running Docker engine and the
#                                                  base images: deploy/scripts/standin-images.sh)
#
# A writer stands in for the core with REDIS_WAIT_REPLICAS=1: it asks the sentinels for the
# primary, sends SET then WAIT 1 500 on one connection, and counts a key as acknowledged only when
# WAIT confirmed a replica (what the core answers 200); anything else is what the core answers 503
# and a client resends. Faults, each under that writer:
#   kill      docker kill of the primary's container (it stays down): a replica must be promoted,
#             and every acknowledged key must be on it
#   rejoin    the killed node started again: it must come back as a replica, never as an empty
#             primary, and catch up
#   crash     the primary's redis-server killed with SIGKILL inside its container: the restart
#             policy brings the container back within a second, empty, before the sentinels have
#             noticed; it must wait for them to promote a replica and then follow it
#   stop      docker stop of the primary: it hands over first (SENTINEL FAILOVER) and then stops
# Fails when an acknowledged key is missing, no replica is promoted, or a node comes back empty as
# the primary.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO="$PWD"
say() { echo "sentinel-failover: $*"; }
figure() { printf 'sentinel-failover: FIGURE %-44s %s\n' "$1" "$2"; }
fail() { say "FAIL: $*" >&2; FAILED=1; }
FAILED=0

DOCKER="${DOCKER:-docker}"
"$DOCKER" info >/dev/null 2>&1 || { say "no Docker engine answers (deploy/compose-e2e.sh shows how to start one)" >&2; exit 1; }
if "$DOCKER" compose version >/dev/null 2>&1; then COMPOSE_BIN=("$DOCKER" compose); else COMPOSE_BIN=(docker-compose); fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/zax-sentinel.XXXXXX")"
PROJECT="zaxsentinel$$"
deploy/scripts/init-env.sh --out "$WORK/env" >/dev/null
dc() { "${COMPOSE_BIN[@]}" -p "$PROJECT" --env-file "$WORK/env" -f "$REPO/docker-compose.yml" -f "$REPO/deploy/compose/sentinel.yml" "$@"; }
cleanup() {
  dc down -v --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

NODES=(redis-core redis-core-2 redis-core-3)
SENTINELS=(redis-core-sentinel-1 redis-core-sentinel-2 redis-core-sentinel-3)
declare -A CID=()
cid() { [ -n "${CID[$1]:-}" ] || CID[$1]="$(dc ps -q "$1")"; echo "${CID[$1]}"; }
# Commands run inside a sentinel's container (the store's network is internal: the host has no
# route to it). The password is in that container's REDISCLI_AUTH.
in_sentinel() { "$DOCKER" exec -i "$(cid redis-core-sentinel-1)" "$@"; }
# The sentinels know the nodes by address (STORE_ANNOUNCE=ip): primary is the one they name,
# primary_name the service whose running container has that address (nothing while it is down).
primary() { in_sentinel redis-cli -p 26379 SENTINEL get-master-addr-by-name zax-core 2>/dev/null | sed -n 1p; }
ip_of() { "$DOCKER" inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(cid "$1")" 2>/dev/null; }
primary_name() {
  local ip n
  ip="$(primary)"
  for n in "${NODES[@]}"; do [ -n "$ip" ] && [ "$(ip_of "$n")" = "$ip" ] && { echo "$n"; return 0; }; done
  return 0
}
promoted_from() { local n; n="$(primary_name)"; [ -n "$n" ] && [ "$n" != "$1" ]; }
wait_promoted() { # old t0: waits (60 s at most) until the sentinels name another running node
  until promoted_from "$1"; do
    [ "$(awk -v a="$2" -v b="$(now)" 'BEGIN { print (b - a > 60) }')" = 0 ] || return 0
    sleep 0.2
  done
}
role_of() { in_sentinel timeout 3 redis-cli -h "$1" ROLE 2>/dev/null | sed -n 1p; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }
wait_for() { # seconds description command...: polls every 0.2 s
  local limit="$1" what="$2" t0
  shift 2
  t0=$SECONDS
  until "$@"; do
    [ $((SECONDS - t0)) -lt "$limit" ] || { fail "$what: not within $limit s"; return 1; }
    sleep 0.2
  done
}
all_healthy() {
  local s
  for s in "${NODES[@]}" "${SENTINELS[@]}"; do
    [ "$("$DOCKER" inspect -f '{{.State.Health.Status}}' "$(cid "$s")" 2>/dev/null)" = healthy ] || return 1
  done
}

# The writer: SET + WAIT 1 on one connection to whatever the sentinels name, for $1 seconds; one
# line per write: "<key number> ack|refused <primary>". Runs in the sentinel's container.
WRITER='
i=$START; end=$(( $(date +%s) + $1 ))
while [ "$(date +%s)" -lt "$end" ]; do
  p="$(timeout 2 redis-cli -p 26379 SENTINEL get-master-addr-by-name zax-core 2>/dev/null | sed -n 1p)"
  out="$(printf "SET fo:%d %d\nWAIT 1 500\n" "$i" "$i" | timeout 3 redis-cli -h "${p:-none}" 2>/dev/null | tr "\n" " ")" || true
  case "$out" in "OK "[1-9]*) echo "$i ack $p" ;; *) echo "$i refused ${p:-none}" ;; esac
  i=$((i + 1))
done'
START=0
writer_start() { # seconds name: the log is $WORK/<name>.log
  in_sentinel env START="$START" sh -c "$WRITER" writer "$1" | while read -r line; do echo "$(now) $line"; done > "$WORK/$2.log" &
  WRITER_PID=$!
}
writer_end() { # name: waits, then checks every acknowledged key on the current primary
  wait "$WRITER_PID" || true
  local name="$1" log="$WORK/$1.log" acked refused p present missing
  acked="$(awk '$3 == "ack"' "$log" | wc -l)"
  refused="$(awk '$3 == "refused"' "$log" | wc -l)"
  START=$(( $(awk 'END { print $2 + 1 }' "$log") ))
  p="$(primary)"
  present="$(awk '$3 == "ack" { printf "EXISTS fo:%d\n", $2 }' "$log" | in_sentinel redis-cli -h "$p" 2>/dev/null | grep -c '^1$' || true)"
  missing=$((acked - present))
  figure "$name: writes acknowledged / refused" "$acked / $refused"
  if [ "$(awk '$3 == "refused"' "$log" | wc -l)" -gt 0 ]; then
    figure "$name: refused (503 + Retry-After) from .. to" "$(awk '$3 == "refused" { if (!a) a = $1; b = $1 } END { printf "%.1f s", b - a }' "$log")"
  fi
  [ "$missing" = 0 ] && say "$name: all $acked acknowledged keys are on the primary ($p)" || fail "$name: $missing acknowledged keys missing on $p"
}
first_write_on() { # log host: time of the first acknowledged write on host
  awk -v h="$2" '$3 == "ack" && $4 == h { print $1; exit }' "$1"
}
ack_gap() { # log: the longest time without an acknowledged write
  awk '$3 == "ack" { if (last) { d = $1 - last; if (d > m) m = d } last = $1 } END { printf "%.1f s", m }' "$1"
}

# ---- up ----------------------------------------------------------------------------------------
t=$(now)
dc up -d "${NODES[@]}" "${SENTINELS[@]}" >/dev/null 2>&1 || { dc up -d "${NODES[@]}" "${SENTINELS[@]}"; exit 1; }
for s in "${NODES[@]}" "${SENTINELS[@]}"; do cid "$s" >/dev/null; done # fills CID (in this shell)
wait_for 90 "all healthy" all_healthy
figure "store up and healthy (3 nodes, 3 sentinels)" "$(since "$t")"
[ "$(primary_name)" = redis-core ] || fail "the seed redis-core is not the first primary ($(primary))"
say "quorum: $(in_sentinel redis-cli -p 26379 SENTINEL ckquorum zax-core)"
for s in "${SENTINELS[@]}"; do
  n="$(in_sentinel redis-cli -h "$s" -p 26379 SENTINEL master zax-core | awk 'p { print; exit } /^num-other-sentinels$/ { p = 1 }')"
  [ "$n" = 2 ] || fail "$s sees $n other sentinels, not 2"
done

# ---- kill ----------------------------------------------------------------------------------------
say "kill: docker kill of the primary under the writer"
old="$(primary_name)"
writer_start 25 kill
sleep 5
t=$(now); "$DOCKER" kill "$(cid "$old")" >/dev/null
wait_promoted "$old" "$t"
new="$(primary_name)"
figure "kill: a replica promoted ($old -> $new)" "$(since "$t")"
writer_end kill
fw="$(first_write_on "$WORK/kill.log" "$(primary)")"
[ -n "$fw" ] && figure "kill: writes acknowledged again after" "$(awk -v a="$t" -v b="$fw" 'BEGIN { printf "%.1f s", b - a }')"
figure "kill: longest time without an acknowledgement" "$(ack_gap "$WORK/kill.log")"
[ "$new" != "$old" ] || fail "kill: no replica was promoted"

# ---- rejoin --------------------------------------------------------------------------------------
say "rejoin: the killed node started again"
t=$(now); "$DOCKER" start "$(cid "$old")" >/dev/null
wait_for 60 "$old back and in sync" all_healthy
figure "rejoin: $old back, in sync" "$(since "$t")"
[ "$(role_of "$old")" = slave ] || fail "rejoin: $old came back as $(role_of "$old"), not a replica"
[ "$(primary_name)" = "$new" ] || fail "rejoin: the primary changed to $(primary_name)"
"$DOCKER" logs "$(cid "$old")" 2>&1 | grep 'redis-store\[' | tail -n 1 | sed 's/^/sentinel-failover:   /'

# ---- crash ---------------------------------------------------------------------------------------
say "crash: the primary's redis-server killed with SIGKILL (the container restarts at once)"
old="$(primary_name)"
restarts0="$("$DOCKER" inspect -f '{{.RestartCount}}' "$(cid "$old")")"
primaries0="$("$DOCKER" logs "$(cid "$old")" 2>&1 | grep -c 'starting as the primary' || true)"
writer_start 30 crash
sleep 5
t=$(now)
"$DOCKER" exec "$(cid "$old")" sh -c 'for d in /proc/[0-9]*; do [ "$(cat "$d/comm" 2>/dev/null)" = redis-server ] && kill -9 "${d#/proc/}"; done; true'
wait_for 10 "$old restarted" sh -c '[ "$("$1" inspect -f "{{.RestartCount}}" "$2")" -gt "$3" ]' _ "$DOCKER" "$(cid "$old")" "$restarts0" || true
figure "crash: container restarted by its policy after" "$(since "$t")"
# Until the sentinels act, the restarted node must not be an empty primary.
wait_promoted "$old" "$t"
new="$(primary_name)"
figure "crash: a replica promoted ($old -> $new)" "$(since "$t")"
[ "$new" != "$old" ] || fail "crash: no replica was promoted"
writer_end crash
figure "crash: longest time without an acknowledgement" "$(ack_gap "$WORK/crash.log")"
wait_for 60 "$old in sync again" all_healthy
[ "$("$DOCKER" logs "$(cid "$old")" 2>&1 | grep -c 'starting as the primary' || true)" = "$primaries0" ] || fail "crash: $old started again as the primary"
[ "$(role_of "$old")" = slave ] || fail "crash: $old is $(role_of "$old"), not a replica"
"$DOCKER" logs --since 60s "$(cid "$old")" 2>&1 | grep 'redis-store\[' | sed 's/^/sentinel-failover:   /' | tail -n 3

# ---- stop ----------------------------------------------------------------------------------------
say "stop: docker stop of the primary (hands over first)"
old="$(primary_name)"
writer_start 20 stop
sleep 5
t=$(now); "$DOCKER" stop "$(cid "$old")" >/dev/null
figure "stop: docker stop returned after" "$(since "$t")"
new="$(primary_name)"
figure "stop: primary now ($old -> $new)" "$(since "$t")"
[ "$new" != "$old" ] || fail "stop: the primary did not hand over"
writer_end stop
figure "stop: longest time without an acknowledgement" "$(ack_gap "$WORK/stop.log")"
"$DOCKER" logs "$(cid "$old")" 2>&1 | grep 'redis-store\[' | tail -n 2 | sed 's/^/sentinel-failover:   /'

if [ "$FAILED" = 0 ]; then say "PASS"; else say "FAILED"; exit 1; fi
