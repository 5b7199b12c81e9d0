#!/usr/bin/env bash
# Permissive mode and server-first protocols: a plaintext client that
# waits for its server to speak (SMTP, MySQL) sends nothing, so the agent
# has no first byte to tell TLS from plaintext. After limits.sniff_timeout
# of silence it must take the client for plaintext and connect it, so the
# server's banner reaches the client and the exchange goes on.
#
# The same agent has limits.idle_timeout: 1s (the default is an hour): a
# connection left idle is closed, which shows limits: reach the data path.
#
# Real pieces: a CA and an agent with transparent inbound capture
# (iptables REDIRECT to the inbound port, in a network namespace of the
# suite's own), a server that writes a banner first (tools/banner.py),
# and a client that reads before it writes. Needs root, iptables and
# unshare; exits 77 (skipped) without them.
if [ -z "${LY_SNIFF_NETNS:-}" ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v iptables >/dev/null ||
    ! command -v unshare >/dev/null; then
    echo "skipped: needs root, iptables and unshare"
    exit 77
  fi
  # A network namespace of our own, gone when the suite's processes are.
  LY_SNIFF_NETNS=1 exec unshare --net -- bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
BANNER=$LY_SOURCE_DIR/tests/tools/banner.py

ip link set lo up
TD=sniff.test
API=spiffe://$TD/ns/default/sa/api
ca_setup "$T/ca" "$TD"
ca_start "$T/ca"

SERVER_PORT=$(free_port)
INBOUND_PORT=$(free_port)
MARK=$(openssl rand -hex 8)
python3 "$BANNER" serve 127.0.0.1 "$SERVER_PORT" "220 banner-$MARK ESMTP" \
  >"$T/banner.log" 2>&1 &
PEERS+=("$!")
check "the banner server listens" wait_port 127.0.0.1 "$SERVER_PORT" 10

# Connections to 127.0.0.2:SERVER_PORT are captured; the agent forwards
# them to the same port on 127.0.0.1, where the server is.
iptables -t nat -A OUTPUT -p tcp -d 127.0.0.2 --dport "$SERVER_PORT" \
  -j REDIRECT --to-ports "$INBOUND_PORT"

agent_yaml "$T/api" "$API" "$T/ca"
cat >>"$T/api/agent.yaml" <<YAML
mode: permissive
inbound:
  port: $INBOUND_PORT
limits:
  sniff_timeout: 300ms
  idle_timeout: 1s
YAML
check "agent --check accepts limits.sniff_timeout" \
  "$LANYARD" agent -c "$T/api/agent.yaml" --check
# (the data plane listens before the identity starts: no port probe,
# which the inbound listener would refuse as not redirected)
check "the agent gets its SVID" agent_run "$T/api"

got=$(python3 "$BANNER" talk 127.0.0.2 "$SERVER_PORT" "HELO client-$MARK" 2>&1 || true)
want="220 banner-$MARK ESMTP|250 hello client-$MARK"
check "a silent plaintext client gets the server's banner, then its answer ($got)" \
  test "$got" = "$want"
check "  the agent carried it as plaintext" \
  wait_log "$T/api/agent.log" "event=plaintext_established listener=inbound direction=inbound" 5
check "  and refused nothing" bash -c "! grep -q event=mtls_refused '$T/api/agent.log'"

# A client that speaks first is still told apart at once, sniff or not.
got=$(python3 "$BANNER" talk-first 127.0.0.2 "$SERVER_PORT" "HELO early-$MARK" 2>&1 || true)
check "a plaintext client that speaks first still gets through ($got)" \
  test "$got" = "220 banner-$MARK ESMTP|250 hello early-$MARK"

got=$(python3 "$BANNER" idle 127.0.0.2 "$SERVER_PORT" 2>&1 || true)
check "limits.idle_timeout: an idle connection is closed ($got)" \
  test "$got" = "220 banner-$MARK ESMTP|closed"
check "  and the agent says why" \
  wait_log "$T/api/agent.log" "event=connection_idle_timeout listener=inbound" 5
finish
