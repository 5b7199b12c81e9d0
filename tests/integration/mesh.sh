#!/usr/bin/env bash
# End to end on the local mesh (deploy/local/mesh.sh): pods made of
# network namespaces on a bridge, each meshed pod with `lanyard iptables`
# and an agent running as UID 1337, like an injected Kubernetes pod.
#
# - web's application calls http://10.77.0.21:8080/ (api's nginx) without
#   knowing about Lanyard, and gets the page;
# - a capture on the bridge shows TLS records on port 8080 and not one
#   byte of the request (a random marker in a header), while api's nginx
#   logged the marker;
# - the api agent logged web's SPIFFE ID, and refuses web on a port its
#   allow rules do not cover;
# - strict mode refuses plaintext from the legacy pod (no agent) with
#   reason=plaintext_rejected; permissive mode lets the same request in;
# - `mesh.sh down` leaves no namespace, link or process behind (also
#   after a crashed `up`), and the Lanyard daemons exited 0 on SIGTERM.
# Needs root, iproute2, iptables, nginx, curl and tcpdump; exits 77
# (skipped) without them.
. "$(dirname "$0")/lib.sh"

mesh_suite tcpdump ss
TD=mesh.local
WEB=spiffe://$TD/ns/default/sa/web
API=spiffe://$TD/ns/default/sa/api
API_IP=10.77.0.21
LEGACY_IP=10.77.0.40

# The mesh's own link names (veth-<pod>, ly-br0, a pod's eth0): links that
# other software on the host makes meanwhile (docker's vethXXXX, br-XXXX)
# are none of the mesh's business.
host_links() {
  { ip -o link show type veth; ip -o link show type bridge; } |
    awk -F': ' '{sub(/@.*/, "", $2); print $2}' | grep -E '^(veth-|ly-|eth0$)' | sort || true
}
links_before=$(host_links)

in_pod() { mesh exec "$@"; }
gone() { [ ! -e "/proc/$1" ] || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
marker() { echo "$1-$(openssl rand -hex 8)"; }
count() { grep -c -- "$1" "$2" 2>/dev/null || true; }

# mesh_up MODE DIR: the mesh in MODE with its state in DIR.
mesh_up() {
  if mesh up --mode "$1" --state "$2" --ttl 2m >"$T/up-$1.out" 2>&1; then
    ok "mesh up ($1)"
    cat "$T/up-$1.out"
  else
    bad "mesh up ($1)"
    cat "$T/up-$1.out"
    exit 1
  fi
}

# mesh_down DIR: down, and every Lanyard daemon exited 0 on SIGTERM (a
# clean, graceful exit: under the sanitizers a leak makes it non-zero).
mesh_down() {
  check "mesh down" mesh down --state "$1"
  local f
  for f in "$1"/run/ca.rc "$1"/run/*.agent.rc; do
    check "$(basename "$f" .rc) exited with status 0 ($(cat "$f" 2>/dev/null || echo none))" \
      test "$(cat "$f" 2>/dev/null)" = 0
  done
}

# ---- strict ------------------------------------------------------------
S1=$T/strict
mesh_up strict "$S1"
check "status says every pod is up" mesh status --state "$S1"
# Nothing on a clean start connects to the CA without speaking TLS (the
# scripts ask the kernel whether it listens).
check "a clean mesh start: the CA logged no failed handshake" \
  bash -c "! grep -q rpc_handshake_failed '$S1/logs/ca.log'"

# A capture on the node's bridge: everything between the pods.
PCAP=$T/bridge.pcap
ip netns exec ly-node tcpdump -i ly-br0 -n -U --immediate-mode -s 0 -Z root -w "$PCAP" \
  2>"$T/tcpdump.log" 9>&- &
TCPDUMP=$!
PEERS+=("$TCPDUMP")
# capture_sync: the capture file holds every exchange that has finished
# so far. A datagram with a fresh marker goes from the legacy pod to the
# node until the file shows it. The bridge hands each frame to the capture
# before it delivers it, so the frames of a finished exchange took their
# places in the capture's queue before the marker did, and tcpdump reads
# that queue in order and writes each packet as it reads it (-U). A pause
# is no substitute: the kernel may hold captured frames up to a second
# before tcpdump gets them (without --immediate-mode), and tcpdump drops
# what it has not read when it is stopped.
capture_sync() {
  local sync _
  sync=$(marker lanyard-capture-sync)
  for _ in $(seq 1 50); do
    # shellcheck disable=SC2016 # expanded by the inner bash
    in_pod legacy bash -c 'echo "$0" >/dev/udp/10.77.0.1/9' "$sync" 2>/dev/null || true
    grep -aqF "$sync" "$PCAP" 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}
check "tcpdump captures on the bridge" capture_sync

SECRET=$(marker lanyard-plaintext-canary)
body=$(in_pod web curl -sS -m 10 -H "X-Marker: $SECRET" "http://$API_IP:8080/" 2>&1 || true)
check "web's app gets api's page over plain http://$API_IP:8080/ ($body)" \
  test "$body" = "hello from api"
for _ in 1 2 3 4; do
  in_pod web curl -sS -m 10 -o /dev/null -H "X-Marker: $SECRET" "http://$API_IP:8080/" || true
done
check "api's nginx logged the request with the marker" grep -q "marker=\"$SECRET\"" "$S1/logs/api.access.log"
check "api's agent logged web's SPIFFE ID for the mesh connection" \
  grep -q "event=mtls_established listener=inbound direction=inbound peer=10.77.0.20:.* peer_id=$WEB" "$S1/logs/api.agent.log"
check "web's agent logged api's SPIFFE ID" \
  grep -q "event=mtls_established listener=outbound direction=outbound .*peer_id=$API" "$S1/logs/web.agent.log"
check "both agents knew the other end was an agent (ALPN lanyard/1)" \
  bash -c "grep -q 'direction=inbound .*peer_id=$WEB .*agent=true' '$S1/logs/api.agent.log' &&
           grep -q 'direction=outbound .*peer_id=$API .*agent=true' '$S1/logs/web.agent.log'"
if [ -e /proc/sys/net/ipv6 ]; then
  body=$(in_pod web curl -sS -m 10 -g -H "X-Marker: $SECRET" "http://[fd00:77::21]:8080/" 2>&1 || true)
  check "and over IPv6, http://[fd00:77::21]:8080/ ($body)" test "$body" = "hello from api"
  check "  the api agent logged web's IPv6 address and SPIFFE ID" \
    grep -q "event=mtls_established listener=inbound direction=inbound peer=\[fd00:77::20\]:[0-9]* peer_id=$WEB" "$S1/logs/api.agent.log"
fi

# api's allow rules cover port 8080 only
before=$(count "reason=not_authorized" "$S1/logs/api.agent.log")
check "web on a port the allow rules do not cover (8081) is refused" \
  bash -c "! ip netns exec ly-web curl -sS -m 10 http://$API_IP:8081/ >/dev/null 2>&1"
sleep 0.3
check "  with reason=not_authorized" test "$(count "reason=not_authorized" "$S1/logs/api.agent.log")" -gt "$before"

# web -> legacy: not meshed, passes through as plaintext
body=$(in_pod web curl -sS -m 10 "http://$LEGACY_IP:8080/" 2>&1 || true)
check "web reaches the legacy pod (unmeshed: passthrough) ($body)" test "$body" = "hello from legacy"

# Plaintext from the legacy pod (no agent) to api, in strict mode
PLAIN1=$(marker lanyard-legacy-canary)
check "strict: plaintext from legacy to api:8080 is refused" \
  bash -c "! ip netns exec ly-legacy curl -sS -m 10 -H 'X-Marker: $PLAIN1' http://$API_IP:8080/ >/dev/null 2>&1"
sleep 0.3
check "  the api agent logged reason=plaintext_rejected" \
  grep -q "event=mtls_refused listener=inbound direction=inbound peer=$LEGACY_IP:.* reason=plaintext_rejected" "$S1/logs/api.agent.log"
check "  and nginx never saw it" bash -c "! grep -q '$PLAIN1' '$S1/logs/api.access.log'"

check "the capture holds the traffic so far" capture_sync
kill -INT "$TCPDUMP" 2>/dev/null || true
wait "$TCPDUMP" 2>/dev/null || true
echo "capture: $(tcpdump -r "$PCAP" -n 2>/dev/null | wc -l) packets"

# TLS records: the first byte of each TCP payload between web and api:8080
records() { # content-type
  tcpdump -r "$PCAP" -n "tcp port 8080 and host 10.77.0.20 and host $API_IP and \
    tcp[((tcp[12:1] & 0xf0) >> 2):1] = $1" 2>/dev/null | wc -l
}
hs=$(records 0x16)
app=$(records 0x17)
check "the capture shows TLS handshake records (0x16) on port 8080 ($hs)" test "$hs" -gt 0
check "the capture shows TLS application data records (0x17) on port 8080 ($app)" test "$app" -gt 0
check "the marker is nowhere in the capture's bytes" bash -c "! grep -aqF '$SECRET' '$PCAP'"
text=$(tcpdump -r "$PCAP" -n -A 2>/dev/null)
check "nor in tcpdump -A's reading of it ($(grep -cE '^[0-9:.]{15} IP' <<<"$text") IP packets)" \
  bash -c "[ -n \"\$0\" ] && ! grep -qF '$SECRET' <<<\"\$0\"" "$text"
web_to_api=$(tcpdump -r "$PCAP" -n -A "src host 10.77.0.20 and dst host $API_IP and dst port 8080" 2>/dev/null)
check "the capture holds web's packets to api:8080 ($(grep -cE '^[0-9:.]{15} IP' <<<"$web_to_api") IP packets)" \
  grep -q "10.77.0.20.[0-9]* > $API_IP.8080:" <<<"$web_to_api"
check "  and not one HTTP request line among them" bash -c "! grep -q 'HTTP/1' <<<\"\$0\"" "$web_to_api"
# The control: plaintext on the wire does show in this capture.
check "the legacy pod's plaintext marker is in the capture (the capture sees plaintext)" \
  grep -aqF "$PLAIN1" "$PCAP"

mesh_down "$S1"
check "no namespace left after down" bash -c "! ip netns list | grep -qE '$MESH_NS'"

# ---- permissive ----------------------------------------------------------
S2=$T/permissive
mesh_up permissive "$S2"
PLAIN2=$(marker lanyard-legacy-canary)
body=$(in_pod legacy curl -sS -m 10 -H "X-Marker: $PLAIN2" "http://$API_IP:8080/" 2>&1 || true)
check "permissive: plaintext from legacy to api:8080 passes ($body)" test "$body" = "hello from api"
check "  nginx logged it" grep -q "marker=\"$PLAIN2\"" "$S2/logs/api.access.log"
check "  the api agent logged it as plaintext" \
  grep -q "event=plaintext_established listener=inbound direction=inbound peer=$LEGACY_IP:" "$S2/logs/api.agent.log"
body=$(in_pod web curl -sS -m 10 "http://$API_IP:8080/" 2>&1 || true)
check "permissive: web still gets the page over mTLS ($body)" test "$body" = "hello from api"
check "  with its SPIFFE ID" \
  grep -q "event=mtls_established listener=inbound direction=inbound .*peer_id=$WEB" "$S2/logs/api.agent.log"
mesh_down "$S2"

# ---- nothing left behind ----------------------------------------------
check "down again is a no-op" mesh down --state "$S2"
# A crashed `up`: half a mesh, with a process still inside a pod
ip netns add ly-node
ip netns add ly-web
ip -n ly-node link add ly-br0 type bridge
ip -n ly-node link add veth-web type veth peer name eth0 netns ly-web
ip netns exec ly-web sleep 600 9>&- &
stray=$!
PEERS+=("$stray")
sleep 0.2
check "down cleans up after a crashed up" mesh down --state "$S2"
check "  the process left in a pod is gone" gone "$stray"

check "no namespace of the mesh left" bash -c "! ip netns list | grep -qE '$MESH_NS'"
check "the host's veths and bridges are as before" test "$links_before" = "$(host_links)"
check "no veth or bridge named like the mesh's on the host" \
  bash -c "! ip -o link show | grep -qE ': (ly-br0|veth-(ca|web|api|legacy))[@:]'"
check "no mesh process left (nothing runs from $T)" test -z "$(pgrep -f "$T/" || true)"
check "no daemon wrapper of mesh.sh left" test -z "$(pgrep -f 'mesh.sh _run' || true)"
check "the agents never logged a key" bash -c "! grep -rq 'PRIVATE KEY' '$T' --include='*.log'"
finish
