#!/usr/bin/env bash
# svid.dir is created when it is missing (a path under /run is gone after
# a reboot), with its parents, 0755 whatever the umask; the key stays
# 0600. A path that cannot be a directory is an error the agent reports.
. "$(dirname "$0")/lib.sh"

TD=example.org
ID=spiffe://$TD/ns/default/sa/web
ca_setup "$T/ca" "$TD"
ca_start "$T/ca"

SVID_TTL=6s agent_yaml "$T/a" "$ID" "$T/ca"
DIR=$T/a/run/lanyard/deep/svid
sed -i "s|^  dir: svid$|  dir: $DIR|" "$T/a/agent.yaml"
check "--check accepts a svid.dir that does not exist yet" \
  "$LANYARD" agent -c "$T/a/agent.yaml" --check
# A umask that would make the directories private: the agent sets 0755.
(umask 077 && exec "$LANYARD" agent -c "$T/a/agent.yaml" >>"$T/a/agent.log" 2>&1) &
AGENT_PID=$!
PIDS+=("$AGENT_PID")
check "the SVID is written into the missing nested directory" wait_file "$DIR/svid.pem" 15
check "bundle.pem and svid.key are there too" test -s "$DIR/bundle.pem" -a -s "$DIR/svid.key"
modes=$(stat -c %a "$T/a/run" "$T/a/run/lanyard" "$T/a/run/lanyard/deep" "$DIR" 2>/dev/null | tr '\n' ' ' || true)
check "the directory and its parents are 0755 ($modes)" test "$modes" = "755 755 755 755 "
check "svid.key is 0600" test "$(stat -c %a "$DIR/svid.key")" = 600
check "svid.pem and bundle.pem are 0644" \
  test "$(stat -c %a "$DIR/svid.pem") $(stat -c %a "$DIR/bundle.pem")" = "644 644"
check "the key matches the certificate" \
  test "$(openssl pkey -in "$DIR/svid.key" -pubout)" = "$(openssl x509 -in "$DIR/svid.pem" -noout -pubkey)"
check "no write failure was logged" bash -c "! grep -q event=svid_write_failed '$T/a/agent.log'"

# Gone while the agent runs (a tmpfs cleaned up): the next rotation
# writes it again.
rm -rf "$T/a/run"
check "the next rotation creates it again" wait_file "$DIR/svid.pem" 15

# A file where a parent directory should be: reported, never a crash.
SVID_TTL=6s agent_yaml "$T/b" "$ID" "$T/ca"
: >"$T/b/blocker"
sed -i "s|^  dir: svid$|  dir: $T/b/blocker/svid|" "$T/b/agent.yaml"
check "--check refuses a svid.dir that cannot be created" \
  bash -c "! '$LANYARD' agent -c '$T/b/agent.yaml' --check 2>'$T/b/check.err'"
check "  and says why, at the key" grep -qE "agent.yaml:[0-9]+:[0-9]+: svid.dir .* cannot be created: a part of the path is not a directory" "$T/b/check.err"
agent_start "$T/b"
check "the agent logs why it cannot write the SVID" \
  wait_log "$T/b/agent.log" "event=svid_write_failed .*reason=" 15
check "and keeps running" kill -0 "$AGENT_PID"
finish
