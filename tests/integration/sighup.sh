#!/usr/bin/env bash
# SIGHUP reloads and never stops a daemon: the agents re-read their
# bootstrap bundle and keep serving; the CA re-reads its bundle and keeps
# answering. Each says so in its log; SIGTERM still exits cleanly after.
. "$(dirname "$0")/lib.sh"
: "${CA_PROBE:?}"

TD=example.org
explicit_pair "$TD"
API_PID=${PIDS[-2]} WEB_PID=${PIDS[-1]}
echo "still here" >"$T/nginx/www/index.html"
through() { curl -sS -m 5 "http://127.0.0.1:$CLIENT_PORT/index.html" 2>/dev/null; }
ca_answers() {
  "$CA_PROBE" --ca "127.0.0.1:$CA_PORT" --bundle "$T/ca/bundle.pem" --td "$TD" bundle 2>&1 |
    grep -q "code=OK"
}
check "traffic flows before" test "$(through)" = "still here"

for _ in 1 2 3; do
  kill -HUP "$CA_PID" "$API_PID" "$WEB_PID" || true
  sleep 0.3
done
sleep 1
for p in "ca:$CA_PID" "api:$API_PID" "web:$WEB_PID"; do
  check "${p%%:*} survives three SIGHUPs" kill -0 "${p#*:}"
done
check "the CA logged the reload" \
  test "$(grep -c 'event=ca_reloading signal=SIGHUP' "$T/ca/ca.log")" = 3
for a in api web; do
  check "the $a agent logged the reload" \
    test "$(grep -c 'event=agent_reloading signal=SIGHUP' "$T/$a/agent.log")" = 3
  check "  and re-read its bootstrap bundle" \
    grep -q "event=bootstrap_bundle_reloaded .*roots_added=0" "$T/$a/agent.log"
done
check "traffic still flows through the agents" test "$(through)" = "still here"
check "the CA still answers" ca_answers

# -- SIGHUP re-reads ca.bundle even when it looks unchanged to the poll
# (same inode, size and mtime): an agent bootstrapped with another CA's
# root cannot reach this CA until its file is fixed and it gets a SIGHUP.
"$LANYARD" ca init --trust-domain "$TD" --dir "$T/other" >/dev/null
pad() { # FILE SIZE: pads a PEM file with a trailing comment line
  local n=$(($2 - $(stat -c %s "$1") - 1))
  printf '%*s\n' "$n" '' | tr ' ' '#' >>"$1"
}
cp "$T/other/root.pem" "$T/wrong.pem"
cp "$T/ca/root.pem" "$T/right.pem"
size=$(stat -c %s "$T/wrong.pem" "$T/right.pem" | sort -n | tail -1)
size=$((size + 1))
pad "$T/wrong.pem" "$size"
pad "$T/right.pem" "$size"
agent_yaml "$T/c" "spiffe://$TD/ns/default/sa/c" "$T/ca"
cp "$T/wrong.pem" "$T/c/boot.pem"
sed -i "s|^  bundle: .*|  bundle: $T/c/boot.pem|" "$T/c/agent.yaml"
agent_start "$T/c"
check "an agent with another CA's root in ca.bundle cannot get an SVID" \
  wait_log "$T/c/agent.log" "event=svid_request_failed" 15
touch -r "$T/c/boot.pem" "$T/stamp"
cat "$T/right.pem" >"$T/c/boot.pem" # in place: same inode, same size
touch -r "$T/stamp" "$T/c/boot.pem"
sleep 6
check "  nor after its file was fixed in place (the poll sees no change)" \
  test ! -e "$T/c/svid/svid.pem"
kill -HUP "$AGENT_PID" || true
check "  but it gets one at once after a SIGHUP" wait_file "$T/c/svid/svid.pem" 3
check "  having re-read ca.bundle" \
  grep -q "event=bootstrap_bundle_reloaded .*roots_added=1" "$T/c/agent.log"
finish
