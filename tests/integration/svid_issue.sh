#!/usr/bin/env bash
# A CA and an agent on loopback: the SVID the agent writes out is a proper
# X.509-SVID, checked with OpenSSL (an independent X.509 implementation).
. "$(dirname "$0")/lib.sh"

TD=example.org
ID=spiffe://$TD/ns/default/sa/web

"$LANYARD" version >"$T/version"
check "version names the wolfSSL release" grep -qE "^wolfssl [0-9]+\.[0-9]+" "$T/version"
if [ "$(uname -m)" = x86_64 ]; then
  check "AES-NI and Intel assembly compiled in" \
    grep -qzE "aesni yes.*intel_asm yes.*sp_asm yes" "$T/version"
fi

ca_setup "$T/ca" "$TD"

check "ca init refuses to overwrite an existing CA" \
  bash -c "! '$LANYARD' ca init --trust-domain $TD --dir '$T/ca' 2>'$T/overwrite.err'"
check "  and says why" grep -q "already exists" "$T/overwrite.err"
check "key files are 0600" \
  test "$(stat -c %a "$T/ca/root.key") $(stat -c %a "$T/ca/signing.key") $(stat -c %a "$T/ca/token.secret")" = "600 600 600"
check "ca serve --check accepts the generated config" \
  "$LANYARD" ca serve -c "$T/ca/ca.yaml" --check
check "the intermediate chains to the root (openssl)" \
  openssl verify -CAfile "$T/ca/bundle.pem" "$T/ca/signing.pem"

ca_start "$T/ca"
agent_config "$T/a" "$T/ca" "$ID" 5m
check "agent --check accepts its config" "$LANYARD" agent -c "$T/a/agent.yaml" --check
agent_start "$T/a"
check "agent writes its SVID" wait_file "$T/a/svid/svid.pem" 15

svid=$T/a/svid/svid.pem
check "SVID verifies: openssl verify -CAfile bundle.pem -untrusted signing.pem" \
  openssl verify -CAfile "$T/a/svid/bundle.pem" -untrusted "$T/ca/signing.pem" "$svid"
san=$(openssl x509 -in "$svid" -noout -ext subjectAltName | tail -n +2 | tr -d ' ')
check "exactly one SAN, the SPIFFE ID ($san)" test "$san" = "URI:$ID"
eku=$(openssl x509 -in "$svid" -noout -ext extendedKeyUsage | tail -n +2 | sed 's/^ *//')
check "EKU serverAuth + clientAuth ($eku)" \
  test "$eku" = "TLS Web Server Authentication, TLS Web Client Authentication"
bc=$(openssl x509 -in "$svid" -noout -ext basicConstraints | tr -d ' \n')
check "basicConstraints critical CA:FALSE ($bc)" test "$bc" = "X509v3BasicConstraints:criticalCA:FALSE"
ku=$(openssl x509 -in "$svid" -noout -ext keyUsage | tail -n +2 | sed 's/^ *//')
check "key usage is Digital Signature only ($ku)" test "$ku" = "Digital Signature"
nb=$(date -d "$(openssl x509 -in "$svid" -noout -startdate | cut -d= -f2)" +%s)
na=$(date -d "$(openssl x509 -in "$svid" -noout -enddate | cut -d= -f2)" +%s)
issued=$(date -r "$svid" +%s)
# not-before is backdated 10 s for clock skew; not-after is issue time + TTL
check "lifetime is the configured TTL (300 s) plus 10 s backdating ($((na - nb)))" \
  test $((na - nb)) -eq 310
check "not-after is about issue time + TTL" test $((na - issued)) -le 300 -a $((na - issued)) -ge 295
check "svid.key is 0600" test "$(stat -c %a "$T/a/svid/svid.key")" = 600
check "svid.key matches the SVID" \
  test "$(openssl pkey -in "$T/a/svid/svid.key" -pubout)" = "$(openssl x509 -in "$svid" -noout -pubkey)"
check "key is ECDSA P-256" bash -c "openssl pkey -in '$T/a/svid/svid.key' -noout -text | grep -q 'prime256v1\|P-256'"
check "chain file carries the intermediate" test "$(grep -c BEGIN "$svid")" -eq 2
check "the CA logged the issuance with a join token" \
  grep -q "event=svid_issued.*credential=join_token.*spiffe_id=$ID" "$T/ca/ca.log"
check "no key material in the logs" \
  bash -c "! grep -q 'PRIVATE KEY' '$T/ca/ca.log' '$T/a/agent.log'"
check "no join token in the logs" \
  bash -c "! grep -qF \"\$(cat '$T/a/join.token')\" '$T/ca/ca.log' '$T/a/agent.log'"
finish
