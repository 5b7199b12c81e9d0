#!/usr/bin/env bash
# Observability on explicit listeners: curl -> web (client listener) ->
# mTLS -> api (server listener) -> nginx, both agents reporting to the CA
# every second.
#
# - /metrics of both agents and of the CA pass `promtool check metrics`;
# - good and bad clients move exactly the matching counters, and the
#   success rate in /status, `lanyard status` and `lanyard mesh` is the one
#   computed from the requests sent;
# - POST /rotate changes the serial and the rotation counter while
#   requests flow, and none fails;
# - an agent cannot report as another identity;
# - malformed admin requests get 4xx or a timeout, and the data path keeps
#   serving meanwhile;
# - refusal log lines are rate-limited, and say how many were left out.
. "$(dirname "$0")/lib.sh"
: "${CA_PROBE:?}"

TOOLS=$LY_SOURCE_DIR/tests/tools
TD=example.org

admin_of() { awk '/^admin:/ {print $2}' "$1"; }
get() { curl -sS -m 5 "http://$1"; }
code_of() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$@"; }
json() { # json FILE PYTHON-EXPR (d is the document)
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}
jtrue() { # jtrue FILE PYTHON-EXPR: exit 0 when it holds
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1"
}
metric() { # metric ADMIN 'name{labels}' -> value (0 when absent)
  get "$1/metrics" | awk -v m="$2" '$1 == m {print $2; f=1} END {if (!f) print 0}'
}

explicit_pair "$TD" "report:
  interval: 1s"
CA_ADMIN=$(admin_of "$T/ca/ca.yaml")
API_ADMIN=$(admin_of "$T/api/agent.yaml")
WEB_ADMIN=$(admin_of "$T/web/agent.yaml")
echo "hello" >"$T/nginx/www/index.html"

# -- health and readiness
check "agent /healthz is 200" test "$(code_of "http://$API_ADMIN/healthz")" = 200
check "agent /readyz is 200 with an SVID" test "$(code_of "http://$API_ADMIN/readyz")" = 200
check "CA /healthz is 200" test "$(code_of "http://$CA_ADMIN/healthz")" = 200
check "CA /readyz is 200 (it can sign)" test "$(code_of "http://$CA_ADMIN/readyz")" = 200
check "GET /rotate is 405" test "$(code_of "http://$API_ADMIN/rotate")" = 405
check "an unknown path is 404" test "$(code_of "http://$API_ADMIN/nope")" = 404
check "a Host that is a DNS name is refused (403: DNS rebinding)" \
  test "$(code_of -H 'Host: rebind.example:80' "http://$API_ADMIN/status")" = 403
check "... on the CA too" test "$(code_of -H 'Host: rebind.example' "http://$CA_ADMIN/api/mesh")" = 403
check "Host: localhost is fine" test "$(code_of -H "Host: localhost:${API_ADMIN##*:}" "http://$API_ADMIN/healthz")" = 200

agent_yaml "$T/lonely" "spiffe://$TD/ns/default/sa/lonely" "$T/ca"
sed -i "s|address: 127.0.0.1:$CA_PORT|address: 127.0.0.1:$(free_port)|" "$T/lonely/agent.yaml"
"$LANYARD" agent -c "$T/lonely/agent.yaml" >>"$T/lonely/agent.log" 2>&1 &
LONELY_PID=$!
PIDS+=("$LONELY_PID")
LONELY_ADMIN=$(admin_of "$T/lonely/agent.yaml")
wait_port 127.0.0.1 "${LONELY_ADMIN##*:}" 10 || true
check "an agent without an SVID is alive (/healthz 200)" test "$(code_of "http://$LONELY_ADMIN/healthz")" = 200
check "... and not ready (/readyz 503)" test "$(code_of "http://$LONELY_ADMIN/readyz")" = 503
check "... and says why" bash -c "curl -s 'http://$LONELY_ADMIN/readyz' | grep -q 'no valid SVID'"
check "... and its metrics say so" test "$(metric "$LONELY_ADMIN" lanyard_identity_ready)" = 0

# -- success rates: G good requests, then B1 intruders and B2 plaintext
G=20 B1=3 B2=4
failed=0
for _ in $(seq 1 $G); do
  curl -sf -o /dev/null -m 5 "http://127.0.0.1:$CLIENT_PORT/index.html" || failed=$((failed + 1))
done
check "$G requests through the pair succeed" test "$failed" = 0

get "$API_ADMIN/status" >"$T/status1.json"
check "api /status: $G inbound attempts, all successful" \
  test "$(json "$T/status1.json" "d['mtls']['inbound']['windows']['5m']")" = "{'attempts': $G, 'successes': $G, 'success_rate': 1.0}"
SERIAL=$(serial_of "$T/api/svid/svid.pem")
check "api /status names its identity and the serial of svid.pem ($SERIAL)" \
  jtrue "$T/status1.json" "d['spiffe_id'] == '$API' and int(d['identity']['serial'], 16) == int('$SERIAL', 16)"
check "lanyard status shows 100.0% $G/$G inbound" \
  bash -c "'$LANYARD' status --admin '$API_ADMIN' | grep -Eq '^inbound +100\.0% $G/$G +100\.0% $G/$G'"

svid_for "spiffe://$TD/ns/default/sa/intruder" "$T/intruder"
for _ in $(seq 1 $B1); do
  printf "GET / HTTP/1.0\r\n\r\n" | timeout 5 openssl s_client -connect "127.0.0.1:$SERVER_PORT" -tls1_3 \
    -CAfile "$T/ca/bundle.pem" -cert "$T/intruder/cert.pem" -cert_chain "$T/intruder/cert.pem" \
    -key "$T/intruder/key.pem" -quiet >/dev/null 2>&1 || true
done
for _ in $(seq 1 $B2); do
  curl -s -o /dev/null -m 5 "http://127.0.0.1:$SERVER_PORT/" || true
done
sleep 0.5
N=$((G + B1 + B2))
RATE=$(awk -v g=$G -v n=$N 'BEGIN {printf "%.1f", 100 * g / n}')
get "$API_ADMIN/status" >"$T/status2.json"
check "api /status: $N attempts, $G successes, rate $G/$N in every window" \
  jtrue "$T/status2.json" "all((w['attempts'], w['successes']) == ($N, $G) and abs(w['success_rate'] - $G / $N) < 1e-9 for w in [d['mtls']['inbound']['total']] + list(d['mtls']['inbound']['windows'].values()))"
check "api /status: failures by reason" \
  test "$(json "$T/status2.json" "sorted(d['mtls']['inbound']['failures'].items())")" = "[('not_authorized', $B1), ('plaintext_rejected', $B2)]"
check "metrics: $B1 not_authorized" \
  test "$(metric "$API_ADMIN" 'lanyard_mtls_handshake_failures_total{direction="inbound",reason="not_authorized"}')" = $B1
check "metrics: $B2 plaintext_rejected" \
  test "$(metric "$API_ADMIN" 'lanyard_mtls_handshake_failures_total{direction="inbound",reason="plaintext_rejected"}')" = $B2
check "metrics: $G inbound successes" \
  test "$(metric "$API_ADMIN" 'lanyard_mtls_handshakes_total{direction="inbound",result="success"}')" = $G
check "metrics: $G handshakes in the duration histogram" \
  test "$(metric "$API_ADMIN" 'lanyard_mtls_handshake_duration_seconds_count{direction="inbound"}')" = $G
check "metrics: web's $G outbound successes" \
  test "$(metric "$WEB_ADMIN" 'lanyard_mtls_handshakes_total{direction="outbound",result="success"}')" = $G
check "lanyard status shows $RATE% $G/$N inbound" \
  bash -c "'$LANYARD' status --admin '$API_ADMIN' | grep -Eq '^inbound +$RATE% $G/$N'"
check "the intruder is a top peer with $B1 failures" \
  test "$(json "$T/status2.json" "[(p['attempts'], p['failures']) for p in d['top_peers'] if p['spiffe_id'].endswith('/intruder')]")" = "[($B1, $B1)]"

# the mesh view, once both agents have reported
sleep 2.5
"$LANYARD" mesh --ca-admin "$CA_ADMIN" --full-ids >"$T/mesh.txt"
check "lanyard mesh: api inbound $RATE% $G/$N" grep -Eq "^$API +$RATE% $G/$N " "$T/mesh.txt"
check "lanyard mesh: web outbound 100.0% $G/$G" grep -Eq "^$WEB +- +0/0 +100\.0% $G/$G " "$T/mesh.txt"
check "lanyard mesh: worst first (api above web)" \
  test "$(grep -n -e "^$API " -e "^$WEB " "$T/mesh.txt" | cut -d: -f1 | tr '\n' ' ')" = "$(grep -n "^$API " "$T/mesh.txt" | cut -d: -f1) $(grep -n "^$WEB " "$T/mesh.txt" | cut -d: -f1) "
check "lanyard mesh: api's failures by reason" grep -Eq "^$API .*not_authorized $B1, plaintext_rejected $B2" "$T/mesh.txt"
"$LANYARD" mesh --ca-admin "$CA_ADMIN" --json >"$T/mesh.json"
check "lanyard mesh --json: an identity runway" \
  jtrue "$T/mesh.json" "0 < d['runway_seconds'] <= 600"
lines=$(timeout 3.5 "$LANYARD" mesh --ca-admin "$CA_ADMIN" --watch 1 --json | wc -l || true)
check "lanyard mesh --watch 1 --json: a document a second ($lines in 3.5 s)" test "$lines" -ge 3

# -- Prometheus format
for who in "api agent:$API_ADMIN" "web agent:$WEB_ADMIN" "CA:$CA_ADMIN"; do
  get "${who#*:}/metrics" >"$T/metrics.txt"
  check "promtool check metrics accepts the ${who%%:*}'s /metrics" \
    bash -c "promtool check metrics <'$T/metrics.txt' >'$T/promtool.out' 2>&1 || { cat '$T/promtool.out'; exit 1; }"
done
check "CA metrics: the mesh's success ratio for api" \
  bash -c "curl -s 'http://$CA_ADMIN/metrics' | grep -q '^lanyard_mesh_mtls_success_ratio{spiffe_id=\"$API\",direction=\"inbound\"} '"

# -- reports: only for oneself
probe() { "$CA_PROBE" --ca "127.0.0.1:$CA_PORT" --bundle "$T/ca/bundle.pem" --td "$TD" "$@" 2>&1; }
out=$(probe --cert "$T/web/svid/svid.pem" --key "$T/web/svid/svid.key" report --spiffe-id "$API" --instance forged --attempts 1000)
check "web's SVID reporting as api: PERMISSION_DENIED ($out)" grep -q "code=PERMISSION_DENIED" <<<"$out"
out=$(probe report --spiffe-id "$API" --instance forged --attempts 1000)
check "a report without a client certificate: UNAUTHENTICATED ($out)" grep -q "code=UNAUTHENTICATED" <<<"$out"
out=$(probe --cert "$T/intruder/cert.pem" --key "$T/intruder/key.pem" report --spiffe-id "spiffe://$TD/ns/default/sa/intruder" --instance probe --attempts 7)
check "a report for one's own identity is accepted ($out)" grep -q "code=OK" <<<"$out"
get "$CA_ADMIN/api/mesh" >"$T/mesh2.json"
check "the forged reports left api's row alone (1 instance, its own counts)" \
  test "$(json "$T/mesh2.json" "[(w['instances'], w['inbound']['total']['attempts']) for w in d['workloads'] if w['spiffe_id'] == '$API']")" = "[(1, $N)]"
INTRUDER=spiffe://$TD/ns/default/sa/intruder
check "the CA files the expiry of the certificate, not the report's (year 2100)" \
  jtrue "$T/mesh2.json" "[w['expires_in_seconds'] <= 600 for w in d['workloads'] if w['spiffe_id'] == '$INTRUDER'] == [True]"
out=$(probe --cert "$T/intruder/cert.pem" --key "$T/intruder/key.pem" report --spiffe-id "$INTRUDER" --instance "a b")
check "a report with a malformed instance name: INVALID_ARGUMENT ($out)" grep -q "code=INVALID_ARGUMENT" <<<"$out"
for i in $(seq 1 70); do
  probe --cert "$T/intruder/cert.pem" --key "$T/intruder/key.pem" report --spiffe-id "$INTRUDER" --instance "flood-$i" >/dev/null
done
get "$CA_ADMIN/api/mesh" >"$T/mesh3.json"
check "one identity flooding instance names keeps at most 64 rows' worth" \
  jtrue "$T/mesh3.json" "[w['instances'] for w in d['workloads'] if w['spiffe_id'] == '$INTRUDER'] == [64]"
check "... and the other workloads keep theirs" \
  jtrue "$T/mesh3.json" "sorted(w['spiffe_id'] for w in d['workloads']) == sorted(['$API', '$WEB', '$INTRUDER'])"

# traffic N PAUSE FILE: N requests through the pair, PAUSE seconds apart;
# writes how many failed into FILE (run it in the background).
traffic() {
  local f=0
  for _ in $(seq 1 "$1"); do
    curl -sf -o /dev/null -m 5 "http://127.0.0.1:$CLIENT_PORT/index.html" || f=$((f + 1))
    sleep "$2"
  done
  echo "$f" >"$3"
}

# -- POST /rotate while requests flow
serial0=$(json "$T/status2.json" "d['identity']['serial']")
rot0=$(metric "$API_ADMIN" 'lanyard_certificate_rotations_total{result="success"}')
traffic 60 0.05 "$T/rotate-failures" &
LOOP=$!
sleep 0.5
check "POST /rotate from a web page (Origin) is refused (403)" \
  test "$(code_of -X POST -H 'Origin: http://evil.example' "http://$API_ADMIN/rotate")" = 403
check "POST /rotate is accepted (202)" test "$(code_of -X POST "http://$API_ADMIN/rotate")" = 202
code_of -X POST "http://$WEB_ADMIN/rotate" >/dev/null
serial1=$serial0
for _ in $(seq 1 50); do
  serial1=$(get "$API_ADMIN/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["identity"]["serial"])')
  [ "$serial1" != "$serial0" ] && break
  sleep 0.1
done
wait "$LOOP"
check "the serial in /status changed ($serial0 -> $serial1)" test "$serial1" != "$serial0"
check "the rotation counter went up by one" \
  test "$(metric "$API_ADMIN" 'lanyard_certificate_rotations_total{result="success"}')" = $((rot0 + 1))
check "no request failed during the rotation" test "$(cat "$T/rotate-failures")" = 0

# -- malformed admin requests, with traffic on the data path meanwhile
traffic 100 0.1 "$T/attack-failures" &
LOOP=$!
attack() { python3 "$TOOLS/http_attack.py" 127.0.0.1 "${1##*:}" "${@:2}"; }
for target in "api agent:$API_ADMIN" "CA:$CA_ADMIN"; do
  who=${target%%:*} addr=${target#*:}
  out=$(attack "$addr" garbage)
  check "$who admin: garbage gets 400 ($out)" test "$out" = 400
  out=$(attack "$addr" bigheader)
  check "$who admin: a 1 MB header gets 431 ($out)" test "$out" = 431
  out=$(attack "$addr" badline)
  check "$who admin: HTTP/9.9 gets 505 ($out)" test "$out" = 505
done
out=$(attack "$API_ADMIN" drip)
check "a slow drip gets 408 within the request timeout ($out)" \
  awk -v o="$out" 'BEGIN { split(o, a, " "); exit !(a[1] == 408 && a[2] < 15) }'
out=$(attack "$API_ADMIN" many 200)
check "200 idle connections at once: the admin server caps them ($out)" \
  test "$(echo "$out" | awk '{print $1}')" -le 64
wait "$LOOP"
check "the data path served every request during the attacks" test "$(cat "$T/attack-failures")" = 0
check "the admin server still answers" test "$(code_of "http://$API_ADMIN/healthz")" = 200

# -- refusal logs are rate-limited; the metrics still count every one
lines0=$(grep -c "event=mtls_refused.*reason=plaintext_rejected" "$T/api/agent.log" || true)
L0=$(wc -l <"$T/api/agent.log")
before=$(metric "$API_ADMIN" 'lanyard_mtls_handshake_failures_total{direction="inbound",reason="plaintext_rejected"}')
# The burst comes from one process, much faster than the limiter's 10 a
# second refill (a curl per request took long enough on a loaded machine
# for every line to be allowed).
BURST=200
python3 - "$SERVER_PORT" "$BURST" <<'PY'
import socket, sys
from concurrent.futures import ThreadPoolExecutor
port, n = int(sys.argv[1]), int(sys.argv[2])
def plaintext(_):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            s.recv(100)
    except OSError:
        pass
with ThreadPoolExecutor(16) as pool:
    list(pool.map(plaintext, range(n)))
PY
sleep 0.3
after=$(metric "$API_ADMIN" 'lanyard_mtls_handshake_failures_total{direction="inbound",reason="plaintext_rejected"}')
check "metrics counted all $BURST refusals" test $((after - before)) = $BURST
lines1=$(grep -c "event=mtls_refused.*reason=plaintext_rejected" "$T/api/agent.log" || true)
check "fewer than $BURST log lines for them ($((lines1 - lines0)))" test $((lines1 - lines0)) -lt $BURST
sleep 1
curl -s -o /dev/null -m 5 "http://127.0.0.1:$SERVER_PORT/" || true
sleep 0.3
# Lines written, plus what the lines after a gap and the summary lines
# (once a second) say was left out, is every refusal (the burst and the
# one after it).
accounted() {
  tail -n +$((L0 + 1)) "$T/api/agent.log" |
    grep -E "event=mtls_refused .*reason=plaintext_rejected|event=mtls_refusals_suppressed" |
    awk '/event=mtls_refused / {n++} match($0, /suppressed=[0-9]+/) {s += substr($0, RSTART + 11, RLENGTH - 11)} END {print n + s}'
}
for _ in $(seq 1 30); do
  [ "$(accounted)" -ge $((BURST + 1)) ] && break
  sleep 0.1
done
accounted=$(accounted)
check "a summary line said how many were left out" grep -q "event=mtls_refusals_suppressed suppressed=" "$T/api/agent.log"
check "lines written plus those they say were left out: $((BURST + 1)) ($accounted)" \
  test "$accounted" = $((BURST + 1))
check "no key material in any log" bash -c "! grep -l 'PRIVATE KEY' '$T'/*/agent.log '$T/ca/ca.log'"

finish
