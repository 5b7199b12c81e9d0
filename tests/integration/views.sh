#!/usr/bin/env bash
# Operator views: what `lanyard mesh`, `lanyard status` and the admin
# endpoints tell about agents, replicas and the CA (loopback, no root).
#
# - two replicas of web (admin: 127.0.0.1:0) each write their run file
#   and log the port they got; `lanyard status` without --admin lists them
#   when there are two, and finds the one left after the other stops (its
#   file removed on a clean exit);
# - `lanyard mesh --instances` has a row per replica (host, version,
#   address); names are namespace/service-account, --full-ids the IDs;
# - /api/mesh: every agent's bundle_root_sha256 is the SHA-256 of the CA
#   root's DER (openssl), the CA's roots and signing certificate expiry;
# - a replica that stops reporting (SIGSTOP) shows as stale, not gone;
# - with the CA down, an agent says its reports and bundle refresh fail
#   (status JSON, `lanyard status`, a warning in the log, rate-limited);
# - `lanyard status` exits 0 (valid identity), 1 (none, or expired), 2
#   (agent unreachable); /readyz says "expired" once the SVID ran out.
. "$(dirname "$0")/lib.sh"

TD=example.org
WEB=spiffe://$TD/ns/default/sa/web
API=spiffe://$TD/ns/default/sa/api
export LANYARD_RUN_DIR=$T/run # created by the agents

jq_() { # jq_ FILE PYTHON-EXPR (d is the document): prints it
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}
jtrue() { # jtrue FILE PYTHON-EXPR: exit 0 when it holds
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1"
}
code_of() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$@"; }
admin_of() { awk '/^admin:/ {print $2}' "$1"; }
mesh_json() { "$LANYARD" mesh --ca-admin "$CA_ADMIN" -o json >"$1"; }
# wait_mesh PYTHON-EXPR [seconds]: until /api/mesh satisfies it
wait_mesh() {
  local _
  for _ in $(seq 1 $((${2:-15} * 5))); do
    mesh_json "$T/wait.json" && jtrue "$T/wait.json" "$1" && return 0
    sleep 0.2
  done
  return 1
}
# status_rc ARGS...: the exit status of `lanyard status ARGS`
status_rc() {
  local rc=0
  "$LANYARD" status "$@" >"$T/status.out" 2>&1 || rc=$?
  echo "$rc"
}

ca_setup "$T/ca" "$TD"
ca_start "$T/ca"
CA_ADMIN=$(admin_of "$T/ca/ca.yaml")

# -- two replicas of web on one host, admin ports picked by the kernel
# web's SVIDs live 60 s: the page must not show them red (under 300 s
# left, but more than a sixth of their lifetime).
for r in web1 web2; do
  SVID_TTL=60s agent_yaml "$T/$r" "$WEB" "$T/ca"
  sed -i 's|^admin: .*|admin: 127.0.0.1:0|' "$T/$r/agent.yaml"
  printf 'report:\n  interval: 1s\n' >>"$T/$r/agent.yaml"
  check "replica $r gets its SVID" agent_run "$T/$r"
  eval "${r^^}_PID=$AGENT_PID"
done
# api: short-lived SVIDs, to watch one expire when the CA is gone
SVID_TTL=6s agent_yaml "$T/api" "$API" "$T/ca"
printf 'report:\n  interval: 1s\n' >>"$T/api/agent.yaml"
check "api gets its SVID" agent_run "$T/api"
API_PID=$AGENT_PID
API_ADMIN=$(admin_of "$T/api/agent.yaml")

for r in web1 web2; do
  pid_var=${r^^}_PID
  f=$LANYARD_RUN_DIR/agent-${!pid_var}.json
  check "$r wrote $f" wait_file "$f" 10
  check "... naming its pid, identity and a 127.0.0.1 admin port" \
    jtrue "$f" "d['pid'] == ${!pid_var} and d['spiffe_id'] == '$WEB' and d['admin'].startswith('127.0.0.1:') and int(d['admin'].split(':')[1]) > 0"
  port=$(jq_ "$f" "d['admin'].split(':')[1]")
  check "... the port it logged (admin_listening port=$port)" grep -q "event=admin_listening.*port=$port" "$T/$r/agent.log"
  check "... and it answers there" test "$(code_of "http://127.0.0.1:$port/healthz")" = 200
done
check "the run directory is 0755" test "$(stat -c %a "$LANYARD_RUN_DIR")" = 755
WEB1_ADMIN=$(jq_ "$LANYARD_RUN_DIR/agent-$WEB1_PID.json" "d['admin']")

# Discovery only when nothing listens on the default address.
if (exec 3<>/dev/tcp/127.0.0.1/15020) 2>/dev/null; then
  echo "     127.0.0.1:15020 is taken here: run-file discovery not checked"
  DISCOVERY=0
else
  DISCOVERY=1
  rc=$(status_rc)
  check "lanyard status, two agents in the run dir: exit 2 ($rc)" test "$rc" = 2
  check "... and it lists both, with --admin for each" \
    bash -c "grep -q 'pid $WEB1_PID ' '$T/status.out' && grep -q 'pid $WEB2_PID ' '$T/status.out' && grep -q -- '--admin 127.0.0.1:' '$T/status.out'"
fi

# -- the mesh, per workload and per instance
check "both replicas and api report" \
  wait_mesh "sorted((w['name'], w['instances']) for w in d['workloads']) == [('default/api', 1), ('default/web', 2)]"
mesh_json "$T/mesh.json"
ROOT_FP=$(openssl x509 -in "$T/ca/bundle.pem" -outform DER | sha256sum | cut -d' ' -f1)
VERSION=$("$LANYARD" version | awk 'NR == 1 {print $2}')
check "/api/mesh: every agent's bundle_root_sha256 is [sha256 of the root's DER] ($ROOT_FP)" \
  jtrue "$T/mesh.json" "all(a['bundle_root_sha256'] == ['$ROOT_FP'] for w in d['workloads'] for a in w['agents']) and all(w['bundle_root_sha256'] == ['$ROOT_FP'] for w in d['workloads'])"
check "/api/mesh: the CA's root, with its fingerprint and expiry" \
  jtrue "$T/mesh.json" "[r['sha256'] for r in d['ca']['roots']] == ['$ROOT_FP'] and d['ca']['roots'][0]['expires_in_seconds'] > 0"
check "/api/mesh: the CA's signing certificate expiry" \
  jtrue "$T/mesh.json" "d['ca']['signing']['not_after'] > d['generated_at']"
check "/api/mesh: web's agents: host, version $VERSION, address 127.0.0.1, state ok" \
  jtrue "$T/mesh.json" "[(a['hostname'], a['agent_version'], a['address'], a['state']) for w in d['workloads'] if w['name'] == 'default/web' for a in w['agents']] == [('$(hostname)', '$VERSION', '127.0.0.1', 'ok')] * 2"
check "/api/mesh: one instance per agent process (pids $WEB1_PID, $WEB2_PID)" \
  jtrue "$T/mesh.json" "sorted(a['instance'].split('/')[-1] for w in d['workloads'] if w['name'] == 'default/web' for a in w['agents']) == sorted(['$WEB1_PID', '$WEB2_PID'])"
check "/api/mesh: not_before and not_after per workload (for the lifetime)" \
  jtrue "$T/mesh.json" "all(0 < w['not_before'] < w['not_after'] for w in d['workloads'])"

"$LANYARD" mesh --ca-admin "$CA_ADMIN" >"$T/mesh.txt"
cat "$T/mesh.txt"
check "lanyard mesh: workloads named namespace/service-account" \
  bash -c "grep -Eq '^default/web +' '$T/mesh.txt' && grep -Eq '^default/api +' '$T/mesh.txt'"
check "lanyard mesh: a LAST REPORT column" grep -q "LAST REPORT" "$T/mesh.txt"
check "lanyard mesh: the CA root's short fingerprint and expiry" grep -Eq "^CA roots: ${ROOT_FP:0:12} \(expires " "$T/mesh.txt"
"$LANYARD" mesh --ca-admin "$CA_ADMIN" --full-ids >"$T/mesh-full.txt"
check "lanyard mesh --full-ids: SPIFFE IDs" grep -Eq "^$WEB +" "$T/mesh-full.txt"
"$LANYARD" mesh --ca-admin "$CA_ADMIN" -o wide >"$T/mesh-wide.txt"
check "lanyard mesh -o wide: web's roots by short fingerprint" grep -Eq "^default/web .* ${ROOT_FP:0:12} " "$T/mesh-wide.txt"
"$LANYARD" mesh --ca-admin "$CA_ADMIN" --instances >"$T/mesh-inst.txt"
cat "$T/mesh-inst.txt"
check "lanyard mesh --instances: two rows for web, host, version and address" \
  test "$(grep -cE "^default/web +$(hostname) +$VERSION +127\.0\.0\.1 " "$T/mesh-inst.txt")" = 2
"$LANYARD" mesh --ca-admin "$CA_ADMIN" --instances -o wide >"$T/mesh-inst-wide.txt"
check "lanyard mesh --instances -o wide: each replica's roots and pid" \
  bash -c "grep -E '^default/web .* ${ROOT_FP:0:12} .*/$WEB1_PID\$' '$T/mesh-inst-wide.txt' && grep -qE '^default/web .* ${ROOT_FP:0:12} .*/$WEB2_PID\$' '$T/mesh-inst-wide.txt'" >/dev/null

# -- a replica that stops reporting is stale, not gone
kill -STOP "$WEB2_PID"
check "web2 frozen: its row turns stale (3 missed 1 s reports)" \
  wait_mesh "[a['state'] for w in d['workloads'] if w['name'] == 'default/web' for a in w['agents'] if a['instance'].endswith('/$WEB2_PID')] == ['stale']" 20
cp "$T/wait.json" "$T/stale.json"
check "... web stays listed, 2 instances, 1 stale, still ok as a workload" \
  jtrue "$T/stale.json" "[(w['instances'], w['stale_instances'], w['state']) for w in d['workloads'] if w['name'] == 'default/web'] == [(2, 1, 'ok')]"
check "... with how long it has been silent (>= 3 s)" \
  jtrue "$T/stale.json" "[a['last_report_age_seconds'] >= 3 for w in d['workloads'] for a in w['agents'] if a['state'] == 'stale'] == [True]"
"$LANYARD" mesh --ca-admin "$CA_ADMIN" >"$T/mesh-stale.txt"
"$LANYARD" mesh --ca-admin "$CA_ADMIN" --instances >"$T/mesh-stale-inst.txt"
cat "$T/mesh-stale.txt" "$T/mesh-stale-inst.txt"
check "lanyard mesh: web has 2 instances, 1 stale" grep -Eq "^default/web .* 2 \(1 stale\) " "$T/mesh-stale.txt"
check "lanyard mesh --instances: one web row STALE" test "$(grep -c '^default/web .* STALE' "$T/mesh-stale-inst.txt")" = 1
check "CA metrics: one stale agent" bash -c "curl -s 'http://$CA_ADMIN/metrics' | grep -q '^lanyard_mesh_agents_stale 1$'"
# the CA's page, in headless Chromium, when there is one
if node_dir=$("$LY_SOURCE_DIR/tests/tools/browser.sh" 2>"$T/browser.err"); then
  shot=${LY_ARTIFACT_DIR:-$T}/views-page.png
  mkdir -p "$(dirname "$shot")"
  if LY_NODE_DIR="$node_dir" HOME="$T" node "$LY_SOURCE_DIR/tests/tools/mesh_page.mjs" \
    "http://$CA_ADMIN/" "$shot" "~$WEB" "~$API" >"$T/page.out" 2>"$T/page.err"; then
    ok "the CA's page shows both workloads"
  else
    bad "the CA's page shows both workloads"
    cat "$T/page.err"
  fi
  cat "$T/page.out"
  grep "\"$WEB\"" "$T/page.out" >"$T/page-web.json" || true
  check "the page names web default/web, its roots ${ROOT_FP:0:12}, 2 (1 stale) agents" \
    jtrue "$T/page-web.json" "(d['name'], d['roots'], d['instances'], d['state']) == ('default/web', '${ROOT_FP:0:12}', '2 (1 stale)', 'ok')"
  check "the page: web's 60 s certificate is not red (more than a sixth of its life left)" \
    jtrue "$T/page-web.json" "d['cert_red'] is False"
else
  echo "     no headless browser: page checks skipped ($(cat "$T/browser.err"))"
fi
kill -CONT "$WEB2_PID"
check "web2 thawed: it reports again (ok)" \
  wait_mesh "[a['state'] for w in d['workloads'] if w['name'] == 'default/web' for a in w['agents']] == ['ok', 'ok']" 20
stop_daemon "$WEB2_PID"
check "web2 stopped cleanly: its run file is gone" test ! -e "$LANYARD_RUN_DIR/agent-$WEB2_PID.json"
check "... and the CA still shows it, stale" \
  wait_mesh "[(w['instances'], w['stale_instances']) for w in d['workloads'] if w['name'] == 'default/web'] == [(2, 1)]" 20
if [ "$DISCOVERY" = 1 ]; then
  rc=$(status_rc)
  check "lanyard status without --admin finds the one agent left (web1): exit $rc" test "$rc" = 0
  check "... and shows web's identity" grep -q "^identity  *$WEB (valid)" "$T/status.out"
fi

# -- exit codes
rc=$(status_rc --admin "$API_ADMIN")
check "lanyard status, a valid identity: exit 0 ($rc)" test "$rc" = 0
check "... roots by short fingerprint" grep -q "^bundle  *1 root(s): ${ROOT_FP:0:12}" "$T/status.out"
check "... reports ok" grep -Eq "^report +ok, last " "$T/status.out"
rc=$(status_rc --admin "127.0.0.1:$(free_port)")
check "lanyard status, nothing listening: exit 2 ($rc)" test "$rc" = 2
agent_yaml "$T/lonely" "spiffe://$TD/ns/default/sa/lonely" "$T/ca"
sed -i "s|address: 127.0.0.1:$CA_PORT|address: 127.0.0.1:$(free_port)|" "$T/lonely/agent.yaml"
"$LANYARD" agent -c "$T/lonely/agent.yaml" >>"$T/lonely/agent.log" 2>&1 &
PIDS+=("$!")
LONELY_ADMIN=$(admin_of "$T/lonely/agent.yaml")
wait_port 127.0.0.1 "${LONELY_ADMIN##*:}" 10 || true
rc=$(status_rc --admin "$LONELY_ADMIN")
check "lanyard status, no SVID yet: exit 1 ($rc)" test "$rc" = 1
"$LANYARD" status --help >"$T/help.txt" || true
check "lanyard status --help documents the exit codes" grep -q "^Exit status: 0 " "$T/help.txt"

# -- the CA goes away: failures are visible
ca_stop
sleep 3.5 # a few 1 s report intervals
curl -s "http://$WEB1_ADMIN/status" >"$T/web-down.json"
check "web1 /status: reports failing, with the error and the last success" \
  jtrue "$T/web-down.json" "d['report']['consecutive_failures'] >= 2 and d['report']['last_error'] and d['report']['last_error_at'] and d['report']['last_success']"
check "web1 logged report_failed at warn" grep -q "level=warn event=report_failed" "$T/web1/agent.log"
n=$(grep -c "event=report_failed" "$T/web1/agent.log" || true)
f=$(jq_ "$T/web-down.json" "d['report']['consecutive_failures']")
check "... rate-limited ($n line(s) for $f failures)" test "$n" -lt "$f"
kill -HUP "$WEB1_PID" # asks the CA for its bundle now
check "bundle refresh failure shown in /status" \
  bash -c "for _ in \$(seq 1 50); do curl -s 'http://$WEB1_ADMIN/status' | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d[\"bundle_refresh\"][\"consecutive_failures\"] >= 1 and d[\"bundle_refresh\"][\"last_error\"] else 1)' && exit 0; sleep 0.2; done; exit 1"
"$LANYARD" status --admin "$WEB1_ADMIN" >"$T/web-down.txt" || true
check "lanyard status: report FAILING" grep -Eq "^report +FAILING \([0-9]+ in a row" "$T/web-down.txt"
check "lanyard status: bundle refresh FAILING" grep -Eq "^bundle refresh +FAILING" "$T/web-down.txt"

# api's 6 s SVID runs out while the CA is away
check "api's SVID expires: /readyz 503" \
  bash -c "for _ in \$(seq 1 100); do [ \"\$(curl -s -o /dev/null -w '%{http_code}' 'http://$API_ADMIN/readyz')\" = 503 ] && exit 0; sleep 0.1; done; exit 1"
check "/readyz says expired" bash -c "curl -s 'http://$API_ADMIN/readyz' | grep -q '^expired'"
rc=$(status_rc --admin "$API_ADMIN")
check "lanyard status, expired: exit 1 ($rc)" test "$rc" = 1
check "... and says EXPIRED" grep -q "^identity  *$API (EXPIRED)" "$T/status.out"
check "/status: expired with expired_at" \
  bash -c "curl -s 'http://$API_ADMIN/status' | python3 -c 'import json,sys; i=json.load(sys.stdin)[\"identity\"]; sys.exit(0 if i[\"expired\"] and i[\"expired_at\"] > 0 and not i[\"valid\"] else 1)'"

# the CA is back: reports recover
ca_start "$T/ca"
check "web1 logs report_recovered" wait_log "$T/web1/agent.log" "event=report_recovered" 15
check "api gets a new SVID (exit 0 again)" \
  bash -c "for _ in \$(seq 1 100); do '$LANYARD' status --admin '$API_ADMIN' >/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1"
stop_daemon "$WEB1_PID"
check "web1's run file removed on a clean exit" test ! -e "$LANYARD_RUN_DIR/agent-$WEB1_PID.json"
finish
