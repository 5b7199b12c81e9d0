#!/usr/bin/env bash
# The agent's Kubernetes endpoints: /app-health/<container>/<probe> runs
# the app's own probes (recorded by injection in LANYARD_APP_PROBES)
# against the app on loopback and answers as the kubelet judges; a probe
# that hangs does not hold up the admin server; POST /quitquitquit drains
# and ends the agent, but only when it comes from inside the pod.
#
# The agent's admin listens on 0.0.0.0 as in a pod; a second address on a
# veth plays the kubelet's side, off loopback. That needs a
# network namespace of the suite's own (root, unshare); else 77.
if [ -z "${LY_APPHEALTH_NETNS:-}" ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v unshare >/dev/null; then
    echo "skipped: needs root and unshare"
    exit 77
  fi
  LY_APPHEALTH_NETNS=1 exec unshare --net -- bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
ip link set lo up
ip link add node0 type veth peer name node1
ip addr add 10.99.0.1/24 dev node0
ip link set node0 up
ip link set node1 up

TD=example.org
ca_setup "$T/ca" "$TD"
ca_start "$T/ca"
APP=$(free_port)
CLOSED=$(free_port) # nothing listens there
python3 "$LY_SOURCE_DIR/tests/tools/probe_app.py" "$APP" "$T/app.log" "$T/gate" &
PEERS+=("$!")
check "the app listens" wait_port 127.0.0.1 "$APP" 10

agent_yaml "$T/web" "spiffe://$TD/ns/default/sa/web" "$T/ca"
ADMIN_PORT=$(free_port)
sed -i "s/^admin:.*/admin: 0.0.0.0:$ADMIN_PORT/" "$T/web/agent.yaml"
# What `lanyard inject` records: the original probes, by container/probe.
export LANYARD_APP_PROBES="{
  \"app/readiness\": {\"httpGet\": {\"path\": \"/ok?full=1\", \"port\": \"http\"}, \"port\": $APP},
  \"app/liveness\": {\"httpGet\": {\"path\": \"/fail\", \"port\": $APP}, \"port\": $APP},
  \"app/startup\": {\"tcpSocket\": {\"port\": $APP}, \"port\": $APP},
  \"slow/readiness\": {\"httpGet\": {\"path\": \"/gate\", \"port\": $APP}, \"port\": $APP},
  \"db/liveness\": {\"tcpSocket\": {\"port\": $CLOSED}, \"port\": $CLOSED}}"
check "the agent gets its SVID" agent_run "$T/web"
unset LANYARD_APP_PROBES
KUBELET=(curl -s --interface 10.99.0.1 -o "$T/body" -w '%{http_code}')
probe() { "${KUBELET[@]}" "http://10.99.0.1:$ADMIN_PORT/app-health/$1"; }

check "an httpGet probe the app passes: 200" test "$(probe app/readiness)" = 200
check "  the app saw the recorded path and query" grep -qx '/ok?full=1' "$T/app.log"
check "an httpGet probe the app fails (500): 503" test "$(probe app/liveness)" = 503
check "  and says what the app answered" grep -q "the app answered 500" "$T/body"
check "a tcpSocket probe with the app listening: 200" test "$(probe app/startup)" = 200
check "a tcpSocket probe with nothing listening: 503" test "$(probe db/liveness)" = 503
check "  and says why" grep -q "cannot connect to 127.0.0.1:$CLOSED" "$T/body"
check "a probe that was not recorded: 404" test "$(probe app/nonesuch)" = 404

# A probe the app holds: the admin server goes on answering meanwhile.
"${KUBELET[@]}" "http://10.99.0.1:$ADMIN_PORT/app-health/slow/readiness" >"$T/slow.code" &
slow=$!
for _ in $(seq 1 100); do grep -qx /gate "$T/app.log" && break; sleep 0.05; done
check "the held probe reached the app" grep -qx /gate "$T/app.log"
check "while it is held, /healthz answers" \
  test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT/healthz")" = 200
check "  and the held probe has not answered yet" kill -0 "$slow"
touch "$T/gate"
wait "$slow"
check "once the app answers, so does the probe: 200" test "$(cat "$T/slow.code")" = 200

# /quitquitquit: refused from off loopback, and from a web page.
check "POST /quitquitquit from the node's address: 403" \
  test "$("${KUBELET[@]}" -X POST "http://10.99.0.1:$ADMIN_PORT/quitquitquit")" = 403
check "POST /quitquitquit sent by a web page: 403" \
  test "$(curl -s -o /dev/null -w '%{http_code}' -H 'Origin: http://evil.example' \
    -X POST "http://127.0.0.1:$ADMIN_PORT/quitquitquit")" = 403
check "GET /quitquitquit: 405" \
  test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT/quitquitquit")" = 405
check "the agent still runs" kill -0 "$AGENT_PID"
check "POST /quitquitquit from inside the pod: 200" \
  test "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$ADMIN_PORT/quitquitquit")" = 200
rc=0
wait "$AGENT_PID" || rc=$?
PIDS=("${PIDS[@]/$AGENT_PID/}")
check "the agent drained and exited 0 (status $rc)" test "$rc" -eq 0
check "  logging why" grep -q "event=quit_requested via=admin" "$T/web/agent.log"
check "  and the drain" grep -q "event=agent_drained" "$T/web/agent.log"
finish
