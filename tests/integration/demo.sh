#!/usr/bin/env bash
# The README's main command runs the local mesh, shows identities issued
# and rotated and requests from web to api succeeding, and stops by itself
# leaving nothing running: no process, no namespace.
. "$(dirname "$0")/lib.sh"
# One mesh per machine (fixed namespace names): take turns with the e2e
# suite. The demo's daemons must not inherit the lock.
exec 9>/run/lock/lanyard-mesh.lock
flock -w 240 9 || { echo "FAIL - another mesh test holds the lock"; exit 1; }
out=$T/demo.out
"$LY_SOURCE_DIR/deploy/local/demo.sh" --duration 24 --ttl 10s >"$out" 2>&1 9>&- || bad "demo.sh exited non-zero"
cat "$out"
check "web identity issued" grep -qE "web +issued .*spiffe://mesh.local/ns/default/sa/web" "$out"
check "api identity issued" grep -qE "api +issued .*spiffe://mesh.local/ns/default/sa/api" "$out"
check "identities rotated" grep -q "rotated" "$out"
check "the running count shows requests from web to api" \
  grep -qE "requests web -> api: [1-9][0-9]* ok, [0-9]+ failed" "$out"
total=$(sed -nE 's/^requests web -> api: ([0-9]+) ok, ([0-9]+) failed$/\1 \2/p' "$out")
read -r okn failn <<<"${total:-0 0}"
check "the final count: $okn requests ok, $failn failed (no failure across rotations)" \
  test "$okn" -gt 10 -a "$failn" -eq 0
check "the live success rate from the CA's mesh report: 100% both ways" \
  grep -qE "mTLS success, last minute: api inbound 100\.0% ([1-9][0-9]*)/\1, web outbound 100\.0% ([1-9][0-9]*)/\2" "$out"
check "stopped cleanly" grep -q "stopped; nothing left running" "$out"
check "no demo process left" bash -c "! pgrep -f 'lanyard-demo\\.' >/dev/null"
check "no mesh namespace left" \
  bash -c "! ip netns list | grep -qE '^(ly-node|ly-ca|ly-web|ly-api|ly-legacy)( |\$)'"
finish
