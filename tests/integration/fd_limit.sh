#!/usr/bin/env bash
# Running out of file descriptors. A server agent started with a soft
# limit of 256 and a hard limit of 400 raises the soft one to 400, caps
# its connections below that (two descriptors each, a reserve kept for the
# control plane), refuses the rest at once with a count and a log line,
# keeps renewing its SVID and answering its admin while the cap is
# reached, and, when accept itself fails (its limit lowered under it),
# pauses instead of spinning.
. "$(dirname "$0")/lib.sh"
need_tools prlimit

TD=example.org
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
SVID_TTL=20s agent_yaml "$T/api" "$API" "$T/ca"
cat >>"$T/api/agent.yaml" <<YAML
listeners:
  - {name: api, mode: server, listen: 127.0.0.1:$SERVER_PORT, forward: 127.0.0.1:$BACKEND}
YAML
prlimit --nofile=256:400 "$LANYARD" agent -c "$T/api/agent.yaml" >>"$T/api/agent.log" 2>&1 &
API_PID=$!
PIDS+=("$API_PID")
check "the server agent gets its SVID" wait_file "$T/api/svid/svid.pem" 15
API_ADMIN=$(awk '/^admin:/ {print $2}' "$T/api/agent.yaml")
check "it raised its soft descriptor limit to the hard one (400)" \
  bash -c "grep -E '^Max open files +400 +400 ' /proc/$API_PID/limits"
cap=$(sed -nE 's/.*event=dataplane_started .*max_connections=([0-9]+).*/\1/p' "$T/api/agent.log")
check "it caps connections below half the limit, less a reserve ($cap)" \
  test -n "$cap" -a "${cap:-0}" -ge 100 -a "${cap:-999}" -le 175

CLIENT_PORT=$(free_port)
agent_yaml "$T/web" "$WEB" "$T/ca"
cat >>"$T/web/agent.yaml" <<YAML
listeners:
  - {name: api, mode: client, listen: 127.0.0.1:$CLIENT_PORT, connect: 127.0.0.1:$SERVER_PORT, expect: $API}
YAML
check "the client agent gets its SVID" agent_run "$T/web"

metric() { # name{labels} -> value (0 when absent)
  curl -sS -m 5 "http://$API_ADMIN/metrics" |
    awk -v m="$1" '$1 == m {print $2; f=1} END {if (!f) print 0}'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# -- more connections than the cap, held across a renewal
N=$((cap + 80))
serial=$(serial_of "$T/api/svid/svid.pem")
mkfifo "$T/hold.in"
python3 "$IDLE" open "127.0.0.1:$CLIENT_PORT" "$N" <"$T/hold.in" >"$T/hold.out" 2>&1 &
HOLDER=$!
exec 7>"$T/hold.in" # the holder keeps its connections while this is open
check "the holder finished opening" wait_file "$T/hold.out" 60
check "  and some connections were refused ($(cat "$T/hold.out"))" grep -q "^failed" "$T/hold.out"
active=$(metric 'lanyard_connections_active{direction="inbound"}')
check "the agent holds at most its cap ($active <= $cap)" test "$active" -le "$cap"
refused=$(metric 'lanyard_connections_refused_total{direction="inbound",reason="limit"}')
check "refusals at the cap are counted ($refused)" test "$refused" -gt 0
check "  and logged" grep -q "event=connection_refused listener=api reason=limit" "$T/api/agent.log"
check "the admin answers while the cap is reached" \
  curl -sf -o /dev/null -m 5 "http://$API_ADMIN/healthz"
renewed=no
for _ in $(seq 1 30); do
  [ "$(serial_of "$T/api/svid/svid.pem")" != "$serial" ] && { renewed=yes; break; }
  sleep 1
done
check "the SVID renews while the cap is reached" test "$renewed" = yes
check "  with no key or CSR failure" bash -c "! grep -q 'svid_request_failed' '$T/api/agent.log'"

# -- accept fails (the limit lowered below what is open): no spin
# (a new descriptor must be below the soft limit: 3 leaves none free)
prlimit --pid "$API_PID" --nofile=3:400
for _ in 1 2 3 4 5 6 7 8; do (exec 3<>"/dev/tcp/127.0.0.1/$SERVER_PORT"; sleep 3) 2>/dev/null & done
sleep 1
t0=$(cpu_ticks "$API_PID")
sleep 2
ticks=$(($(cpu_ticks "$API_PID") - t0))
hz=$(getconf CLK_TCK)
check "out of descriptors, the agent does not spin ($ticks ticks of CPU in 2 s, at $hz a second)" \
  test "$ticks" -lt "$hz"

# -- and all is well once descriptors are free again
exec 7>&-
wait "$HOLDER" 2>/dev/null || true
prlimit --pid "$API_PID" --nofile=400:400
sleep 1
check "the failed accepts were counted" \
  test "$(metric 'lanyard_connections_refused_total{direction="inbound",reason="accept_failed"}')" -gt 0
check "  and logged" grep -q "event=connection_refused listener=api reason=accept_failed" "$T/api/agent.log"
got=$(python3 - "$CLIENT_PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"idle ping\n")
print(s.makefile().readline().strip())
PY
)
check "a new connection gets through afterwards ($got)" test "$got" = "idle ping"
check "the agent exits cleanly on SIGTERM" stop_daemon "$API_PID"
finish
