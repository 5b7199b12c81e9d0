#!/usr/bin/env bash
# `lanyard iptables` in a real network namespace: the rules appear, a
# second install does not duplicate them, inbound and outbound TCP is
# redirected (and the proxy UID's is not), origdst_echo recovers the
# original destination over IPv4 and IPv6, a source port freed by a reset
# is never taken with the other side's NAT decision (the agent's
# conntrack zone), --dry-run changes nothing and --remove leaves no
# LANYARD chain behind.
#
# Two namespaces joined by a veth pair: "pod" (10.200.0.2, fd00:200::2)
# and "peer" (10.200.0.1, fd00:200::1). Nothing outside them is touched.
# Needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN), iproute2, iptables and
# setpriv; exits 77 (skipped) without them.
. "$(dirname "$0")/lib.sh"
: "${ORIGDST_ECHO:?ORIGDST_ECHO must point at the origdst_echo tool}"

need_tools ip iptables-save ip6tables-save setpriv timeout
# Debian's python, for what bash cannot do: bind a source port, reset.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || { echo "skipped: python3 is not installed"; exit 77; }

POD=ly-pod-$$
PEER=ly-peer-$$
VETH_POD=lyp$$
VETH_PEER=lyq$$
POD4=10.200.0.2
PEER4=10.200.0.1
POD6=fd00:200::2
PEER6=fd00:200::1

# The namespaces go away even when a check fails or the script dies:
# processes first (lib.sh's cleanup), then the namespaces (the veth pair
# goes with them).
netns_cleanup() {
  cleanup
  ip netns del "$POD" 2>/dev/null || true
  ip netns del "$PEER" 2>/dev/null || true
}
trap netns_cleanup EXIT
# A signal (ctest's timeout, Ctrl-C) exits normally, so the trap runs.
trap 'exit 143' TERM
trap 'exit 130' INT

if ! ip netns add "$POD" || ! ip netns add "$PEER"; then
  echo "skipped: cannot create network namespaces"
  exit 77
fi
ip link add "$VETH_POD" netns "$POD" type veth peer name "$VETH_PEER" netns "$PEER"
for ns in "$POD" "$PEER"; do ip -n "$ns" link set lo up; done
ip -n "$POD" addr add "$POD4/24" dev "$VETH_POD"
ip -n "$PEER" addr add "$PEER4/24" dev "$VETH_PEER"
# nodad: the addresses are usable at once instead of after DAD.
ip -n "$POD" addr add "$POD6/64" dev "$VETH_POD" nodad
ip -n "$PEER" addr add "$PEER6/64" dev "$VETH_PEER" nodad
ip -n "$POD" link set "$VETH_POD" up
ip -n "$PEER" link set "$VETH_PEER" up

in_pod() { ip netns exec "$POD" "$@"; }
# The nat table without comments and counters, to compare states.
nat_rules() { in_pod iptables-save -t nat | grep -v '^#' | sed 's/ \[[0-9:]*\]$//'; }
nat6_rules() { in_pod ip6tables-save -t nat | grep -v '^#' | sed 's/ \[[0-9:]*\]$//'; }

# ask NS UID HOST PORT: connects as UID and prints what the server says
# ("" when the connection fails).
ask() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  ip netns exec "$1" setpriv --reuid "$2" --regid "$2" --clear-groups -- \
    timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1" && cat <&3' "$3" "$4" \
    2>/dev/null || true
}
# expect_answer "description" WANT NS UID HOST PORT
expect_answer() {
  local what=$1 want=$2 got
  shift 2
  got=$(ask "$@")
  if [ "$got" = "$want" ]; then ok "$what: $got"; else bad "$what: want '$want', got '$got'"; fi
}

# expect_tag "description" TAG NS UID HOST PORT: the connection reached
# the server tagged TAG directly, i.e. it was not redirected.
expect_tag() {
  local what=$1 tag=$2 got
  shift 2
  got=$(ask "$@")
  if [[ "$got" == "$tag "* ]]; then ok "$what: $got"; else bad "$what: want the '$tag' server, got '$got'"; fi
}

# ask_from NS UID SPORT HOST PORT: as ask, from source port SPORT;
# prints what the server says or "error: <why>".
ask_from() {
  ip netns exec "$1" setpriv --reuid "$2" --regid "$2" --clear-groups -- \
    timeout 10 "$PY" -c '
import socket, sys
sport, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", sport))
s.settimeout(5)
try:
    s.connect((host, port))
    print(s.recv(200).decode().strip())
except OSError as e:
    print("error:", e.strerror)
' "${@:3}"
}

# reset_start NS PORT: a server in NS that accepts each connection and
# resets it (an agent refusing a connection, a peer turning one down).
reset_start() {
  local log="$T/reset-$1-$2.log"
  ip netns exec "$1" "$PY" -c '
import socket, struct, sys
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1])))
s.listen(16)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
' "$2" >"$log" 2>&1 &
  RESET_PID=$!
  PEERS+=("$RESET_PID")
  local _
  for _ in $(seq 1 50); do
    grep -q '^listening' "$log" 2>/dev/null && return 0
    sleep 0.1
  done
  bad "the resetting server on $1:$2 did not start: $(cat "$log")"
}

# A source port between the app and the agent. Both connect from the
# pod's address to the same destinations; a connection reset by the side
# that accepted it leaves its conntrack entry (with the NAT decision) in
# CLOSE for 10 s, and a SYN from the same port reopens it. The agent's
# conntrack zone keeps the two apart. Ports below the ephemeral range,
# new for each case.
SPORT=$((20000 + RANDOM % 5000))
next_sport() { SPORT=$((SPORT + 1)); }

# echo_start NS PORT [TAG]: an origdst_echo in NS, logging to $T.
echo_start() {
  local log="$T/echo-$1-$2.log"
  ip netns exec "$1" "$ORIGDST_ECHO" --port "$2" ${3:+--tag "$3"} >"$log" 2>&1 &
  PIDS+=("$!")
  local _
  for _ in $(seq 1 50); do
    grep -q '^listening' "$log" 2>/dev/null && return 0
    sleep 0.1
  done
  bad "origdst_echo on $1:$2 did not start: $(cat "$log")"
}

# -- dry run: prints the rules, installs nothing
before=$(nat_rules)
before6=$(nat6_rules)
dry=$(in_pod "$LANYARD" iptables --dry-run --ipv6) || bad "--dry-run failed"
check "--dry-run prints the IPv4 rules" grep -q -- "-A LANYARD_REDIRECT -p tcp -j REDIRECT --to-ports 15001" <<<"$dry"
check "--dry-run prints the IPv6 rules" grep -q -- "! -d ::1/128" <<<"$dry"
check "--dry-run leaves the IPv4 nat table alone" test "$before" = "$(nat_rules)"
check "--dry-run leaves the IPv6 nat table alone" test "$before6" = "$(nat6_rules)"

# -- install, twice
check "install" in_pod "$LANYARD" iptables --ipv6
for chain in LANYARD_INBOUND LANYARD_IN_REDIRECT LANYARD_OUTPUT LANYARD_REDIRECT; do
  check "chain $chain exists (IPv4)" grep -q "^:$chain " <<<"$(nat_rules)"
  check "chain $chain exists (IPv6)" grep -q "^:$chain " <<<"$(nat6_rules)"
done
check "PREROUTING jumps to LANYARD_INBOUND" grep -qx -- "-A PREROUTING -p tcp -j LANYARD_INBOUND" <<<"$(nat_rules)"
check "OUTPUT jumps to LANYARD_OUTPUT" grep -qx -- "-A OUTPUT -p tcp -j LANYARD_OUTPUT" <<<"$(nat_rules)"
check "the proxy UID is exempt" grep -q -- "--uid-owner 1337 -j RETURN" <<<"$(nat_rules)"
check "the admin ports are exempt" grep -q -- "--dport 15020 -j RETURN" <<<"$(nat_rules)"
first=$(nat_rules)
first6=$(nat6_rules)
check "second install" in_pod "$LANYARD" iptables --ipv6
check "second install: same IPv4 rules, none duplicated" test "$first" = "$(nat_rules)"
check "second install: same IPv6 rules, none duplicated" test "$first6" = "$(nat6_rules)"
dups=$(nat_rules | grep '^-A' | sort | uniq -d || true)
check "no duplicate rule lines" test -z "$dups"
rmdry=$(in_pod "$LANYARD" iptables --remove --dry-run --ipv6) ||
  bad "--remove --dry-run failed"
check "--remove --dry-run prints the removal" grep -qx -- "-X LANYARD_OUTPUT" <<<"$rmdry"
check "--remove --dry-run changes nothing" test "$first" = "$(nat_rules)"

# -- a reused source port. First the agent taking a port the app's reset
# connection used: the app's connection went to the outbound capture port
# (here a server that resets it, like an agent without an identity); the
# agent's connection from that port must reach the peer, not itself.
echo_start "$PEER" 9000 peer
reset_start "$POD" 15001
for host in "$PEER4" "$PEER6"; do
  next_sport
  got=$(ask_from "$POD" 1000 "$SPORT" "$host" 9000)
  check "the app's connection to $host:9000 is reset by the capture port ($got)" \
    grep -q "reset" <<<"$got"
  got=$(ask_from "$POD" 1337 "$SPORT" "$host" 9000)
  if [[ "$got" == "peer "* ]]; then
    ok "the agent, from the app's reset port $SPORT, reaches the peer: $got"
  else
    bad "the agent, from the app's reset port $SPORT, did not reach the peer: '$got'"
  fi
done
kill "$RESET_PID"
wait "$RESET_PID" 2>/dev/null || true

# -- traffic. Servers: the pod's capture ports; tagged servers (the app's
# ports and the admin port in the pod, port 9000 on the peer) show that a
# connection arrived where it was sent, not redirected.
echo_start "$POD" 15006
echo_start "$POD" 15001
for port in 8080 8081 8082; do echo_start "$POD" "$port" app; done
echo_start "$POD" 15020 admin

expect_answer "inbound IPv4 to :8080 lands on 15006 with its original destination" \
  "$POD4:8080" "$PEER" 0 "$POD4" 8080
expect_answer "inbound IPv6 to :8080 lands on 15006 with its original destination" \
  "[$POD6]:8080" "$PEER" 0 "$POD6" 8080
expect_answer "outbound IPv4 from UID 1000 lands on 15001" \
  "$PEER4:9000" "$POD" 1000 "$PEER4" 9000
expect_answer "outbound IPv6 from UID 1000 lands on 15001" \
  "[$PEER6]:9000" "$POD" 1000 "$PEER6" 9000
expect_tag "outbound IPv4 from UID 1337 (the agent) is not redirected" \
  peer "$POD" 1337 "$PEER4" 9000
expect_tag "outbound IPv6 from UID 1337 (the agent) is not redirected" \
  peer "$POD" 1337 "$PEER6" 9000
# The agent calling the pod's own IP (app -> service -> agent -> itself)
# goes through inbound; the app calling it directly stays local.
expect_answer "the agent calling its own pod IP goes to inbound" \
  "$POD4:8080" "$POD" 1337 "$POD4" 8080
expect_tag "the app calling its own pod IP is not redirected" \
  app "$POD" 1000 "$POD4" 8080
expect_tag "the app calling localhost is not redirected" \
  app "$POD" 1000 127.0.0.1 8080
expect_tag "inbound to an excluded admin port is not redirected" \
  admin "$PEER" 0 "$POD4" 15020

# -- a reused source port, the other way: the app taking a port the
# agent's reset connection used. The agent's connection went to the peer
# uncaptured (rightly) and the peer reset it; the app's connection from
# that port must still be captured, never leave the pod in plaintext.
reset_start "$PEER" 9001
for host in "$PEER4" "$PEER6"; do
  next_sport
  got=$(ask_from "$POD" 1337 "$SPORT" "$host" 9001)
  check "the agent's connection to $host:9001 is reset by the peer ($got)" \
    grep -q "reset" <<<"$got"
  want=$host:9001
  [[ "$host" == *:* ]] && want="[$host]:9001"
  got=$(ask_from "$POD" 1000 "$SPORT" "$host" 9001)
  if [ "$got" = "$want" ]; then
    ok "the app, from the agent's reset port $SPORT, is captured: $got"
  else
    bad "the app, from the agent's reset port $SPORT, escaped capture: want '$want', got '$got'"
  fi
done

# -- exclusions, by re-installing with other options (replaces the rules)
check "install with outbound exclusions" in_pod "$LANYARD" iptables --ipv6 \
  --exclude-outbound-ports 9000 --exclude-inbound-ports 8081 \
  --exclude-outbound-cidrs "$PEER6/128"
check "re-install replaced the rules" test "$(nat_rules | grep -c '^-A PREROUTING')" = 1
expect_tag "an excluded outbound port is not redirected" \
  peer "$POD" 1000 "$PEER4" 9000
expect_tag "an excluded outbound CIDR is not redirected" \
  peer "$POD" 1000 "$PEER6" 9000
expect_tag "an excluded inbound port is not redirected" \
  app "$PEER" 0 "$POD4" 8081
expect_answer "other inbound ports still are" \
  "$POD4:8080" "$PEER" 0 "$POD4" 8080
check "install with an inbound include list" in_pod "$LANYARD" iptables --ipv6 \
  --include-inbound-ports 8080
expect_answer "an included inbound port is redirected" \
  "$POD4:8080" "$PEER" 0 "$POD4" 8080
expect_tag "a port outside the include list is not" \
  app "$PEER" 0 "$POD4" 8082

# -- remove
check "remove" in_pod "$LANYARD" iptables --remove --ipv6
check "no LANYARD chain left (IPv4)" bash -c "! ip netns exec $POD iptables-save | grep -q LANYARD"
check "no LANYARD chain left (IPv6)" bash -c "! ip netns exec $POD ip6tables-save | grep -q LANYARD"
check "the nat table is as before (IPv4)" test "$before" = "$(nat_rules)"
check "the nat table is as before (IPv6)" test "$before6" = "$(nat6_rules)"
check "remove again is a no-op" in_pod "$LANYARD" iptables --remove --ipv6
expect_tag "after removal, outbound goes straight to the peer" \
  peer "$POD" 1000 "$PEER4" 9000

finish
