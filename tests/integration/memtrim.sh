#!/usr/bin/env bash
# Memory goes back after a burst. Two agents carry a burst of idle mTLS
# connections (client agent -> server agent -> backend); once the
# connections close, each agent gives the freed heap back to the system
# (glibc keeps it otherwise), so its resident size falls back near where
# it was before the burst instead of staying at the peak.
. "$(dirname "$0")/lib.sh"
if [ "${LY_SANITIZED:-OFF}" = ON ]; then
  echo "skipped: under the sanitizers the allocator is ASan's, not glibc's"
  exit 77
fi

TD=example.org
N=1500
IDLE=$LY_SOURCE_DIR/tests/bench/idle.py
API=spiffe://$TD/ns/default/sa/api
WEB=spiffe://$TD/ns/default/sa/web
ca_setup "$T/ca" "$TD"
ca_start "$T/ca"
BACKEND=$(free_port)
python3 "$IDLE" serve "$BACKEND" >"$T/backend.log" 2>&1 &
PEERS+=($!)
wait_port 127.0.0.1 "$BACKEND" 10

SERVER_PORT=$(free_port)
agent_yaml "$T/api" "$API" "$T/ca"
cat >>"$T/api/agent.yaml" <<YAML
listeners:
  - {name: api, mode: server, listen: 127.0.0.1:$SERVER_PORT, forward: 127.0.0.1:$BACKEND}
YAML
check "the server agent gets its SVID" agent_run "$T/api"
API_PID=${PIDS[-1]}
CLIENT_PORT=$(free_port)
agent_yaml "$T/web" "$WEB" "$T/ca"
cat >>"$T/web/agent.yaml" <<YAML
listeners:
  - {name: api, mode: client, listen: 127.0.0.1:$CLIENT_PORT, connect: 127.0.0.1:$SERVER_PORT, expect: $API}
YAML
check "the client agent gets its SVID" agent_run "$T/web"
WEB_PID=${PIDS[-1]}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# burst COUNT: connections, held until released.
burst() {
  rm -f "$T/hold.out"
  mkfifo "$T/hold.in"
  python3 "$IDLE" open "127.0.0.1:$CLIENT_PORT" "$1" <"$T/hold.in" >"$T/hold.out" 2>&1 &
  HOLDER=$!
  exec 7>"$T/hold.in"
  wait_file "$T/hold.out" 120
}
release() {
  exec 7>&-
  wait "$HOLDER" 2>/dev/null || true
  rm -f "$T/hold.in"
}

# The baseline: after one connection, so the TLS contexts and the
# listener's first buffers are in it.
burst 1
check "a first connection gets through" grep -qx "ready 1" "$T/hold.out"
release
sleep 1
base_web=$(rss_kb "$WEB_PID") base_api=$(rss_kb "$API_PID")

burst "$N"
check "a burst of $N connections opens ($(cat "$T/hold.out"))" grep -qx "ready $N" "$T/hold.out"
peak_web=$(rss_kb "$WEB_PID") peak_api=$(rss_kb "$API_PID")
release

# The agents trim on a 2 s timer: wait for the figure to settle.
settled() { # PID BASE PEAK: true once under a quarter of the growth
  local now
  now=$(rss_kb "$1")
  [ $((now - $2)) -lt $((($3 - $2) / 4)) ]
}
for who in web api; do
  pid_var=${who^^}_PID base_var=base_$who peak_var=peak_$who
  pid=${!pid_var} base=${!base_var} peak=${!peak_var}
  check "the $who agent grew with the burst ($base KB -> $peak KB)" \
    test $((peak - base)) -gt $((N * 8))
  for _ in $(seq 1 20); do settled "$pid" "$base" "$peak" && break; sleep 0.5; done
  now=$(rss_kb "$pid")
  check "  and gave it back once the connections closed (now $now KB)" \
    settled "$pid" "$base" "$peak"
done

got=$(python3 - "$CLIENT_PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"after the burst\n")
print(s.makefile().readline().strip())
PY
)
check "traffic flows afterwards ($got)" test "$got" = "after the burst"
finish
