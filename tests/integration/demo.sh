#!/usr/bin/env bash
# The README's main command runs, shows identities issued and rotated, and
# stops by itself leaving nothing running.
. "$(dirname "$0")/lib.sh"
out=$T/demo.out
"$LY_SOURCE_DIR/deploy/local/demo.sh" --duration 24 --ttl 10s >"$out" 2>&1 || bad "demo.sh exited non-zero"
cat "$out"
check "frontend identity issued" grep -q "frontend issued .*spiffe://demo.lanyard.local/ns/demo/sa/frontend" "$out"
check "backend identity issued" grep -q "backend  issued .*spiffe://demo.lanyard.local/ns/demo/sa/backend" "$out"
check "identities rotated" grep -q "rotated" "$out"
check "stopped cleanly" grep -q "stopped; nothing left running" "$out"
check "no demo process left" bash -c "! pgrep -f 'lanyard-demo\\.' >/dev/null"
finish
