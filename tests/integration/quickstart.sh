#!/usr/bin/env bash
# The README's install and quick start, run as written: the commands are
# read out of README.md (the ```sh blocks of "## Install" and between the
# quickstart markers), not copied here. They run in a network namespace
# of their own (the quick start uses fixed ports), with the install going
# to a staging root (DESTDIR) instead of /usr/local. The request at the
# end must come back, and must have crossed api's port as TLS.
. "$(dirname "$0")/lib.sh"
need_tools ip tcpdump python3 curl timeout
[ "$(id -u)" -eq 0 ] || { echo "skipped: needs root (a network namespace)"; exit 77; }
README=$LY_SOURCE_DIR/README.md

# The ```sh block right after a line matching $1.
block_after() {
  awk -v start="$1" '
    $0 ~ start { found = 1; next }
    found && /^```sh$/ { inside = 1; next }
    inside && /^```$/ { exit }
    inside { print }' "$README"
}
block_after '^## Install$' >"$T/install.sh"
block_after '^<!-- quickstart:begin -->$' >"$T/quickstart.sh"
check "the README has an install block ($(wc -l <"$T/install.sh") lines)" test -s "$T/install.sh"
check "the README has a quick start block ($(wc -l <"$T/quickstart.sh") lines)" test -s "$T/quickstart.sh"

# Install, from the source tree, into a staging root.
(cd "$LY_SOURCE_DIR" && DESTDIR=$T/root bash -euo pipefail "$T/install.sh") >"$T/install.out" 2>&1 &&
  rc=0 || rc=$?
check "the install commands succeed (status $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || tail -20 "$T/install.out"
BIN=$T/root/usr/local/bin
check "they put lanyard in /usr/local/bin" test -x "$BIN/lanyard"

NS=ly-qs-$$
ip netns add "$NS"
trap 'for p in $(ip netns pids "$NS" 2>/dev/null); do kill "$p" 2>/dev/null; done; sleep 0.5; ip netns del "$NS" 2>/dev/null; cleanup' EXIT
ip -n "$NS" link set lo up
mkdir -p "$T/qs"
ip netns exec "$NS" tcpdump -i lo -U -w "$T/wire.pcap" tcp port 8443 >"$T/tcpdump.log" 2>&1 &
PEERS+=($!)
sleep 1
(cd "$T/qs" && PATH=$BIN:$PATH HOME=$T/qs timeout 120 ip netns exec "$NS" \
  bash -euo pipefail "$T/quickstart.sh") >"$T/qs.out" 2>&1 && rc=0 || rc=$?
cat "$T/qs.out"
check "the quick start runs to its end (status $rc)" test "$rc" -eq 0
check "the request through the agents came back" grep -qx "hello from api" "$T/qs.out"
check "lanyard status shows api's identity" \
  grep -q "spiffe://example.org/ns/default/sa/api" "$T/qs.out"
check "  with one inbound mTLS attempt from web, which succeeded" \
  grep -qE "^  inbound +spiffe://example.org/ns/default/sa/web +1 attempts, 0 failed" "$T/qs.out"
check "the tokens were written 0600" \
  bash -c "[ \"\$(stat -c %a '$T/qs/api.token')\" = 600 ] && [ \"\$(stat -c %a '$T/qs/web.token')\" = 600 ]"
sleep 1
kill "${PEERS[-1]}" 2>/dev/null || true
wait "${PEERS[-1]}" 2>/dev/null || true
check "api's port carried TLS 1.3 records (content type 0x17)" \
  bash -c "tcpdump -r '$T/wire.pcap' -X 2>/dev/null | grep -q '1703 03'"
check "  and never the response in the clear" \
  bash -c "! tcpdump -r '$T/wire.pcap' -A 2>/dev/null | grep -q 'hello from api'"
check "  nor the request" \
  bash -c "! tcpdump -r '$T/wire.pcap' -A 2>/dev/null | grep -q 'GET / HTTP'"
finish
