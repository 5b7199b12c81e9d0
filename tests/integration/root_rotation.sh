#!/usr/bin/env bash
# A root rotation done by hand (new root into the bundle, signing switched
# to the new intermediate, old root retired), then: an agent restarted
# with a ca.bundle that still holds only the retired root recovers (it
# starts from the bundle it wrote to svid.dir), and an agent that cannot
# reach the CA picks up a new ca.bundle without a restart.
. "$(dirname "$0")/lib.sh"

TD=example.org
A=spiffe://$TD/ns/default/sa/a
B=spiffe://$TD/ns/default/sa/b
ca_setup "$T/ca" "$TD"
cp "$T/ca/bundle.pem" "$T/old-root.pem"
ca_start "$T/ca"
certs() { grep -c "BEGIN CERTIFICATE" "$1" 2>/dev/null || true; }
fp() { openssl x509 -in "$1" -noout -fingerprint -sha256 2>/dev/null; }
# agent_boot DIR ID: an agent whose ca.bundle is its own copy of the
# original root, never updated.
agent_boot() {
  SVID_TTL=6s agent_yaml "$1" "$2" "$T/ca"
  cp "$T/old-root.pem" "$1/boot.pem"
  sed -i "s|^  bundle: .*|  bundle: $1/boot.pem|" "$1/agent.yaml"
}
wait_true() { # seconds command...: until the command succeeds
  local n=$(($1 * 10)); shift
  until "$@"; do n=$((n - 1)); [ "$n" -gt 0 ] || return 1; sleep 0.1; done
}
agent_boot "$T/a" "$A"
check "agent a gets its SVID under the first root" agent_run "$T/a"
A_PID=$AGENT_PID

# -- prepare: the new root joins the bundle
"$LANYARD" ca init --trust-domain "$TD" --dir "$T/next" >/dev/null
cat "$T/old-root.pem" "$T/next/root.pem" >"$T/ca/bundle.pem"
two_roots() { [ "$(certs "$T/a/svid/bundle.pem")" = 2 ]; }
check "agent a learns the new root from the CA (2 roots written out)" wait_true 20 two_roots

# -- activate: the CA signs with the new intermediate
sed -i -e "s|^  cert: .*|  cert: $T/next/signing.pem|" \
  -e "s|^  key: .*|  key: $T/next/signing.key|" "$T/ca/ca.yaml"
ca_stop
ca_start "$T/ca"
under_new() {
  openssl verify -CAfile "$T/next/root.pem" -untrusted "$T/a/svid/svid.pem" \
    "$T/a/svid/svid.pem" >/dev/null 2>&1
}
check "agent a renews under the new root" wait_true 20 under_new

# -- retire: only the new root is left
cp "$T/next/root.pem" "$T/ca/bundle.pem"
retired() { [ "$(certs "$T/a/svid/bundle.pem")" = 1 ] && [ "$(fp "$T/a/svid/bundle.pem")" = "$(fp "$T/next/root.pem")" ]; }
check "agent a's written-out bundle holds only the new root" wait_true 30 retired

# -- restart a with its ca.bundle still on the retired root
stop_daemon "$A_PID"
rm "$T/a/svid/svid.pem"
echo "---- restarted" >>"$T/a/agent.log"
check "agent a, restarted with only the retired root in ca.bundle, gets an SVID" agent_run "$T/a"
check "  starting from the bundle it wrote out" \
  grep -q "event=bundle_restored .*roots_added=1" "$T/a/agent.log"
check "  its written-out bundle is the CA's again (the retired root is not kept)" retired
check "  no handshake with the CA failed after the restart" \
  bash -c "! sed -n '/^---- restarted/,\$p' '$T/a/agent.log' | grep -q event=svid_request_failed"

# -- a new agent with only the retired root and nothing written out
agent_boot "$T/b" "$B"
agent_start "$T/b"
check "agent b cannot reach the CA with only the retired root" \
  wait_log "$T/b/agent.log" "event=svid_request_failed" 15
check "  and has no SVID" test ! -e "$T/b/svid/svid.pem"
cp "$T/next/root.pem" "$T/b/boot.pem.new"
mv "$T/b/boot.pem.new" "$T/b/boot.pem" # as a ConfigMap update does
check "agent b picks up the new ca.bundle without a restart and gets an SVID" \
  wait_file "$T/b/svid/svid.pem" 15
check "  and says so" grep -q "event=bootstrap_bundle_reloaded .*roots_added=1" "$T/b/agent.log"

# -- a broken ca.bundle is reported and changes nothing
echo "not a bundle" >"$T/b/boot.pem"
check "a broken ca.bundle is reported" \
  wait_log "$T/b/agent.log" "event=bootstrap_bundle_reload_failed .*reason=" 15
serial=$(serial_of "$T/b/svid/svid.pem")
renewed() { [ "$(serial_of "$T/b/svid/svid.pem")" != "$serial" ]; }
check "  and agent b keeps renewing" wait_true 15 renewed
finish
