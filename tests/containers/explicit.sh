#!/usr/bin/env bash
# The explicit-listener mesh (deploy/compose/docker-compose.explicit.yml):
# no NET_ADMIN anywhere, agents as UID 1337; web's call through its
# agent's loopback listener reaches api over mTLS.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/../integration/lib.sh"
require_images
command -v tcpdump >/dev/null || { echo "skip: tcpdump missing"; exit 77; }

P=lytestx$$
remove_stale_projects
F=docker-compose.explicit.yml
export LANYARD_LOG_LEVEL=debug
down_done=0
teardown() {
  if [ "$down_done" = 0 ]; then
    if [ "$FAILS" -ne 0 ]; then compose "$F" "$P" logs --no-color >"$T/compose.log" 2>&1 || true; fi
    compose "$F" "$P" down -v -t 5 >/dev/null 2>&1 || true
  fi
  cleanup
}
trap teardown EXIT

if ! compose "$F" "$P" up -d --no-build >"$T/up.log" 2>&1; then
  cat "$T/up.log"
  bad "docker-compose up"
  exit 1
fi
check "web's agent healthy" wait_healthy "$(container "$P" web-agent)" 60
check "api healthy: its agent holds an identity" wait_healthy "$(container "$P" api)" 60
for s in api-agent web-agent; do
  c=$(container "$P" "$s")
  check "$s has no added capability and runs as 1337" bash -c \
    "[ -z \"\$('$DOCKER' inspect -f '{{.HostConfig.CapAdd}}' $c | tr -d '[]')\" ] &&
     grep -q '^Uid:[[:space:]]*1337' /proc/\$('$DOCKER' inspect -f '{{.State.Pid}}' $c)/status"
done

br=$(bridge_of "${P}_default")
m=$(marker)
tcpdump -i "$br" --immediate-mode -nn -U -s 0 -w "$T/bridge.pcap" 'tcp port 8443' >"$T/tcpdump.log" 2>&1 &
cap=$!
PEERS+=("$cap")
for _ in $(seq 1 50); do grep -q "listening on" "$T/tcpdump.log" && break; sleep 0.1; done
body=$(compose "$F" "$P" exec -T web curl -sS -m 10 "http://127.0.0.1:8080/?m=$m" 2>&1 || true)
check "web -> its agent -> api answers ('$body')" [ "$body" = "hello from api" ]
sleep 0.5
kill "$cap" 2>/dev/null || true
wait "$cap" 2>/dev/null || true
check "the call crossed the bridge as TLS records" [ "$(tls_records "$T/bridge.pcap")" -gt 0 ]
check "the marker never crossed the bridge" bash -c "! grep -aq '$m' '$T/bridge.pcap'"
check "api's agent logs web's SPIFFE ID" bash -c \
  "'$DOCKER' logs '$(container "$P" api-agent)' 2>&1 | grep 'mtls_established' | grep -q 'peer_id=spiffe://mesh.local/ns/default/sa/web'"
no_direct() { ! compose "$F" "$P" exec -T web curl -sf -m 3 -o /dev/null http://api:8080/ 2>/dev/null; }
check "api itself is not reachable around its agent" no_direct
compose "$F" "$P" down -v -t 5 >"$T/down.log" 2>&1 || cat "$T/down.log"
down_done=1
left=$(leftovers "$P")
check "down -v leaves nothing of the project${left:+ ($left)}" [ -z "$left" ]
finish
