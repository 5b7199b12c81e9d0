#!/usr/bin/env bash
# mTLS success rates on the local mesh (deploy/local/mesh.sh, strict mode):
#
# - web's app makes G requests to api: api's inbound success rate is 100%
#   in `lanyard status` (in the api pod) and `lanyard mesh` (in the CA's);
# - a client holding a valid SVID of another identity (B1 connections)
#   and plaintext from the legacy pod (B2) move exactly api's
#   not_authorized and plaintext_rejected counters, and both views show
#   the rate G / (G + B1 + B2);
# - the CA's web page, in headless Chromium, shows both workloads with
#   those rates; the screenshot is kept in the build tree
#   ($LY_ARTIFACT_DIR/mesh-page.png).
# Needs root and the mesh's tools; exits 77 (skipped) without them.
. "$(dirname "$0")/lib.sh"
: "${CA_PROBE:?}"

TD=mesh.local
WEB=spiffe://$TD/ns/default/sa/web
API=spiffe://$TD/ns/default/sa/api
API_IP=10.77.0.21
STATE=$T/mesh
MESH_STATE=$STATE
mesh_suite

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
status_json() { mesh exec api "$LANYARD" status --json; }
mesh_json() { mesh exec ca "$LANYARD" mesh --json; }
rate() { awk -v s="$1" -v n="$2" 'BEGIN {printf "%.1f", 100 * s / n}'; }

if mesh up --mode strict --state "$STATE" --ttl 10m >"$T/up.out" 2>&1; then
  ok "mesh up"
else
  bad "mesh up"
  cat "$T/up.out"
  exit 1
fi

# -- good traffic only
G=12
failed=0
for _ in $(seq 1 $G); do
  mesh exec web curl -sf -o /dev/null -m 10 "http://$API_IP:8080/" || failed=$((failed + 1))
done
check "web's app: $G requests to api, none failed" test "$failed" = 0
sleep 2.5 # a report from each agent
check "lanyard status (api): inbound 100.0% $G/$G" \
  bash -c "'$MESH' exec api '$LANYARD' status | grep -Eq '^inbound +100\.0% $G/$G '"
mesh exec ca "$LANYARD" mesh --full-ids >"$T/mesh1.txt"
check "lanyard mesh: api inbound 100.0% $G/$G" grep -Eq "^$API +100\.0% $G/$G " "$T/mesh1.txt"
check "lanyard mesh: web outbound 100.0% $G/$G" grep -Eq "^$WEB +- +0/0 +100\.0% $G/$G " "$T/mesh1.txt"

# -- a wrong identity, and plaintext, from the legacy pod
SVID_CA=$STATE/ca SVID_CA_ADDR=10.77.0.10:15012 SVID_NS=ly-legacy \
  svid_for "spiffe://$TD/ns/default/sa/intruder" "$T/intruder"
B1=3 B2=5
for _ in $(seq 1 $B1); do
  printf "GET / HTTP/1.0\r\n\r\n" | mesh exec legacy timeout 10 openssl s_client -connect "$API_IP:8080" \
    -tls1_3 -CAfile "$STATE/ca/bundle.pem" -cert "$T/intruder/cert.pem" \
    -cert_chain "$T/intruder/cert.pem" -key "$T/intruder/key.pem" -quiet >/dev/null 2>&1 || true
done
for _ in $(seq 1 $B2); do
  mesh exec legacy curl -s -o /dev/null -m 10 "http://$API_IP:8080/" || true
done
N=$((G + B1 + B2))
RATE=$(rate $G $N)
sleep 2.5
status_json >"$T/status.json"
check "api /status: $N inbound attempts, $G successes" \
  test "$(json "(d['mtls']['inbound']['total']['attempts'], d['mtls']['inbound']['total']['successes'])" <"$T/status.json")" = "($N, $G)"
check "api /status: exactly $B1 not_authorized and $B2 plaintext_rejected" \
  test "$(json "sorted(d['mtls']['inbound']['failures'].items())" <"$T/status.json")" = "[('not_authorized', $B1), ('plaintext_rejected', $B2)]"
check "lanyard status (api): inbound down to $RATE% $G/$N" \
  bash -c "'$MESH' exec api '$LANYARD' status | grep -Eq '^inbound +$RATE% $G/$N '"
mesh exec ca "$LANYARD" mesh --full-ids >"$T/mesh2.txt"
cat "$T/mesh2.txt"
check "lanyard mesh: api inbound down to $RATE% $G/$N" grep -Eq "^$API +$RATE% $G/$N " "$T/mesh2.txt"
check "lanyard mesh: api's failures by reason" \
  grep -Eq "^$API .*not_authorized $B1, plaintext_rejected $B2" "$T/mesh2.txt"
check "lanyard mesh: web still 100.0% outbound" grep -Eq "^$WEB +- +0/0 +100\.0% $G/$G " "$T/mesh2.txt"
check "lanyard mesh: worst first" test "$(grep -m1 -oE '^spiffe://[^ ]+' "$T/mesh2.txt")" = "$API"
mesh_json >"$T/mesh.json"
check "/api/mesh: the intruder is among api's top peers, all $B1 failed" \
  test "$(json "[(p['attempts'], p['failures']) for w in d['workloads'] if w['spiffe_id'] == '$API' for p in w['top_peers'] if p['spiffe_id'].endswith('/intruder')]" <"$T/mesh.json")" = "[($B1, $B1)]"

# -- the web page, in headless Chromium inside the CA's pod
if node_dir=$("$LY_SOURCE_DIR/tests/tools/browser.sh"); then
  shot=${LY_ARTIFACT_DIR:-$T}/mesh-page.png
  mkdir -p "$(dirname "$shot")"
  if ip netns exec ly-ca env LY_NODE_DIR="$node_dir" HOME="$T" node "$LY_SOURCE_DIR/tests/tools/mesh_page.mjs" \
    http://127.0.0.1:15014/ "$shot" "$API" "$WEB" >"$T/page.out" 2>"$T/page.err" 9>&-; then
    ok "the CA's page shows every workload of the mesh"
  else
    bad "the CA's page shows every workload of the mesh"
    cat "$T/page.err"
  fi
  cat "$T/page.out"
  want_api=$(awk -v g=$G -v n=$N 'BEGIN {printf "%.6f", g / n}')
  check "the page shows api's inbound rate $G/$N" \
    test "$(grep "\"$API\"" "$T/page.out" | json "'%.6f' % d['inbound']")" = "$want_api"
  check "the page shows web's outbound rate 100%" \
    test "$(grep "\"$WEB\"" "$T/page.out" | json "d['outbound']")" = 1
  check "the screenshot was saved ($shot)" test -s "$shot"
else
  rc=$?
  bad "no headless browser (tests/tools/browser.sh exited $rc)"
fi

check "mesh down" mesh down --state "$STATE"
for f in "$STATE"/run/ca.rc "$STATE"/run/*.agent.rc; do
  check "$(basename "$f" .rc) exited with status 0" test "$(cat "$f" 2>/dev/null)" = 0
done
finish
