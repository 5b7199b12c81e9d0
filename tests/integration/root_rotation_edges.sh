#!/usr/bin/env bash
# The rotation commands around the happy path: with the CA stopped (no
# way to see the agents: activate refuses unless --force, and the CA takes
# the new signer when it starts), a prepare cut short before the bundle
# was written (finished by the next prepare; activate refuses even with
# --force), two commands at once, and a rotation.json that is not one.
. "$(dirname "$0")/lib.sh"

TD=example.org
ca_setup "$T/ca" "$TD"
CFG=$T/ca/ca.yaml
rot() { "$LANYARD" ca "$@" -c "$CFG"; }
certs() { grep -c "BEGIN CERTIFICATE" "$1" 2>/dev/null || true; }
sha() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }

out=$(rot root status)
check "status with the CA stopped says so, and still shows the roots" \
  bash -c 'grep -q "^CA: not reachable (http://.*/api/mesh: " <<<"$1" &&
    grep -qE "^root-1 +active " <<<"$1"' _ "$out"
check "retire with nothing in progress is refused" bash -c '! "$@" 2>/dev/null' \
  "$LANYARD" ca root retire -c "$CFG"
check "prepare works with the CA stopped" rot root prepare
check "  a second prepare is refused" bash -c '! "$@" 2>/dev/null' \
  "$LANYARD" ca root prepare -c "$CFG"

# a prepare cut short between rotation.json and the bundle
cp "$T/ca/root.pem" "$T/ca/bundle.pem"
out=$(rot root activate --force 2>&1) && rc=0 || rc=$?
check "activate --force refuses a pending root missing from the bundle" \
  bash -c '[ "$1" -ne 0 ] && grep -q "root-2 is not in .*bundle.pem: an interrupted prepare" <<<"$2"' \
  _ "$rc" "$out"
check "the next prepare finishes it" \
  bash -c '"$@" | grep -q "^finished preparing root-2: .* now holds 2 roots"' \
  _ "$LANYARD" ca root prepare -c "$CFG"
check "  the bundle holds the old root and root-2" \
  test "$(certs "$T/ca/bundle.pem")" = 2 -a "$(sha "$T/ca/root-2.pem")" = "$(openssl x509 -in <(awk '/BEGIN CERT/{n++} n==2' "$T/ca/bundle.pem") -outform DER | sha256sum | cut -d' ' -f1)"

out=$(rot root activate 2>&1) && rc=0 || rc=$?
check "activate without the CA is refused (it cannot see the agents)" \
  bash -c '[ "$1" -ne 0 ] && grep -q "refusing: cannot tell which agents hold root-2: .*cannot connect" <<<"$2"' \
  _ "$rc" "$out"

# two rotation commands at once: this shell holds the lock, as a running
# command would
exec 8>>"$T/ca/rotation.lock"
flock 8
out=$(rot root activate --force 2>&1) && rc=0 || rc=$?
check "a command while another runs is refused" \
  bash -c '[ "$1" -ne 0 ] && grep -q "another rotation command is running" <<<"$2"' _ "$rc" "$out"
check "  status is not (it only reads)" bash -c '"$@" >/dev/null' _ "$LANYARD" ca root status -c "$CFG"
flock -u 8
exec 8>&-

out=$(rot root activate --force 2>&1) && rc=0 || rc=$?
echo "$out" | sed 's/^/    /'
check "activate --force without the CA succeeds and says the CA takes it at start" \
  bash -c '[ "$1" -eq 0 ] && grep -q "the CA is not answering (.*): it signs with signing-2 when it starts" <<<"$2"' \
  _ "$rc" "$out"
check "  signing.pem/.key are signing-2's, the key 0600" \
  bash -c 'cmp -s "$1/signing.pem" "$1/signing-2.pem" && cmp -s "$1/signing.key" "$1/signing-2.key" &&
    [ "$(stat -c %a "$1/signing.key")" = 600 ]' _ "$T/ca"
ca_start "$T/ca"
out=$(rot root status)
echo "$out" | sed 's/^/    /'
check "the CA started afterwards signs with signing-2 (status)" \
  bash -c 'grep -qE "^signing-2 +active .*root-2  \(the CA signs with it\)$" <<<"$1" &&
    grep -qE "^root-1 +previous " <<<"$1" && grep -q "^next: retire root-1: ready" <<<"$1"' _ "$out"
svid_for "spiffe://$TD/ns/default/sa/x" "$T/x" 600
check "  and an SVID it issues chains to root-2 only" \
  bash -c 'openssl verify -CAfile "$1/root-2.pem" -untrusted "$2" "$2" >/dev/null 2>&1 &&
    ! openssl verify -CAfile "$1/root.pem" -untrusted "$2" "$2" >/dev/null 2>&1' _ "$T/ca" "$T/x/cert.pem"

echo '{"roots": 1}' >"$T/ca/rotation.json"
out=$(rot root status 2>&1) && rc=0 || rc=$?
check "a rotation.json that is not a rotation state is an error naming the file" \
  bash -c '[ "$1" -ne 0 ] && grep -q "rotation.json:.*not a rotation state" <<<"$2"' _ "$rc" "$out"
finish
