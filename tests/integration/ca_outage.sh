#!/usr/bin/env bash
# CA down for longer than the renew point but shorter than the lifetime:
# the agent keeps its SVID, retries with backoff, renews when the CA is
# back, and never loses its identity.
. "$(dirname "$0")/lib.sh"

TD=example.org
ID=spiffe://$TD/ns/default/sa/patient
ca_setup "$T/ca" "$TD"
ca_start "$T/ca"
agent_config "$T/a" "$T/ca" "$ID" 30s
agent_start "$T/a"
check "first SVID arrives" wait_file "$T/a/svid/svid.pem" 15
first=$(serial_of "$T/a/svid/svid.pem")
na=$(date -d "$(openssl x509 -in "$T/a/svid/svid.pem" -noout -enddate | cut -d= -f2)" +%s)
ca_stop
echo "     CA stopped; SVID $first expires at $na (in $((na - $(date +%s)))s)"
# down past the renew point (~15 s into the life), back well before expiry
sleep 20
check "still the same SVID while the CA is down" test "$(serial_of "$T/a/svid/svid.pem")" = "$first"
# At the default level the outage is one warning, not one per retry.
warned=$(grep -c "level=warn event=svid_request_failed" "$T/a/agent.log" || true)
check "the outage is logged once at warn, not per retry ($warned lines)" test "$warned" -eq 1
check "with backoff (the first retry's delay logged)" grep -q "event=svid_retry_scheduled" "$T/a/agent.log"
ca_start "$T/ca"
renewed=0
while [ "$(date +%s)" -lt "$na" ]; do
  if [ "$(serial_of "$T/a/svid/svid.pem")" != "$first" ]; then renewed=1; break; fi
  sleep 0.3
done
check "renewed after the CA returned, before the old SVID expired" test "$renewed" -eq 1
retries=$(sed -n 's/.*event=svid_rotated .*after_failures=\([0-9]*\).*/\1/p' "$T/a/agent.log" | tail -1)
check "the agent retried while the CA was down (svid_rotated after_failures=${retries:-none})" \
  test "${retries:-0}" -ge 2
check "the identity never expired" bash -c "! grep -q event=identity_expired '$T/a/agent.log'"
check "the renewal was over mTLS" grep -q "event=svid_issued.*credential=mtls" "$T/ca/ca.log"
finish
