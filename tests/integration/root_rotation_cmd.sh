#!/usr/bin/env bash
# Root rotation with the commands, under traffic, with no restart:
# `lanyard ca root prepare -> activate -> retire`, then `ca intermediate
# rotate`, while a client agent (web) sends requests on new connections to
# a server agent (api) with 20 s SVIDs. Not one request may fail.
# Along the way: `activate` is refused while a live agent lacks the new
# root, `retire` is refused while a live SVID chains to the old root, and
# after `retire` an SVID from the old root is refused by the server agent.
. "$(dirname "$0")/lib.sh"

TD=example.org
API=spiffe://$TD/ns/default/sa/api
WEB=spiffe://$TD/ns/default/sa/web
LEGACY=spiffe://$TD/ns/default/sa/legacy # a workload without an agent
HELD=spiffe://$TD/ns/default/sa/held
ca_setup "$T/ca" "$TD"
ca_start "$T/ca"
CFG=$T/ca/ca.yaml
ADMIN=$(sed -n 's/^admin: //p' "$CFG")

NGINX_PORT=$(free_port)
nginx_start "$T/nginx" "$NGINX_PORT"
echo ok >"$T/nginx/www/ping"
S_HTTP=$(free_port)
C_HTTP=$(free_port)
SVID_TTL=20s agent_yaml "$T/api" "$API" "$T/ca"
cat >>"$T/api/agent.yaml" <<YAML
listeners:
  - {name: http, mode: server, listen: 127.0.0.1:$S_HTTP, forward: 127.0.0.1:$NGINX_PORT, allow: [$WEB, $LEGACY]}
YAML
SVID_TTL=20s agent_yaml "$T/web" "$WEB" "$T/ca"
cat >>"$T/web/agent.yaml" <<YAML
listeners:
  - {name: http, mode: client, listen: 127.0.0.1:$C_HTTP, connect: 127.0.0.1:$S_HTTP, expect: $API}
YAML
check "server agent (api) gets its SVID" agent_run "$T/api"
check "client agent (web) gets its SVID" agent_run "$T/web"

# The agent held with a stale bundle. An agent learns the CA's bundle from
# every Sign response, from a TrustBundle call every 5 minutes, and at once
# when its ca.bundle file changes. This one has a 10-minute SVID (next
# renewal in 5 minutes) and a ca.bundle of its own that no one updates
# (a copy baked into an image, say): for minutes after `prepare` it keeps
# reporting, live, with only the old root, which is the real window in
# which an early `activate` would make it refuse every new SVID.
SVID_TTL=10m agent_yaml "$T/held" "$HELD" "$T/ca"
cp "$T/ca/bundle.pem" "$T/held/boot.pem"
sed -i "s|^  bundle: .*|  bundle: $T/held/boot.pem|" "$T/held/agent.yaml"
check "the held agent gets its SVID" agent_run "$T/held"
HELD_PID=$AGENT_PID

wait_true() { # seconds command...: until the command succeeds
  local n=$(($1 * 4)); shift
  until "$@"; do n=$((n - 1)); [ "$n" -gt 0 ] || return 1; sleep 0.25; done
}
certs() { grep -c "BEGIN CERTIFICATE" "$1" 2>/dev/null || true; }
fp() { openssl x509 -in "$1" -noout -fingerprint -sha256 2>/dev/null; }
rot() { "$LANYARD" ca "$@" -c "$CFG"; }
# the certificate after the leaf of a chain file
second_cert() { awk '/BEGIN CERT/{n++} n==2' "$1"; }
signed_by() { # agent-dir signing-file: its SVID's intermediate is that one
  [ "$(second_cert "$1/svid/svid.pem")" = "$(cat "$2")" ]
}
# curl_as DIR: a request to the server agent with DIR/cert.pem and key.pem
curl_as() {
  [ "$(curl -sk -m 5 --cert "$1/cert.pem" --key "$1/key.pem" \
    "https://127.0.0.1:$S_HTTP/ping" 2>/dev/null)" = ok ]
}
# the mesh as the CA sees it: does every agent of ID report root FP
reports_root() { # name fp
  curl -s "http://$ADMIN/api/mesh" | python3 -c '
import json, sys
name, fp = sys.argv[1], sys.argv[2]
doc = json.load(sys.stdin)
agents = [a for w in doc["workloads"] if w["name"] == name for a in w["agents"]]
sys.exit(0 if agents and all(fp in a["bundle_root_sha256"] for a in agents) else 1)' "$1" "$2"
}
export -f certs fp second_cert signed_by curl_as reports_root serial_of
export T S_HTTP ADMIN

# An SVID of the old root that no agent holds, made before the rotation.
svid_for "$LEGACY" "$T/legacy" 3600
check "an SVID from the first root is admitted by the server agent" curl_as "$T/legacy"
status=$(rot root status)
echo "$status" | sed 's/^/    /'
check "status: root-1 active, signing-1 signing, nothing in progress" \
  bash -c 'grep -qE "^root-1 +active .* yes$" <<<"$1" &&
    grep -qE "^signing-1 +active .*root-1  \(the CA signs with it\)$" <<<"$1" &&
    grep -q "^next: nothing in progress" <<<"$1"' _ "$status"

# -- traffic: new connections, until told to stop
: >"$T/ok.count"
: >"$T/fail.count"
(
  while [ ! -e "$T/stop" ]; do
    if [ "$(curl -s -m 5 "http://127.0.0.1:$C_HTTP/ping")" = ok ]; then
      echo >>"$T/ok.count"
    else
      date -u +%T.%N >>"$T/fail.count"
    fi
  done
) &
TRAFFIC=$!
PEERS+=("$TRAFFIC")

# -- prepare
check "prepare succeeds" rot root prepare
check "  the bundle holds both roots" test "$(certs "$T/ca/bundle.pem")" = 2
check "  a new root and intermediate beside ca.yaml, keys 0600" \
  test "$(stat -c %a "$T/ca/root-2.key")" = 600 -a "$(stat -c %a "$T/ca/signing-2.key")" = 600 \
  -a -s "$T/ca/root-2.pem" -a -s "$T/ca/signing-2.pem"
R2=$(openssl x509 -in "$T/ca/root-2.pem" -outform DER | sha256sum | cut -d' ' -f1)
check "prepare again is refused while a rotation is in progress" \
  bash -c '! "$@" 2>/dev/null' _ "$LANYARD" ca root prepare -c "$CFG"
check "api and web write out both roots (no restart)" \
  wait_true 20 bash -c '[ "$(certs "$T/api/svid/bundle.pem")" = 2 ] && [ "$(certs "$T/web/svid/bundle.pem")" = 2 ]'
check "api and web report the new root to the CA" \
  wait_true 20 bash -c "reports_root default/api $R2 && reports_root default/web $R2"
check "the held agent still lacks it" test "$(certs "$T/held/svid/bundle.pem")" = 1

# -- activate: refused while the held agent lacks the new root
out=$(rot root activate 2>&1) && rc=0 || rc=$?
echo "$out" | sed 's/^/    /'
check "activate is refused (exit $rc)" test "$rc" -ne 0
check "  naming the held agent and its instance" \
  bash -c 'grep -q "1 live agent(s) do not hold root-2" <<<"$1" &&
    grep -qE "^    default/held \(instance .+\)$" <<<"$1"' _ "$out"
check "  and no other agent" bash -c '! grep -qE "default/(api|web)" <<<"$1"' _ "$out"
status=$(rot root status)
check "status: root-2 pending, activate blocked by default/held, root-1 still signing" \
  bash -c 'grep -qE "^root-2 +pending .* yes$" <<<"$1" &&
    grep -q "^next: activate root-2: blocked: 1 live agent(s) lack it:" <<<"$1" &&
    grep -qE "^    default/held " <<<"$1" &&
    grep -qE "^signing-1 +active .*\(the CA signs with it\)$" <<<"$1"' _ "$status"
# An operator's remedy: SIGHUP makes the agent fetch the CA's bundle now.
kill -HUP "$HELD_PID"
check "after SIGHUP the held agent holds the new root" \
  wait_true 15 bash -c '[ "$(certs "$T/held/svid/bundle.pem")" = 2 ]'
check "activate succeeds once every live agent holds it" \
  wait_true 30 bash -c "'$LANYARD' ca root activate -c '$CFG' >'$T/activate.out' 2>&1"
cat "$T/activate.out" | sed 's/^/    /'
check "  and sees the running CA switch (no restart)" \
  grep -q "the CA signs with signing-2 now" "$T/activate.out"
check "api and web renew under the new root" \
  wait_true 40 bash -c 'signed_by "$T/api" "$T/ca/signing-2.pem" && signed_by "$T/web" "$T/ca/signing-2.pem"'

# -- retire: refused while live SVIDs chain to the old root: the legacy
# SVID (an hour) and the held agent's (10 minutes); the agents' earlier
# 20 s SVIDs age out first.
blocked_by_two() {
  rot root status >"$T/status.out" 2>&1
  grep -q "^  2 live SVID(s) in the inventory do not chain to root-2:" "$T/status.out"
}
check "status: retire is blocked by exactly the two long-lived SVIDs" wait_true 40 blocked_by_two
cat "$T/status.out" | sed 's/^/    /'
# the same, for scripts
sj() { rot root status --json | python3 -c "import json,sys; d=json.load(sys.stdin); print(repr(($1)))"; }
check "status --json: next is retire root-1, not ready, 2 SVIDs and default/held in the way" \
  test "$(sj 'd["next"]["step"], d["next"]["root"], d["next"]["ready"], d["next"]["inventory_svids_off_root"]["count"], d["next"]["agents_off_root"]["first"][0].split()[0]')" \
  = "('retire', 'root-1', False, 2, 'default/held')"
out=$(rot root retire 2>&1) && rc=0 || rc=$?
echo "$out" | sed 's/^/    /'
check "retire is refused (exit $rc)" test "$rc" -ne 0
check "  counting and naming the live SVIDs on the old root" \
  bash -c 'grep -q "2 live SVID(s) in the inventory do not chain to root-2" <<<"$1" &&
    grep -q "^    $2$" <<<"$1" && grep -q "^    $3$" <<<"$1"' _ "$out" "$LEGACY" "$HELD"
check "  and naming the live agent that presents one" \
  bash -c 'grep -q "1 live agent(s) present an SVID that does not chain to root-2" <<<"$1" &&
    grep -qE "^    default/held \(instance" <<<"$1"' _ "$out"
check "  the bundle still holds both roots" test "$(certs "$T/ca/bundle.pem")" = 2
# The operator takes the held workload away and accepts that the legacy
# SVID stops working: --force.
stop_daemon "$HELD_PID"
check "retire --force succeeds, listing what it overrode" \
  bash -c '"$@" >"$0" 2>&1 && grep -q "^--force: retiring with live identities on root-1" "$0"' \
  "$T/retire.out" "$LANYARD" ca root retire --force -c "$CFG"
check "  the bundle holds only the new root" \
  test "$(certs "$T/ca/bundle.pem")" = 1 -a "$(fp "$T/ca/bundle.pem")" = "$(fp "$T/ca/root-2.pem")"
only_new() { # agent dir
  [ "$(certs "$1/svid/bundle.pem")" = 1 ] && [ "$(fp "$1/svid/bundle.pem")" = "$(fp "$T/ca/root-2.pem")" ]
}
export -f only_new
check "api and web write out only the new root (no restart)" \
  wait_true 30 bash -c 'only_new "$T/api" && only_new "$T/web"'
check "after retire, the SVID from the old root is refused by the server agent" \
  wait_true 15 bash -c '! curl_as "$T/legacy"'
check "  and logged as a refusal" wait_log "$T/api/agent.log" "event=mtls_refused" 10
svid_for "$LEGACY" "$T/legacy2" 600
check "  while a new SVID for the same ID is admitted" curl_as "$T/legacy2"
status=$(rot root status)
echo "$status" | sed 's/^/    /'
check "status: root-1 retired and out of the bundle, root-2 active" \
  bash -c 'grep -qE "^root-1 +retired .* no$" <<<"$1" && grep -qE "^root-2 +active .* yes$" <<<"$1" &&
    grep -qE "^signing-1 +retired " <<<"$1" && grep -q "^next: nothing in progress" <<<"$1"' _ "$status"

# -- the signing intermediate alone
check "intermediate rotate succeeds and the CA follows" \
  bash -c '"$@" >"$0" 2>&1 && grep -q "the CA signs with signing-3 now" "$0"' \
  "$T/rotate.out" "$LANYARD" ca intermediate rotate -c "$CFG"
check "  the bundle is unchanged" test "$(certs "$T/ca/bundle.pem")" = 1
check "api and web renew under the new intermediate" \
  wait_true 40 bash -c 'signed_by "$T/api" "$T/ca/signing-3.pem" && signed_by "$T/web" "$T/ca/signing-3.pem"'
status=$(rot root status)
check "status: signing-2 retired, signing-3 signing under root-2" \
  bash -c 'grep -qE "^signing-2 +retired " <<<"$1" &&
    grep -qE "^signing-3 +active .* root-2  \(the CA signs with it\)$" <<<"$1"' _ "$status"
check "activate and retire with nothing in progress are refused" \
  bash -c '! "$0" ca root activate -c "$1" 2>/dev/null && ! "$0" ca root retire -c "$1" 2>/dev/null' \
  "$LANYARD" "$CFG"

# -- a broken signing certificate: the CA keeps signing with what it has
echo "not a certificate" >"$T/ca/signing.pem.new"
mv "$T/ca/signing.pem.new" "$T/ca/signing.pem"
check "a broken signing.pem is reported by the CA" \
  wait_log "$T/ca/ca.log" "event=signer_reload_failed" 10
serial=$(serial_of "$T/api/svid/svid.pem")
check "  and api still renews, under signing-3" \
  wait_true 20 bash -c '[ "$(serial_of "$T/api/svid/svid.pem")" != "$0" ] && signed_by "$T/api" "$T/ca/signing-3.pem"' "$serial"
cp "$T/ca/signing-3.pem" "$T/ca/signing.pem"

check "status --json: nothing in progress, signing-3 signs, root-1 out of the bundle" \
  test "$(sj 'd["next"]["step"], [i["name"] for i in d["intermediates"] if i["signing"]], [x["in_bundle"] for x in d["roots"]]')" \
  = "('prepare', ['signing-3'], [False, True])"
check "rotation.json is valid JSON" bash -c 'python3 -m json.tool "$T/ca/rotation.json" >/dev/null'

touch "$T/stop"
wait "$TRAFFIC" || true
oks=$(wc -l <"$T/ok.count")
fails=$(wc -l <"$T/fail.count")
check "no failed request through the rotation ($oks ok, $fails failed)" \
  test "$fails" -eq 0 -a "$oks" -gt 100
[ "$fails" -eq 0 ] || head -5 "$T/fail.count"
check "the CA was never restarted" test "$(grep -c event=ca_started "$T/ca/ca.log")" = 1
check "the agents were never restarted" \
  test "$(cat "$T/api/agent.log" "$T/web/agent.log" | grep -c event=agent_started)" = 2
finish
