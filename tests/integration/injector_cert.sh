#!/usr/bin/env bash
# `lanyard injector`'s serving certificate from the Lanyard CA: an SVID
# with the DNS SAN lanyard-injector.lanyard.svc, which a client verifies by
# host name against the trust anchors (the webhook's caBundle), renewed
# and swapped without a restart; and the CA's dns_names rule, which
# refuses DNS names not listed for the ID.
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null && command -v openssl >/dev/null || {
  echo "skip: needs curl and openssl"
  exit 77
}
TD=td.test
HOST=lanyard-injector.lanyard.svc
INJ_ID=spiffe://$TD/ns/lanyard/sa/lanyard-injector
REVIEW=$LY_TESTDATA/k8s/admission/01-pod-create-deployment-nginx-annotated.json

ca_setup "$T/ca" "$TD"

# dns_names is checked at load, with file:line:column.
cp "$T/ca/ca.yaml" "$T/ca/bad.yaml"
cat >>"$T/ca/bad.yaml" <<YAML
dns_names:
  $INJ_ID: [lanyard-injector.lanyard.svc, "*.lanyard.svc"]
  spiffe://$TD: [x.svc]
YAML
if "$LANYARD" ca serve -c "$T/ca/bad.yaml" >"$T/bad.out" 2>&1; then
  bad "a CA config with a bad dns_names entry is refused"
else
  line=$(grep -n '\*\.lanyard' "$T/ca/bad.yaml" | cut -d: -f1)
  check "a wildcard DNS name is refused at its line and column" \
    grep -qE "bad.yaml:$line:[0-9]+: .*not a DNS host name" "$T/bad.out"
  line=$(grep -n "spiffe://$TD: " "$T/ca/bad.yaml" | cut -d: -f1)
  check "a trust domain ID as a dns_names key is refused at its line" \
    grep -qE "bad.yaml:$line:3: dns_names: 'spiffe://$TD'" "$T/bad.out"
fi

cat >>"$T/ca/ca.yaml" <<YAML
dns_names:
  $INJ_ID: [lanyard-injector.lanyard.svc]
YAML
ca_start "$T/ca"
"$LANYARD" ca token -c "$T/ca/ca.yaml" --spiffe-id "$INJ_ID" --ttl 10m >"$T/join.token"

PORT=$(free_port)
"$LANYARD" injector --listen "127.0.0.1:$PORT" --trust-domain "$TD" \
  --ca-addr "127.0.0.1:$CA_PORT" --bundle "$T/ca/bundle.pem" \
  --join-token-file "$T/join.token" --lanyard-namespace lanyard \
  --service lanyard-injector --cert-ttl 10s --mode permissive \
  >"$T/injector.log" 2>&1 &
INJ_PID=$!
PIDS+=("$INJ_PID")
wait_log "$T/injector.log" "injector_listening" 20 || bad "the injector listens"

URL=https://$HOST:$PORT/inject
review() { # -> HTTP status; body in $T/resp.json
  curl -sS --cacert "$T/ca/bundle.pem" --resolve "$HOST:$PORT:127.0.0.1" \
    -H 'Content-Type: application/json' --data-binary @"$REVIEW" \
    -o "$T/resp.json" -w '%{http_code}' "$URL" 2>>"$T/curl.err" || true
}
served() { # the serving chain, PEM, into $1
  openssl s_client -connect "127.0.0.1:$PORT" -servername "$HOST" -showcerts \
    </dev/null 2>/dev/null |
    awk '/BEGIN CERT/{p=1} p{print} /END CERT/{p=0}' >"$1"
}

check "a review over HTTPS verified by host name against the bundle" \
  test "$(review)" = 200
check "the review is answered with a patch" grep -q '"patch"' "$T/resp.json"
check "--mode is a default annotation (permissive sidecars)" \
  sh -c "grep -o '\"patch\": *\"[^\"]*\"' '$T/resp.json' | cut -d'\"' -f4 | base64 -d | grep -q permissive"
served "$T/chain1.pem"
openssl x509 -in "$T/chain1.pem" -noout -ext subjectAltName >"$T/san1.txt" 2>/dev/null
check "the serving certificate has the DNS SAN" grep -q "DNS:$HOST" "$T/san1.txt"
check "and the injector's SPIFFE ID" grep -q "URI:$INJ_ID" "$T/san1.txt"
check "svid verify accepts it (an X509-SVID with a DNS SAN)" \
  "$LANYARD" svid verify --bundle "$T/ca/bundle.pem" --id "$INJ_ID" "$T/chain1.pem"
code=$(curl -sS --cacert "$T/ca/bundle.pem" --resolve "other.lanyard.svc:$PORT:127.0.0.1" \
  --data-binary @"$REVIEW" -o /dev/null -w '%{http_code}' \
  "https://other.lanyard.svc:$PORT/inject" 2>/dev/null || true)
check "another host name does not verify" test "$code" = 000

# Renewal: the serial changes without a restart, and reviews keep working
# all along.
S1=$(openssl x509 -in "$T/chain1.pem" -noout -serial)
S2=$S1
fails=0
for _ in $(seq 1 300); do
  [ "$(review)" = 200 ] || fails=$((fails + 1))
  served "$T/chain2.pem"
  S2=$(openssl x509 -in "$T/chain2.pem" -noout -serial 2>/dev/null || echo "$S1")
  [ "$S2" != "$S1" ] && break
  sleep 0.1
done
check "the serving certificate is renewed (new serial)" test "$S2" != "$S1"
check "reviews succeed throughout the renewal" test "$fails" = 0
check "without a restart" kill -0 "$INJ_PID"
check "the renewal is logged" grep -q injector_cert_installed "$T/injector.log"
check "after the renewal, still verified by host name" test "$(review)" = 200

# The CA refuses a DNS name not allowed for the ID ...
"$LANYARD" injector --listen 127.0.0.1:0 --trust-domain "$TD" \
  --ca-addr "127.0.0.1:$CA_PORT" --bundle "$T/ca/bundle.pem" \
  --join-token-file "$T/join.token" --service evil \
  >"$T/injector-evil.log" 2>&1 &
EVIL=$!
check "a DNS name not in dns_names is refused" \
  wait_log "$T/ca/ca.log" "DNS name 'evil.lanyard.svc' is not allowed for $INJ_ID" 20
check "with PERMISSION_DENIED, to the injector too" \
  wait_log "$T/injector-evil.log" "PERMISSION_DENIED.*evil.lanyard.svc" 20
kill "$EVIL"
wait "$EVIL" 2>/dev/null || true

# ... and a DNS SAN from an ID with no dns_names entry.
OTHER=spiffe://$TD/ns/lanyard/sa/other
"$LANYARD" ca token -c "$T/ca/ca.yaml" --spiffe-id "$OTHER" --ttl 10m >"$T/other.token"
"$LANYARD" injector --listen 127.0.0.1:0 --trust-domain "$TD" \
  --ca-addr "127.0.0.1:$CA_PORT" --bundle "$T/ca/bundle.pem" \
  --join-token-file "$T/other.token" --service-account other \
  >"$T/injector-other.log" 2>&1 &
OTHER_PID=$!
check "a DNS SAN for an ID without dns_names is refused" \
  wait_log "$T/ca/ca.log" "DNS name '$HOST' is not allowed for $OTHER" 20
kill "$OTHER_PID"
wait "$OTHER_PID" 2>/dev/null || true
check "the refused injectors never listened" \
  sh -c "! grep -q injector_listening '$T/injector-evil.log' '$T/injector-other.log'"

# The data path keeps accepting an SVID with a DNS SAN: a server (openssl
# s_server) presents one, signed by the CA's intermediate as the CA would,
# and an agent's client listener verifies it and forwards a request.
API=spiffe://$TD/ns/default/sa/api
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$T/api.key" -out "$T/api.csr" -subj "/O=lanyard" 2>/dev/null
cat >"$T/api.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
subjectAltName=URI:$API,DNS:api.default.svc
EXT
openssl x509 -req -in "$T/api.csr" -CA "$T/ca/signing.pem" -CAkey "$T/ca/signing.key" \
  -CAcreateserial -days 1 -extfile "$T/api.ext" -out "$T/api.pem" 2>/dev/null
check "svid verify accepts a DNS SAN next to the URI SAN" \
  "$LANYARD" svid verify --bundle "$T/ca/bundle.pem" --id "$API" --untrusted "$T/ca/signing.pem" "$T/api.pem"
SPORT=$(free_port)
openssl s_server -accept "$SPORT" -cert "$T/api.pem" -key "$T/api.key" \
  -cert_chain "$T/ca/signing.pem" -www -quiet >"$T/s_server.log" 2>&1 &
PEERS+=($!)
wait_listen "$SPORT" 10
CPORT=$(free_port)
WPORT=$(free_port)
agent_yaml "$T/web" "spiffe://$TD/ns/default/sa/web" "$T/ca"
cat >>"$T/web/agent.yaml" <<YAML
listeners:
  - name: api
    mode: client
    listen: 127.0.0.1:$CPORT
    connect: 127.0.0.1:$SPORT
    expect: $API
  - name: wrong
    mode: client
    listen: 127.0.0.1:$WPORT
    connect: 127.0.0.1:$SPORT
    expect: spiffe://$TD/ns/default/sa/other
YAML
check "the client agent gets its SVID" agent_run "$T/web"
wait_listen "$CPORT" 10
code=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$CPORT/" 2>>"$T/curl.err" || true)
check "the data path accepts the peer's SVID with a DNS SAN" test "$code" = 200
code=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$WPORT/" 2>/dev/null || true)
check "  (and still checks its SPIFFE ID: another expected ID fails)" test "$code" != 200

finish
