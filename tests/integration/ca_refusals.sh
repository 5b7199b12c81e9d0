#!/usr/bin/env bash
# The CA refuses every bad request with its own status and a precise
# message, logs the caller, and keeps serving good requests afterwards.
# CSRs are made with the openssl CLI; JWTs with tests/tools/mkjwt.py.
. "$(dirname "$0")/lib.sh"
: "${CA_PROBE:?CA_PROBE must point at the ca_probe tool}"
MKJWT="python3 $LY_SOURCE_DIR/tests/tools/mkjwt.py"

TD=example.org
WEB=spiffe://$TD/ns/default/sa/web
ISS=https://kubernetes.default.svc.cluster.local
ca_setup "$T/ca" "$TD"
# Kubernetes service-account tokens, verified against a JWKS file.
$MKJWT keygen --type ec --out "$T/k8s-ec.pem"
$MKJWT keygen --type rsa --out "$T/k8s-rsa.pem"
$MKJWT keygen --type ec --out "$T/stranger.pem"
$MKJWT jwks --out "$T/ca/jwks.json" "$T/k8s-ec.pem:ec1" "$T/k8s-rsa.pem:rsa1"
cat >>"$T/ca/ca.yaml" <<YAML
kubernetes:
  jwks: jwks.json
  issuer: $ISS
  audience: lanyard-ca
YAML
ca_start "$T/ca"

probe() { "$CA_PROBE" --ca "127.0.0.1:$CA_PORT" --bundle "$T/ca/bundle.pem" --td "$TD" "$@"; }
# expect "description" CODE "message substring" probe-args...
expect() {
  local what=$1 code=$2 msg=$3; shift 3
  local out
  out=$(probe "$@" 2>&1 || true)
  if [[ "$out" == "code=$code "* && "$out" == *"$msg"* ]]; then
    ok "$what: $out"
  else
    bad "$what: expected $code '$msg', got: $out"
  fi
}
csr() { # name key san [extra openssl req args...]
  local name=$1 key=$2 san=$3; shift 3
  openssl req -new -key "$key" -subj "/O=test" -addext "subjectAltName=$san" \
    "$@" -outform DER -out "$T/$name.csr" 2>/dev/null
  echo "$T/$name.csr"
}
openssl ecparam -name prime256v1 -genkey -noout -out "$T/ec.key" 2>/dev/null
openssl ecparam -name secp384r1 -genkey -noout -out "$T/ec384.key" 2>/dev/null
openssl genrsa -out "$T/rsa.key" 2048 2>/dev/null
openssl ecparam -name secp521r1 -genkey -noout -out "$T/ec521.key" 2>/dev/null
tok() { "$LANYARD" ca token -c "$T/ca/ca.yaml" --spiffe-id "$1" --ttl "${2:-5m}"; }
JOIN_WEB=$(tok "$WEB")
JOIN_NS=$(tok "spiffe://$TD/ns/default/*")
GOOD=$(csr good "$T/ec.key" "URI:$WEB")

# -- good requests
expect "join token, exact ID" OK "" sign --csr "$GOOD" --join-token "$JOIN_WEB" --out "$T/web.pem"
expect "join token, ID prefix" OK "" sign --csr "$GOOD" --join-token "$JOIN_NS"
expect "P-384 key" OK "" sign --csr "$(csr p384 "$T/ec384.key" "URI:$WEB")" --join-token "$JOIN_WEB"

# -- CSRs
expect "CSR with a bad signature" INVALID_ARGUMENT "bad CSR" \
  sign --csr "$(cp "$GOOD" "$T/tampered.csr"; printf '\x01' | dd of="$T/tampered.csr" bs=1 seek=$(($(stat -c %s "$GOOD") - 5)) conv=notrunc 2>/dev/null; echo "$T/tampered.csr")" --join-token "$JOIN_WEB"
expect "CSR asking for a CA" INVALID_ARGUMENT "bad CSR" \
  sign --csr "$(csr ca "$T/ec.key" "URI:$WEB" -addext "basicConstraints=critical,CA:TRUE")" --join-token "$JOIN_WEB"
expect "CSR with two SANs" INVALID_ARGUMENT "bad CSR" \
  sign --csr "$(csr two "$T/ec.key" "URI:$WEB,URI:spiffe://$TD/ns/default/sa/db")" --join-token "$JOIN_WEB"
expect "CSR with a DNS SAN" INVALID_ARGUMENT "bad CSR" \
  sign --csr "$(csr dns "$T/ec.key" "DNS:web.default.svc")" --join-token "$JOIN_WEB"
expect "CSR with an invalid SPIFFE ID" INVALID_ARGUMENT "bad CSR" \
  sign --csr "$(csr badid "$T/ec.key" "URI:spiffe://$TD/ns/../x")" --join-token "$JOIN_WEB"
expect "CSR with an RSA key" INVALID_ARGUMENT "key" \
  sign --csr "$(csr rsa "$T/rsa.key" "URI:$WEB")" --join-token "$JOIN_WEB"
expect "CSR with a P-521 key" INVALID_ARGUMENT "key" \
  sign --csr "$(csr p521 "$T/ec521.key" "URI:$WEB")" --join-token "$JOIN_WEB"
head -c 300 /dev/urandom >"$T/garbage.csr"
expect "garbage instead of a CSR" INVALID_ARGUMENT "bad CSR" sign --csr "$T/garbage.csr" --join-token "$JOIN_WEB"
expect "foreign trust domain" PERMISSION_DENIED "not in trust domain" \
  sign --csr "$(csr foreign "$T/ec.key" "URI:spiffe://other.org/ns/default/sa/web")" --join-token "$JOIN_WEB"
expect "reserved /lanyard/ ID" PERMISSION_DENIED "reserved" \
  sign --csr "$(csr reserved "$T/ec.key" "URI:spiffe://$TD/lanyard/ca")" --join-token "$(tok "spiffe://$TD/*")"
# The bare trust domain is a signing certificate's ID, never a leaf's
# (X509-SVID 3.1). `ca token` will not mint a token for it; one minted by
# hand with the CA's secret (as a release that allowed it did) gets no
# certificate either, nor any other ID.
NEEDS_PATH="a workload SPIFFE ID needs a path (X509-SVID 3.1)"
rc=0
"$LANYARD" ca token -c "$T/ca/ca.yaml" --spiffe-id "spiffe://$TD" >"$T/token.out" 2>&1 || rc=$?
check "ca token refuses the bare trust domain (exit $rc): $(cat "$T/token.out")" \
  bash -c "[ $rc -eq 2 ] && grep -qF \"'spiffe://$TD': $NEEDS_PATH\" '$T/token.out'"
JOIN_TD=$(python3 - "$T/ca/token.secret" "spiffe://$TD" <<'PY'
import base64, hashlib, hmac, sys, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
secret = base64.urlsafe_b64decode(open(sys.argv[1]).read().strip() + "==")
body = "lyt1.%s.%d" % (b64(sys.argv[2].encode()), time.time() + 300)
print(body + "." + b64(hmac.new(secret, body.encode(), hashlib.sha256).digest()))
PY
)
PATHLESS=$(csr pathless "$T/ec.key" "URI:spiffe://$TD")
expect "CSR for the bare trust domain, with a token for it" INVALID_ARGUMENT \
  "bad CSR: spiffe://$TD: $NEEDS_PATH" sign --csr "$PATHLESS" --join-token "$JOIN_TD"
expect "  and with a token for every ID of the domain" INVALID_ARGUMENT \
  "$NEEDS_PATH" sign --csr "$PATHLESS" --join-token "$(tok "spiffe://$TD/*")"
expect "a token for the bare trust domain is no token" UNAUTHENTICATED \
  "malformed token" sign --csr "$GOOD" --join-token "$JOIN_TD"
expect "TTL below the minimum" INVALID_ARGUMENT "minimum" sign --csr "$GOOD" --join-token "$JOIN_WEB" --ttl 1

# -- join tokens
DB=$(csr db "$T/ec.key" "URI:spiffe://$TD/ns/default/sa/db")
expect "token for another ID" PERMISSION_DENIED "join token is for" sign --csr "$DB" --join-token "$JOIN_WEB"
expect "prefix token outside its prefix" PERMISSION_DENIED "join token is for" \
  sign --csr "$(csr other "$T/ec.key" "URI:spiffe://$TD/ns/other/sa/x")" --join-token "$JOIN_NS"
SHORT=$(tok "$WEB" 1s)
sleep 2
expect "expired token" UNAUTHENTICATED "expired" sign --csr "$GOOD" --join-token "$SHORT"
# change one character of the MAC (to one it is not)
mid=$((${#JOIN_WEB} - 10))
c=${JOIN_WEB:$mid:1}
TAMPERED=${JOIN_WEB:0:$mid}$([ "$c" = A ] && echo B || echo A)${JOIN_WEB:$((mid + 1))}
expect "tampered token" UNAUTHENTICATED "bad token signature" sign --csr "$GOOD" --join-token "$TAMPERED"
"$LANYARD" ca init --trust-domain "$TD" --dir "$T/other-ca" >/dev/null
expect "token from another CA" UNAUTHENTICATED "join token rejected" \
  sign --csr "$GOOD" --join-token "$("$LANYARD" ca token -c "$T/other-ca/ca.yaml" --spiffe-id "$WEB")"
expect "no credential at all" UNAUTHENTICATED "no credential" sign --csr "$GOOD"

# -- Kubernetes service-account JWTs
jwt() { $MKJWT sign --iss "$ISS" --aud lanyard-ca --ns default --sa web --exp-in 600 "$@"; }
expect "k8s JWT, ES256" OK "" sign --csr "$GOOD" --k8s-token "$(jwt --key "$T/k8s-ec.pem" --kid ec1 --alg ES256)"
expect "k8s JWT, RS256" OK "" sign --csr "$GOOD" --k8s-token "$(jwt --key "$T/k8s-rsa.pem" --kid rsa1 --alg RS256)"
expect "k8s JWT, wrong audience" UNAUTHENTICATED "audience" \
  sign --csr "$GOOD" --k8s-token "$($MKJWT sign --iss "$ISS" --aud istio-ca --ns default --sa web --exp-in 600 --key "$T/k8s-ec.pem" --kid ec1 --alg ES256)"
expect "k8s JWT, wrong issuer" UNAUTHENTICATED "issuer" \
  sign --csr "$GOOD" --k8s-token "$($MKJWT sign --iss https://evil --aud lanyard-ca --ns default --sa web --exp-in 600 --key "$T/k8s-ec.pem" --kid ec1 --alg ES256)"
expect "k8s JWT, signed by a key not in the JWKS" UNAUTHENTICATED "signature" \
  sign --csr "$GOOD" --k8s-token "$(jwt --key "$T/stranger.pem" --kid ec1 --alg ES256)"
expect "k8s JWT, expired" UNAUTHENTICATED "expired" \
  sign --csr "$GOOD" --k8s-token "$($MKJWT sign --iss "$ISS" --aud lanyard-ca --ns default --sa web --exp-in -600 --key "$T/k8s-ec.pem" --kid ec1 --alg ES256)"
expect "k8s JWT for another service account" PERMISSION_DENIED "Kubernetes token is for" \
  sign --csr "$DB" --k8s-token "$(jwt --key "$T/k8s-ec.pem" --kid ec1 --alg ES256)"

# -- renewal over mTLS with the current SVID
openssl pkey -in "$T/ec.key" -out "$T/web.key" 2>/dev/null
expect "renewal with the current SVID" OK "" --cert "$T/web.pem" --key "$T/web.key" sign --csr "$GOOD"
expect "renewal asking for another ID" PERMISSION_DENIED "renewal must keep the identity" \
  --cert "$T/web.pem" --key "$T/web.key" sign --csr "$DB"

# -- frames
expect "frame announcing 2 GiB" RESOURCE_EXHAUSTED "frame too large" raw 7fffffff
expect "malformed frame" INVALID_ARGUMENT "malformed frame" raw 00000004ffffffff
expect "unknown method" UNIMPLEMENTED "unknown method" raw 0000000612044e6f7065
head -c 4096 /dev/urandom >"$T/noise"
(exec 3<>"/dev/tcp/127.0.0.1/$CA_PORT"; cat "$T/noise" >&3) 2>/dev/null || true

# -- still serving, and every refusal logged with the caller
expect "good requests still served after all that" OK "" sign --csr "$GOOD" --join-token "$JOIN_WEB"
check "refusals are logged with the caller and the reason" \
  grep -q 'event=sign_refused peer=127.0.0.1:[0-9]* .*reason=' "$T/ca/ca.log"
check "no token in the CA log" bash -c "! grep -qF '$JOIN_WEB' '$T/ca/ca.log'"
check "the CA is still running" kill -0 "$CA_PID"

# -- a flood of refusals (a fleet retrying with a bad token) is logged
# within the limiter's budget, and every refusal is accounted for: the
# lines written plus the counts they (and the summary at the stop) say
# were left out equal the refusals the CA counted.
for _ in $(seq 1 80); do probe sign --csr "$GOOD" --join-token "$JOIN_NS.x" >/dev/null 2>&1 || true; done
admin=$(sed -n 's/^admin: *//p' "$T/ca/ca.yaml" | tr -d '"')
refused=$(curl -s "http://$admin/metrics" |
  awk '/^lanyard_ca_sign_requests_total\{/ && !/result="ok"/ {n += $NF} END {print n + 0}')
ca_stop
lines=$(grep -c 'event=sign_refused ' "$T/ca/ca.log" || true)
left_out=$(grep -o 'event=sign_refused[_a-z]* .*suppressed=[0-9]*' "$T/ca/ca.log" |
  sed 's/.*suppressed=//' | awk '{n += $1} END {print n + 0}')
check "a flood of refusals is not logged line by line ($lines lines for $refused refusals)" \
  [ "$lines" -lt "$refused" ]
check "  lines ($lines) + left out ($left_out) = the CA's count of refusals ($refused)" \
  [ $((lines + left_out)) -eq "$refused" ]
finish
