#!/usr/bin/env bash
# CA down for longer than the SVIDs' lifetime: the agents fail closed,
# then, with no identity, look for the CA every second, so traffic flows
# again within seconds of the CA's return (not after a 30 s backoff).
. "$(dirname "$0")/lib.sh"

TD=example.org
SVID_TTL=10s explicit_pair "$TD"
echo "back again" >"$T/nginx/www/index.html"
through() { curl -sS -m 3 "http://127.0.0.1:$CLIENT_PORT/index.html" 2>/dev/null; }
check "traffic flows through the agents" test "$(through)" = "back again"

ca_stop
echo "     CA stopped at $(date +%T)"
for a in api web; do
  check "the $a agent's SVID expires while the CA is down" \
    wait_log "$T/$a/agent.log" "event=identity_expired" 20
done
check "and traffic is refused (fail closed)" test "$(through)" != "back again"
sleep 4 # a few retries without an identity
for a in api web; do
  n=$(sed -n '/event=identity_expired/,$p' "$T/$a/agent.log" | grep -c "event=svid_request_failed" || true)
  check "the $a agent kept looking for the CA after expiry ($n failed requests in ~4 s)" test "$n" -ge 2
  w=$(sed -n '/event=identity_expired/,$p' "$T/$a/agent.log" | grep -c "level=warn event=svid_request_failed" || true)
  check "  the same failure repeated is logged at debug, not warn ($w warn lines)" test "$w" -le 1
done

ca_start "$T/ca"
back=$(date +%s.%N)
echo "     CA back at $(date +%T)"
until [ "$(through)" = "back again" ]; do
  if awk -v b="$back" -v n="$(date +%s.%N)" 'BEGIN { exit !(n - b > 60) }'; then break; fi
  sleep 0.1
done
took=$(awk -v b="$back" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f", n - b }')
echo "     traffic flows again ${took} s after the CA's return"
check "traffic flows again within 10 s of the CA's return (${took} s)" \
  awk -v t="$took" 'BEGIN { exit !(t < 10) }'
for a in api web; do
  check "the $a agent got a new SVID with its join token" \
    bash -c "sed -n '/event=identity_expired/,\$p' '$T/$a/agent.log' | grep -q event=svid_issued"
done
finish
