#!/usr/bin/env bash
# Rotation under traffic: with 20 s identities, two minutes of continuous
# requests and long-lived streaming connections through an agent pair see
# no failed request and no dropped connection across at least 5 rotations
# of each agent, and new connections present the newest SVID at once.
. "$(dirname "$0")/lib.sh"
KIT="python3 $LY_SOURCE_DIR/tests/tools/tcpkit.py"
RUN_SECONDS=${RUN_SECONDS:-120}

TD=example.org
API=spiffe://$TD/ns/default/sa/api
WEB=spiffe://$TD/ns/default/sa/web
ca_setup "$T/ca" "$TD"
ca_start "$T/ca"

NGINX_PORT=$(free_port)
nginx_start "$T/nginx" "$NGINX_PORT"
echo ok >"$T/nginx/www/ping"
ECHO_PORT=$(free_port)
$KIT echo --port "$ECHO_PORT" & PEERS+=($!)

S_HTTP=$(free_port); S_ECHO=$(free_port); C_HTTP=$(free_port); C_ECHO=$(free_port)
SVID_TTL=20s agent_yaml "$T/api" "$API" "$T/ca"
SVID_TTL=20s agent_yaml "$T/web" "$WEB" "$T/ca"
cat >>"$T/api/agent.yaml" <<YAML
listeners:
  - {name: http, mode: server, listen: 127.0.0.1:$S_HTTP, forward: 127.0.0.1:$NGINX_PORT, allow: [$WEB]}
  - {name: echo, mode: server, listen: 127.0.0.1:$S_ECHO, forward: 127.0.0.1:$ECHO_PORT, allow: [$WEB]}
YAML
cat >>"$T/web/agent.yaml" <<YAML
listeners:
  - {name: http, mode: client, listen: 127.0.0.1:$C_HTTP, connect: 127.0.0.1:$S_HTTP, expect: $API}
  - {name: echo, mode: client, listen: 127.0.0.1:$C_ECHO, connect: 127.0.0.1:$S_ECHO, expect: $API}
YAML
check "server agent up" agent_run "$T/api"
check "client agent up" agent_run "$T/web"
wait_port 127.0.0.1 "$ECHO_PORT" 5

streams=()
for i in 1 2 3; do
  $KIT stream --connect "127.0.0.1:$C_ECHO" --seconds $((RUN_SECONDS - 5)) \
    --interval 0.1 >"$T/stream$i.out" 2>&1 &
  streams+=($!)
done

requests=0 failures=0
end=$((SECONDS + RUN_SECONDS))
while [ $SECONDS -lt $end ]; do
  if [ "$(curl -s -m 5 "http://127.0.0.1:$C_HTTP/ping")" = ok ]; then
    requests=$((requests + 1))
  else
    failures=$((failures + 1))
  fi
done
for s in "${streams[@]}"; do wait "$s" || true; done

check "no failed request ($requests ok, $failures failed)" test "$failures" -eq 0 -a "$requests" -gt 100
for i in 1 2 3; do
  check "stream $i: no dropped connection ($(cat "$T/stream$i.out"))" grep -q "errors=0" "$T/stream$i.out"
done
api_rot=$(grep -c "event=svid_rotated" "$T/api/agent.log" || true)
web_rot=$(grep -c "event=svid_rotated" "$T/web/agent.log" || true)
check "server agent rotated at least 5 times ($api_rot)" test "$api_rot" -ge 5
check "client agent rotated at least 5 times ($web_rot)" test "$web_rot" -ge 5

# a new connection presents the newest SVID (read before and after, in
# case a rotation lands in between)
before=$(serial_of "$T/api/svid/svid.pem")
served=$(echo | timeout 5 openssl s_client -connect "127.0.0.1:$S_HTTP" -tls1_3 \
  -cert "$T/web/svid/svid.pem" -cert_chain "$T/web/svid/svid.pem" \
  -key "$T/web/svid/svid.key" 2>/dev/null |
  openssl x509 -noout -serial 2>/dev/null | cut -d= -f2 || true)
after=$(serial_of "$T/api/svid/svid.pem")
check "a new connection gets the newest SVID ($served, current $after)" \
  test -n "$served" -a \( "$served" = "$before" -o "$served" = "$after" \)
check "no refusal logged during the run" bash -c "! grep -q event=mtls_refused '$T/api/agent.log' '$T/web/agent.log'"
finish
