#!/usr/bin/env bash
# The compose mesh (deploy/compose/docker-compose.yml) on a real engine:
# web's calls to api go over mTLS, survive SVID rotations, survive
# `restart api`, and `down -v` leaves nothing. Uses the images of the
# containers.image fixture.
#   compose.sh        with Debian 12's docker-compose (v1)
#   compose.sh v2     with `docker compose` (v2), what the README shows
LY_COMPOSE=${1:-v1}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/../integration/lib.sh"
require_images
command -v tcpdump >/dev/null || { echo "skip: tcpdump missing"; exit 77; }
if [ "$LY_COMPOSE" = v2 ]; then
  fetch_compose_v2 || { bad "fetch docker compose v2 (Debian 13's docker-compose)"; exit 1; }
  COMPOSE_CMD="docker compose"
else
  COMPOSE_CMD=docker-compose
fi

P=lytest$$
remove_stale_projects
F=docker-compose.yml
ROTATION_S=${LY_ROTATION_S:-60}
export LANYARD_LOG_LEVEL=debug # mtls_established names the peer's ID
down_done=0
teardown() {
  if [ "$down_done" = 0 ]; then
    if [ "$FAILS" -ne 0 ]; then compose "$F" "$P" logs --no-color >"$T/compose.log" 2>&1 || true; fi
    compose "$F" "$P" down -v -t 5 >/dev/null 2>&1 || true
  fi
  cleanup
}
trap teardown EXIT
web() { compose "$F" "$P" exec -T web "$@"; }

echo "# up"
start=$(date +%s)
if ! compose "$F" "$P" up -d --no-build >"$T/up.log" 2>&1; then
  cat "$T/up.log"
  bad "$COMPOSE_CMD up"
  exit 1
fi
check "web's agent healthy (lanyard healthcheck as the compose probe)" wait_healthy "$(container "$P" web-agent)" 60
check "api healthy: its agent holds an identity" wait_healthy "$(container "$P" api)" 60
echo "mesh up in $(($(date +%s) - start)) s"

echo "# a request over the bridge: TLS on the wire, never the request"
br=$(bridge_of "${P}_mesh")
m=$(marker)
tcpdump -i "$br" --immediate-mode -nn -U -s 0 -w "$T/bridge.pcap" 'tcp and host 172.30.77.20 and host 172.30.77.21' \
  >"$T/tcpdump.log" 2>&1 &
cap=$!
PEERS+=("$cap")
for _ in $(seq 1 50); do grep -q "listening on" "$T/tcpdump.log" && break; sleep 0.1; done
body=$(web curl -sS -m 10 "http://api:8080/?m=$m" 2>&1 || true)
check "web -> http://api:8080/ answers ('$body')" [ "$body" = "hello from api" ]
sleep 0.5 # the last segments reach the capture
kill "$cap" 2>/dev/null || true
wait "$cap" 2>/dev/null || true
n=$(tcpdump -nn -r "$T/bridge.pcap" 2>/dev/null | wc -l)
tls=$(tls_records "$T/bridge.pcap")
check "the bridge carried web<->api segments ($n)" [ "$n" -gt 0 ]
check "they are TLS records ($tls segments start one)" [ "$tls" -gt 0 ]
check "the marker never crossed the bridge" bash -c "! grep -aq '$m' '$T/bridge.pcap'"
check "api's agent logs web's SPIFFE ID" bash -c \
  "'$DOCKER' logs '$(container "$P" api-agent)' 2>&1 | grep 'mtls_established' | grep -q 'peer_id=spiffe://mesh.local/ns/default/sa/web'"

echo "# ${ROTATION_S} s of requests with 20 s SVIDs"
since=$(date -u +%Y-%m-%dT%H:%M:%S)
# shellcheck disable=SC2016 # expanded in web's shell
res=$(web sh -c 'ok=0; fail=0; end=$(($(date +%s) + $0))
  while [ "$(date +%s)" -lt "$end" ]; do
    if curl -sf -m 5 -o /dev/null http://api:8080/; then ok=$((ok + 1)); else fail=$((fail + 1)); fi
    sleep 0.2
  done
  echo "$ok $fail"' "$ROTATION_S")
read -r okn failn <<<"$res"
rot_api=$("$DOCKER" logs --since "$since" "$(container "$P" api-agent)" 2>&1 | grep -c "event=svid_rotated" || true)
rot_web=$("$DOCKER" logs --since "$since" "$(container "$P" web-agent)" 2>&1 | grep -c "event=svid_rotated" || true)
echo "requests: $okn succeeded, $failn failed; rotations: api $rot_api, web $rot_web"
check "requests went through ($okn)" [ "${okn:-0}" -gt 0 ]
check "no request failed across the rotations" [ "${failn:-1}" -eq 0 ]
check "api's agent rotated at least twice ($rot_api)" [ "$rot_api" -ge 2 ]
check "web's agent rotated at least twice ($rot_web)" [ "$rot_web" -ge 2 ]

echo "# restart api: its agent must follow into the new namespace"
agent=$(container "$P" api-agent)
app=$(container "$P" api)
restarts=$("$DOCKER" inspect -f '{{.RestartCount}}' "$agent")
old_ns=$(netns_of "$app")
t0=$(date +%s.%N)
compose "$F" "$P" restart api >/dev/null 2>&1
t1=$(date +%s.%N)
recovered=0
for _ in $(seq 1 120); do
  if [ "$(web curl -sf -m 2 http://api:8080/ 2>/dev/null)" = "hello from api" ]; then recovered=1; break; fi
  sleep 0.25
done
t2=$(date +%s.%N)
printf 'restart: %s restart took %.1f s; traffic flowed again %.1f s after it returned (%.1f s in all)\n' "$COMPOSE_CMD" \
  "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" "$(echo "$t2 - $t0" | bc)"
check "web -> api works again after the restart" [ "$recovered" = 1 ]
check "api's agent logged event=netns_lost" bash -c "'$DOCKER' logs '$agent' 2>&1 | grep -q 'event=netns_lost'"
check "the agent container was restarted by its policy" \
  [ "$("$DOCKER" inspect -f '{{.RestartCount}}' "$agent")" -gt "$restarts" ]
new_ns=$(netns_of "$app")
check "api got a new namespace ($old_ns -> $new_ns)" [ "$old_ns" != "$new_ns" ]
check "api's agent runs in it" [ "$(netns_of "$agent")" = "$new_ns" ]
check "the agent runs as UID 1337 after installing its rules" bash -c \
  "grep -q '^Uid:[[:space:]]*1337' /proc/$("$DOCKER" inspect -f '{{.State.Pid}}' "$agent")/status"
check "and holds no capability" bash -c \
  "grep -q '^CapEff:[[:space:]]*0000000000000000' /proc/$("$DOCKER" inspect -f '{{.State.Pid}}' "$agent")/status"

echo "# down -v"
compose "$F" "$P" down -v -t 5 >"$T/down.log" 2>&1 || cat "$T/down.log"
down_done=1
left=$(leftovers "$P")
check "no container, network or volume of the project is left${left:+ ($left)}" [ -z "$left" ]
finish
