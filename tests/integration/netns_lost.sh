#!/usr/bin/env bash
# What the container agent relies on, in plain network namespaces:
# - `lanyard agent --iptables` installs the interception rules in its
#   namespace, then runs as UID 1337 with no capabilities;
# - it refuses an explicit-listener config (nothing would take the
#   redirected traffic), and `ca serve` has no such option;
# - when every interface but lo leaves its namespace (what Docker does to
#   a sidecar's namespace when the app container restarts), the agent
#   logs event=netns_lost and exits 1, for its restart policy.
# Needs root, iproute2 and iptables; exits 77 (skipped) without them.
. "$(dirname "$0")/lib.sh"
need_tools ip iptables-save
POD=ly-lost-$$
PEER=ly-lostp-$$
netns_cleanup() {
  cleanup
  ip netns del "$POD" 2>/dev/null || true
  ip netns del "$PEER" 2>/dev/null || true
}
trap netns_cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
if ! ip netns add "$POD" || ! ip netns add "$PEER"; then
  echo "skipped: cannot create network namespaces"
  exit 77
fi
ip -n "$POD" link set lo up
# A veth pair, like Docker's: eth0 in the pod, its peer elsewhere.
ip link add eth0 netns "$POD" type veth peer name "lyl$$" netns "$PEER"
ip -n "$POD" addr add 10.201.0.2/24 dev eth0
ip -n "$POD" link set eth0 up

ca_setup "$T/ca" example.org
mkdir -p "$T/a"
agent_config "$T/a" "$T/ca" spiffe://example.org/w 1h
cp "$T/a/agent.yaml" "$T/a/explicit.yaml"
printf 'listeners:\n  - {name: x, mode: server, listen: 127.0.0.1:9443, forward: 127.0.0.1:9080}\n' \
  >>"$T/a/explicit.yaml"
printf 'inbound:\n  port: 15006\noutbound:\n  port: 15001\n' >>"$T/a/agent.yaml"
chmod -R a+rX "$T"

rc=0
out=$(ip netns exec "$POD" "$LANYARD" agent -c "$T/a/explicit.yaml" --iptables 2>&1) || rc=$?
check "--iptables with explicit listeners only: refused (exit 1)" [ "$rc" = 1 ]
check "and says it needs transparent mode" grep -q "needs transparent mode" <<<"$out"
check "no rule was installed" bash -c "! ip netns exec $POD iptables-save -t nat | grep -q LANYARD"
rc=0
"$LANYARD" ca serve -c "$T/ca/ca.yaml" --iptables >/dev/null 2>&1 || rc=$?
check "ca serve --iptables: usage error (exit 2)" [ "$rc" = 2 ]

# The CA is not reachable from the namespace: the agent has no identity,
# which changes nothing here.
ip netns exec "$POD" "$LANYARD" agent -c "$T/a/agent.yaml" --iptables >"$T/a/agent.log" 2>&1 &
agent=$!
check "the agent installs its rules" wait_log "$T/a/agent.log" "event=agent_started" 10
check "the nat table has the LANYARD chains" bash -c \
  "ip netns exec $POD iptables-save -t nat | grep -q -- '-A OUTPUT -p tcp -j LANYARD_OUTPUT'"
check "the agent's own UID (1337) is exempt" bash -c \
  "ip netns exec $POD iptables-save -t nat | grep -q -- '--uid-owner 1337'"
check "it runs as UID 1337" grep -qE '^Uid:\s+1337\s+1337\s+1337\s+1337' "/proc/$agent/status"
check "with no capabilities" grep -qE '^CapEff:\s+0+$' "/proc/$agent/status"
check "and no way back (NoNewPrivs)" grep -qE '^NoNewPrivs:\s+1' "/proc/$agent/status"

ip -n "$POD" link del eth0
rc=0
for _ in $(seq 1 100); do kill -0 "$agent" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$agent" 2>/dev/null; then
  bad "the agent still runs 10 s after its namespace lost every interface"
  kill "$agent"
fi
wait "$agent" || rc=$?
check "the agent exited with status 1 when eth0 went away" [ "$rc" = 1 ]
check "it logged event=netns_lost" grep -q "level=error event=netns_lost" "$T/a/agent.log"
finish
