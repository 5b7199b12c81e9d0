#!/usr/bin/env bash
# The CA in Kubernetes, against a local HTTPS stand-in for the API server
# (tests/tools/fake_apiserver.py): it fetches the cluster's JWKS with the
# given CA file and bearer token, refetches when a token names an unknown
# key id (rate-limited), follows key rotation, keeps the last good key set
# when a fetch fails, and keeps the trust-bundle ConfigMap current.
. "$(dirname "$0")/lib.sh"
: "${CA_PROBE:?CA_PROBE must point at the ca_probe tool}"
MKJWT="python3 $LY_SOURCE_DIR/tests/tools/mkjwt.py"

TD=example.org
WEB=spiffe://$TD/ns/default/sa/web
ISS=https://kubernetes.default.svc.cluster.local
API=$T/api
mkdir -p "$API"

# -- the API server's own CA and serving certificate (name: localhost), RSA
# like kubeadm's
openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
  -subj "/CN=kube-ca" -keyout "$API/ca.key" -out "$API/ca.crt" 2>/dev/null
openssl req -new -newkey rsa:2048 -nodes \
  -subj "/CN=kube-apiserver" -keyout "$API/server.key" -out "$API/server.csr" 2>/dev/null
openssl x509 -req -in "$API/server.csr" -CA "$API/ca.crt" -CAkey "$API/ca.key" \
  -CAcreateserial -days 2 -extfile <(printf 'subjectAltName=DNS:localhost,DNS:kubernetes.default.svc\n') \
  -out "$API/server.crt" 2>/dev/null
echo "sa-token-$RANDOM$RANDOM" >"$API/sa.token"

# -- the cluster's service-account signing keys: ec1 now, ec2 after rotation
$MKJWT keygen --type ec --out "$T/k8s-ec1.pem"
$MKJWT keygen --type rsa --out "$T/k8s-rsa2.pem"
$MKJWT jwks --out "$API/jwks.json" "$T/k8s-ec1.pem:ec1"

python3 "$LY_SOURCE_DIR/tests/tools/fake_apiserver.py" --cert "$API/server.crt" \
  --key "$API/server.key" --dir "$API" --token "$(cat "$API/sa.token")" \
  --port-file "$API/port" >"$API/server.log" 2>&1 &
PEERS+=("$!")
wait_file "$API/port" 10 || { bad "the fake API server did not start"; finish; }
APORT=$(cat "$API/port")

ca_setup "$T/ca" "$TD"
cat >>"$T/ca/ca.yaml" <<YAML
kubernetes:
  jwks_url: https://localhost:$APORT/openid/v1/jwks
  issuer: $ISS
  ca_file: $API/ca.crt
  token_file: $API/sa.token
  bundle_configmap: lanyard/lanyard-trust-bundle
  bundle_namespace_selector: lanyard.io/inject=enabled
YAML
echo '{"web": {"lanyard.io/inject": "enabled"}, "api": {"lanyard.io/inject": "enabled"},
  "other": {"lanyard.io/inject": "disabled"}}' >"$API/namespaces.json"
"$LANYARD" ca serve -c "$T/ca/ca.yaml" --check >"$T/check.out" 2>&1 || true
check "ca serve --check accepts jwks_url: $(cat "$T/check.out")" grep -q ": OK" "$T/check.out"
ca_start "$T/ca"

CA_DIR=$T/ca
probe() { "$CA_PROBE" --ca "127.0.0.1:$CA_PORT" --bundle "$CA_DIR/bundle.pem" --td "$TD" "$@" 2>&1 || true; }
openssl ecparam -name prime256v1 -genkey -noout -out "$T/ec.key" 2>/dev/null
openssl req -new -key "$T/ec.key" -subj "/O=test" -addext "subjectAltName=URI:$WEB" \
  -outform DER -out "$T/web.csr" 2>/dev/null
jwt() { # key kid alg
  $MKJWT sign --iss "$ISS" --aud lanyard-ca --ns default --sa web --exp-in 600 --key "$1" --kid "$2" --alg "$3"
}
sign() { probe sign --csr "$T/web.csr" --k8s-token "$1"; }
is() { [[ "$1" == $2 ]]; } # is TEXT GLOB
fetches() { grep -c '^GET /openid/v1/jwks' "$API/requests.log" 2>/dev/null || echo 0; }
wait_fetches() { # until more than N fetches were answered and applied
  local _
  for _ in $(seq 1 100); do
    [ "$(fetches)" -gt "$1" ] && sleep 0.3 && return 0
    sleep 0.1
  done
  return 1
}
EC1=$(jwt "$T/k8s-ec1.pem" ec1 ES256)
RSA2=$(jwt "$T/k8s-rsa2.pem" rsa2 RS256)

# -- the first fetch
check "the CA fetched the JWKS at start" wait_log "$T/ca/ca.log" "event=jwks_fetched" 10
check "with the service account's bearer token" grep -q "^GET /openid/v1/jwks auth=ok" "$API/requests.log"
out=$(sign "$EC1")
check "a token signed by a key of the fetched set gets a certificate: $out" \
  test "${out%% *}" = code=OK

# -- rotation: the cluster adds rsa2; a token naming it makes the CA refetch
n=$(fetches)
$MKJWT jwks --out "$API/jwks.json.new" "$T/k8s-ec1.pem:ec1" "$T/k8s-rsa2.pem:rsa2"
mv "$API/jwks.json.new" "$API/jwks.json"
out=$(sign "$RSA2")
check "a token naming an unknown kid is told to retry: $out" \
  is "$out" "code=UNAVAILABLE *unknown key id*"
check "  and the CA refetched the JWKS" wait_fetches "$n"
out=$(sign "$RSA2")
check "  the retry gets a certificate: $out" test "${out%% *}" = code=OK
check "the refetch is logged" grep -q "event=jwks_refetch" "$T/ca/ca.log"

# -- a made-up kid, again and again: at most one more fetch per 10 s
n=$(fetches)
BOGUS=$(jwt "$T/k8s-ec1.pem" nosuchkid ES256)
for _ in 1 2 3 4 5 6; do sign "$BOGUS" >/dev/null; done
sleep 0.5
check "six tokens with an unknown kid cause at most one fetch ($n -> $(fetches))" \
  test "$(fetches)" -le $((n + 1))
out=$(sign "$BOGUS")
check "  and, rate-limited, the token is refused for good: $out" \
  is "$out" "code=UNAUTHENTICATED *unknown key id*"

# -- rotation completes: ec1 is retired; after a refresh its tokens fail
n=$(fetches)
$MKJWT jwks --out "$API/jwks.json.new" "$T/k8s-rsa2.pem:rsa2"
mv "$API/jwks.json.new" "$API/jwks.json"
kill -HUP "$CA_PID"
check "SIGHUP refetches the JWKS" wait_fetches "$n"
out=$(sign "$EC1")
check "a token of the retired key is refused: $out" \
  is "$out" "code=UNA*unknown key id*"

# -- the API server fails: the last good set stays
n=$(fetches)
touch "$API/fail"
kill -HUP "$CA_PID"
check "a failing fetch is logged" wait_log "$T/ca/ca.log" \
  'event=jwks_fetch_failed .*reason="HTTP status 500" keeping="the last good key set"' 10
out=$(sign "$RSA2")
check "  and the last good key set still verifies tokens: $out" test "${out%% *}" = code=OK
echo '{"keys": "not a list"' >"$API/jwks.json"
rm -f "$API/fail"
n=$(fetches)
kill -HUP "$CA_PID"
wait_fetches "$n" || true
out=$(sign "$RSA2")
check "  a malformed JWKS does not replace it either: $out" test "${out%% *}" = code=OK
check "no bearer token in the CA log" bash -c "! grep -qF '$(cat "$API/sa.token")' '$T/ca/ca.log'"

# -- the trust-bundle ConfigMap: created, then kept current
CM=$API/configmaps/lanyard/lanyard-trust-bundle/bundle.pem
check "the CA created the bundle ConfigMap" wait_file "$CM" 10
check "  with the CA's bundle" cmp -s "$CM" "$T/ca/bundle.pem"
check "  by POST after the PATCH found none" \
  grep -q "^POST /api/v1/namespaces/lanyard/configmaps auth=ok" "$API/requests.log"
"$LANYARD" ca init --trust-domain "$TD" --dir "$T/next" >/dev/null
cat "$T/ca/bundle.pem" "$T/next/bundle.pem" >"$T/bundle.new"
cp "$T/bundle.new" "$T/ca/bundle.pem"
kill -HUP "$CA_PID"
changed() { cmp -s "$CM" "$T/bundle.new"; }
for _ in $(seq 1 100); do changed && break; sleep 0.1; done
check "a changed bundle (a new root) reaches the ConfigMap" changed
check "  by PATCH" grep -q "^PATCH /api/v1/namespaces/lanyard/configmaps/lanyard-trust-bundle auth=ok" "$API/requests.log"
cmdir=$API/configmaps
in_ns() { cmp -s "$cmdir/$1/lanyard-trust-bundle/bundle.pem" "$T/bundle.new"; }
check "  and into every namespace labelled lanyard.io/inject=enabled" \
  bash -c "for _ in \$(seq 1 100); do cmp -s '$cmdir/web/lanyard-trust-bundle/bundle.pem' '$T/bundle.new' && cmp -s '$cmdir/api/lanyard-trust-bundle/bundle.pem' '$T/bundle.new' && exit 0; sleep 0.1; done; exit 1"
check "  but not into the others" test ! -e "$cmdir/other"
echo '{"web": {"lanyard.io/inject": "enabled"}, "api": {"lanyard.io/inject": "enabled"},
  "other": {"lanyard.io/inject": "enabled"}}' >"$API/namespaces.json"
kill -HUP "$CA_PID"
for _ in $(seq 1 100); do in_ns other && break; sleep 0.1; done
check "a namespace labelled later gets it too (after SIGHUP, or the next scan)" in_ns other

# -- an API server the CA file does not vouch for: no keys, and it says why
ca_setup "$T/ca2" "$TD"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=other" -keyout "$T/other.key" -out "$T/other.crt" 2>/dev/null
cat >>"$T/ca2/ca.yaml" <<YAML
kubernetes:
  jwks_url: https://localhost:$APORT/openid/v1/jwks
  issuer: $ISS
  ca_file: $T/other.crt
  token_file: $API/sa.token
YAML
ca_start "$T/ca2"
CA_DIR=$T/ca2
check "an untrusted API server certificate is refused" wait_log "$T/ca2/ca.log" \
  'event=jwks_fetch_failed .*reason="server certificate not signed by the CA file"' 10
out=$(sign "$RSA2")
check "  and Kubernetes tokens wait for keys: $out" \
  is "$out" "code=UNAVAILABLE *not been fetched yet*"

# -- a token the API server does not accept: the log says what to grant
ca_setup "$T/ca4" "$TD"
echo "not-the-token" >"$T/wrong.token"
cat >>"$T/ca4/ca.yaml" <<YAML
kubernetes:
  jwks_url: https://localhost:$APORT/openid/v1/jwks
  issuer: $ISS
  ca_file: $API/ca.crt
  token_file: $T/wrong.token
YAML
ca_start "$T/ca4"
check "a refused bearer token names the role to bind" wait_log "$T/ca4/ca.log" \
  'event=jwks_fetch_failed .*reason="HTTP status 401 .*system:service-account-issuer-discovery' 10

# -- the right CA, but a name the server certificate does not carry
ca_setup "$T/ca3" "$TD"
cat >>"$T/ca3/ca.yaml" <<YAML
kubernetes:
  jwks_url: https://127.0.0.1:$APORT/openid/v1/jwks
  issuer: $ISS
  ca_file: $API/ca.crt
  token_file: $API/sa.token
YAML
ca_start "$T/ca3"
check "a server certificate for another name is refused" wait_log "$T/ca3/ca.log" \
  'event=jwks_fetch_failed .*reason="server certificate is for another name"' 10
finish
