#!/usr/bin/env bash
# `lanyard check` against a real CA and agents: CA reachable and ready,
# root and intermediate expiry (a warning under 30 days, fatal with
# --strict), the agents' certificates, bundle agreement (a root the CA
# added that the agents do not trust yet is a problem), ASCII without a
# UTF-8 locale, -c ca.yaml instead of --ca-admin, exit codes.
. "$(dirname "$0")/lib.sh"

TD=example.org
# check ARGS...: runs `lanyard check`, output in $T/check.out; echoes rc
run_check() {
  local rc=0
  "$LANYARD" check "$@" >"$T/check.out" 2>&1 || rc=$?
  echo "$rc"
}
out() { tr '\n' '|' <"$T/check.out"; }
has() { grep -qE -- "$1" "$T/check.out"; }
jtrue() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1"; }
wait_mesh() { # PYTHON-EXPR: until /api/mesh (d) satisfies it
  local _
  for _ in $(seq 1 75); do
    "$LANYARD" mesh --ca-admin "$CA_ADMIN" -o json >"$T/mesh.json" 2>/dev/null &&
      jtrue "$T/mesh.json" "$1" && return 0
    sleep 0.2
  done
  return 1
}
export LC_ALL=C.UTF-8

# -- a healthy CA, no agents yet: all green, even with --strict
ca_setup "$T/fresh" "$TD"
CA_ADMIN=$(awk '/^admin:/ {print $2}' "$T/fresh/ca.yaml")
ca_start "$T/fresh"
rc=$(run_check --strict --ca-admin "$CA_ADMIN")
check "a fresh CA passes --strict (exit $rc): $(out)" \
  bash -c "[ $rc -eq 0 ] && grep -q '^✔ CA reachable' '$T/check.out' && grep -q '^✔ CA ready to sign' '$T/check.out' && grep -q '^✔ no agents report' '$T/check.out'"
check "  root and intermediate valid for years" \
  bash -c "grep -qE '^✔ root [0-9a-f]{12} valid for 36[0-9]{2}d' '$T/check.out' && grep -qE '^✔ signing intermediate [0-9a-f]{12} valid for 18[0-9]{2}d' '$T/check.out'"
ca_stop

# -- a CA whose root and intermediate expire within 30 days, two agents
CA_PORT=$(free_port)
"$LANYARD" ca init --trust-domain "$TD" --dir "$T/ca" --root-ttl 25d --signing-ttl 20d \
  --listen "127.0.0.1:$CA_PORT" --admin "127.0.0.1:$(free_port)" >/dev/null
CA_ADMIN=$(awk '/^admin:/ {print $2}' "$T/ca/ca.yaml")
ca_start "$T/ca"
for sa in web api; do
  agent_yaml "$T/$sa" "spiffe://$TD/ns/default/sa/$sa" "$T/ca"
  printf 'report:\n  interval: 1s\n' >>"$T/$sa/agent.yaml"
  agent_run "$T/$sa"
done
check "both agents report to the CA" wait_mesh \
  "sum(len(w['agents']) for w in d['workloads']) == 2 and all(a['bundle_root_sha256'] for w in d['workloads'] for a in w['agents'])"

rc=$(run_check --ca-admin "$CA_ADMIN")
check "roots and intermediate under 30 days are warnings: exit $rc without --strict: $(out)" \
  bash -c "[ $rc -eq 0 ]"
check "  ‼ the root, with its fingerprint and what is left" has '^‼ root [0-9a-f]{12} expires in 2[45]d \(under 30 days'
check "  ‼ the intermediate" has '^‼ signing intermediate [0-9a-f]{12} expires in (19|20)d'
check "  ✔ the agents' certificates" has '^✔ workload certificates: 2 agents, all valid \(soonest expiry in [0-9]+m\)'
check "  ✔ bundle agreement" has "^✔ bundle agreement: 2 agents trust exactly the CA's 1 root$"
check "  a summary line" has '^‼ 0 problems, 2 warnings$'
rc=$(run_check --strict --ca-admin "$CA_ADMIN")
check "--strict fails on the warnings (exit $rc)" bash -c "[ $rc -eq 1 ] && grep -q -- '--strict: warnings fail' '$T/check.out'"
rc=$(run_check -c "$T/ca/ca.yaml")
check "-c ca.yaml finds the CA's admin address (exit $rc)" bash -c "[ $rc -eq 0 ] && grep -q '^✔ CA reachable at $CA_ADMIN' '$T/check.out'"
rc=$(LC_ALL=C run_check --ca-admin "$CA_ADMIN")
check "ASCII without a UTF-8 locale: $(out)" \
  bash -c "grep -q '^\[ok\]   CA reachable' '$T/check.out' && grep -q '^\[warn\] root' '$T/check.out' && ! grep -q '✔' '$T/check.out'"

# -- a new root in the CA's bundle that the agents have not picked up yet
"$LANYARD" ca init --trust-domain "$TD" --dir "$T/next" >/dev/null
NEW_FP=$(openssl x509 -in "$T/next/root.pem" -outform DER | sha256sum | cut -c1-12)
cat "$T/next/root.pem" >>"$T/ca/bundle.pem"
kill -HUP "$CA_PID"
check "the CA serves two roots" wait_mesh "len(d['ca']['roots']) == 2"
rc=$(run_check --ca-admin "$CA_ADMIN")
check "bundle disagreement is a problem (exit $rc): $(out)" bash -c "[ $rc -eq 1 ]"
check "  × per agent, naming the root it lacks" \
  bash -c "[ \$(grep -cE \"^× spiffe://$TD/ns/default/sa/(web|api) \\(.*\\): does not trust the CA's root $NEW_FP\" '$T/check.out') -eq 2 ]"
check "  and no ✔ bundle agreement" bash -c "! grep -q 'bundle agreement' '$T/check.out'"

# -- the CA down
ca_stop
rc=$(run_check --ca-admin "$CA_ADMIN")
check "an unreachable CA is a problem (exit $rc): $(out)" \
  bash -c "[ $rc -eq 1 ] && grep -q '^× CA admin at $CA_ADMIN: cannot connect' '$T/check.out'"
# -- what a live mesh rarely shows on cue, from a stand-in admin endpoint
# serving a crafted /api/mesh: an expired certificate, one past its
# renewal point, an agent still trusting a root the CA dropped, a CA that
# is not ready and whose root has expired
mkdir -p "$T/fake"
python3 - "$T/fake" <<'PY'
import json, sys, time
now = int(time.time())
ca_root, old_root = "a" * 64, "b" * 64
def agent(inst, nb, na, roots):
    return {"instance": inst, "state": "ok", "not_before": nb, "not_after": na,
            "expires_in_seconds": na - now, "bundle_root_sha256": roots}
mesh = {"trust_domain": "example.org", "generated_at": now,
        "ca": {"roots": [{"sha256": ca_root, "expires_in_seconds": -3600}],
               "signing": {"sha256": "c" * 64, "expires_in_seconds": 90 * 86400}},
        "workloads": [
            {"spiffe_id": "spiffe://example.org/ns/default/sa/old", "agents": [
                agent("host/1", now - 7200, now - 60, [ca_root])]},
            {"spiffe_id": "spiffe://example.org/ns/default/sa/late", "agents": [
                agent("host/2", now - 3000, now + 600, [ca_root, old_root])]},
            {"spiffe_id": "spiffe://example.org/ns/default/sa/gone", "agents": [
                dict(agent("host/3", now - 7200, now - 60, []), state="stale")]}]}
json.dump(mesh, open(sys.argv[1] + "/mesh.json", "w"))
PY
FAKE_PORT=$(free_port)
python3 - "$T/fake" "$FAKE_PORT" >"$T/fake/log" 2>&1 <<'PY' &
import http.server, sys
d, port = sys.argv[1], int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/readyz":
            body, code = b"signing certificate expired\n", 503
        elif self.path == "/api/mesh":
            body, code = open(d + "/mesh.json", "rb").read(), 200
        else:
            body, code = b"", 404
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
PEERS+=("$!")
wait_port 127.0.0.1 "$FAKE_PORT" 10
rc=$(run_check --ca-admin "127.0.0.1:$FAKE_PORT")
check "a crafted mesh: exit $rc: $(out)" test "$rc" -eq 1
check "  × CA not ready, with its reason" has '^× CA not ready to sign: signing certificate expired$'
check "  × an expired root" has '^× root aaaaaaaaaaaa expired 1h0m ago$'
check "  × an expired workload certificate" has '^× spiffe://example.org/ns/default/sa/old \(host/1\): certificate expired 1m ago$'
check "  ‼ one not renewed at half-life" has '^‼ spiffe://example.org/ns/default/sa/late \(host/2\): certificate expires in 10m and was not renewed'
check "  ‼ a root the CA dropped, still trusted" has "^‼ spiffe://example.org/ns/default/sa/late \\(host/2\\): still trusts root bbbbbbbbbbbb, which the CA no longer has"
check "  stale agents are not judged, only counted" bash -c "! grep -q 'sa/gone' '$T/check.out' && grep -q '1 stale agent not counted' '$T/check.out'"
check "  the summary counts them" has '^× 3 problems, 2 warnings$'

rc=$(run_check --bogus)
check "usage errors exit 2" test "$rc" -eq 2
finish
