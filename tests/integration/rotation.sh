#!/usr/bin/env bash
# With a 20 s TTL the agent rotates at least three times a minute; every
# rotation brings a new serial and a new key, renewed over mTLS.
. "$(dirname "$0")/lib.sh"

TD=example.org
ID=spiffe://$TD/ns/default/sa/rotor
ca_setup "$T/ca" "$TD"
ca_start "$T/ca"
agent_config "$T/a" "$T/ca" "$ID" 20s
agent_start "$T/a"
check "first SVID arrives" wait_file "$T/a/svid/svid.pem" 15

declare -A serials keys
end=$((SECONDS + 60))
while [ $SECONDS -lt $end ]; do
  s=$(serial_of "$T/a/svid/svid.pem" 2>/dev/null || true)
  if [ -n "$s" ] && [ -z "${serials[$s]:-}" ]; then
    serials[$s]=1
    k=$(openssl x509 -in "$T/a/svid/svid.pem" -noout -pubkey | sha256sum | cut -c1-16)
    keys[$k]=1
    echo "     serial $s key $k at ${SECONDS}s"
  fi
  sleep 0.5
done
n=${#serials[@]}
check "at least 3 rotations in a minute ($((n - 1)) seen)" test "$n" -ge 4
check "every SVID has a new key (${#keys[@]} keys for $n SVIDs)" test "${#keys[@]}" -eq "$n"
renewals=$(grep -c "event=svid_issued.*credential=mtls.*spiffe_id=$ID" "$T/ca/ca.log" || true)
check "renewals were made over mTLS per the CA log ($renewals)" test "$renewals" -ge 3
check "the agent logged its rotations" grep -q "event=svid_rotated" "$T/a/agent.log"
# As an application would read them: the key is written before the
# certificate, so a certificate that did not change while the key was
# read goes with that key (a rotation in between: read again).
pair_matches() {
  local i pem key
  for i in 1 2 3 4 5; do
    pem=$(cat "$T/a/svid/svid.pem")
    key=$(openssl pkey -in "$T/a/svid/svid.key" -pubout)
    [ "$pem" = "$(cat "$T/a/svid/svid.pem")" ] || continue
    [ "$key" = "$(openssl x509 -noout -pubkey <<<"$pem")" ]
    return
  done
  return 1
}
check "svid.pem and svid.key still match" pair_matches
finish
