#!/usr/bin/env bash
# `lanyard svid verify`: verdicts, reasons and exit codes, on go-spiffe's
# X.509-SVID cases ($LY_TESTDATA/x509-svid), on chains OpenSSL makes (with
# a name-constrained root, and OpenSSL's own verdict beside Lanyard's), and
# on the SVID a live agent writes out.
. "$(dirname "$0")/lib.sh"

D=${LY_TESTDATA:-$(cd "$(dirname "$0")/../data" && pwd)}/x509-svid

# expect WHAT EXIT REGEX ARGS...: `lanyard svid verify ARGS` exits EXIT and
# prints one line matching REGEX (none when REGEX is empty).
expect() {
  local what=$1 want=$2 re=$3
  shift 3
  local out rc=0
  out=$("$LANYARD" svid verify "$@" 2>"$T/stderr") || rc=$?
  if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$T/stderr"; then
    bad "$what: sanitizer report: $(head -c 600 "$T/stderr")"
  elif [ "$rc" -ne "$want" ]; then
    bad "$what: exit $rc, not $want: $out $(head -c 300 "$T/stderr")"
  elif [ -n "$re" ] && ! [[ $out =~ $re ]]; then
    bad "$what: '$out' does not match /$re/"
  elif [ -z "$re" ] && [ -n "$out" ]; then
    bad "$what: unexpected output '$out'"
  else
    ok "$what${out:+ ($out)}"
  fi
}

nth_cert() { awk -v n="$2" '/-----BEGIN CERTIFICATE-----/ { i++ } i == n' "$1"; }
serial_hex() { serial_of "$1" | tr 'A-F' 'a-f' | sed 's/^\(00\)*//'; }

# ---- go-spiffe's cases ------------------------------------------------------
# The good leaf is valid 2020-03-24 14:07:30 to 15:07:40 UTC; its signing
# intermediate, taken as the trust anchor, from 14:05:03.
good=$D/good-leaf-and-intermediate.pem
nth_cert "$good" 2 >"$T/inter.pem"
at=2020-03-24T14:30:00Z
serial=$(serial_hex "$good")

expect "good SVID at a time inside its validity" 0 \
  "^OK spiffe://example\.org/workload-1 serial=$serial not_after=2020-03-24T15:07:40Z$" \
  --bundle "$T/inter.pem" --at "$at" "$good"
expect "--at as unix seconds" 0 "^OK spiffe://example\.org/workload-1 " \
  --bundle "$T/inter.pem" --at 1585060200 "$good"
expect "--at with a UTC offset" 0 "^OK " \
  --bundle "$T/inter.pem" --at 2020-03-24T15:30:00.5+01:00 "$good"
expect "good SVID today: expired" 1 "^REJECTED expired: certificate has expired$" \
  --bundle "$T/inter.pem" "$good"
expect "good SVID before its not-before" 1 \
  "^REJECTED expired: certificate is not yet valid$" \
  --bundle "$T/inter.pem" --at 2020-03-24T14:06:00Z "$good"
expect "--id, --trust-domain, --key, --eku all satisfied" 0 "^OK " \
  --bundle "$T/inter.pem" --at "$at" --id spiffe://example.org/workload-1 \
  --trust-domain example.org --key "$D/key-pkcs8-ecdsa.pem" \
  --eku serverAuth --eku clientAuth "$good"
expect "--id of another workload" 1 \
  "^REJECTED bad_identity: SPIFFE ID spiffe://example\.org/workload-1 is not the expected spiffe://example\.org/other$" \
  --bundle "$T/inter.pem" --at "$at" --id spiffe://example.org/other "$good"
expect "--trust-domain of another domain" 1 \
  "^REJECTED bad_identity: SPIFFE ID not in trust domain$" \
  --bundle "$T/inter.pem" --at "$at" --trust-domain other.org "$good"
expect "--key that is not the leaf's" 1 \
  "^REJECTED bad_identity: key does not match the leaf$" \
  --bundle "$T/inter.pem" --at "$at" --key "$D/key-pkcs8-rsa.pem" "$good"
expect "--chain-only on an SVID" 0 "^OK spiffe://example\.org/workload-1 " \
  --chain-only --bundle "$T/inter.pem" --at "$at" "$good"

# The wrong-* cases, with the reasons EXPECTED.txt gives ("signing cert" is
# spelled out in Lanyard's reasons). They are self-issued and rootless: a
# leaf-only case is judged against the good intermediate (its leaf rules
# fail first, whatever the chain), a two-certificate case against its own
# second certificate.
n_wrong=0
while IFS= read -r line; do
  case $line in wrong-*) ;; *) continue ;; esac
  file=${line%% |*}
  reason=${line#*reject: }
  reason=${reason/signing cert/signing certificate}
  if [ "$(grep -c -- '-----BEGIN CERTIFICATE-----' "$D/$file")" -ge 2 ]; then
    nth_cert "$D/$file" 2 >"$T/anchor.pem"
  else
    cp "$T/inter.pem" "$T/anchor.pem"
  fi
  expect "$file rejected: $reason" 1 "^REJECTED [a-z_]+: $reason$" \
    --bundle "$T/anchor.pem" --at 2020-04-01T00:00:00Z "$D/$file"
  n_wrong=$((n_wrong + 1))
done <"$D/EXPECTED.txt"
check "EXPECTED.txt has the seven wrong-* cases ($n_wrong)" test "$n_wrong" -eq 7

expect "malformed certificate: a verdict" 1 \
  "^REJECTED protocol: malformed certificate$" \
  --bundle "$T/inter.pem" "$D/corrupt-cert.pem"
expect "a bundle that is not PEM: unreadable input" 2 "" \
  --bundle "$D/not-pem" "$good"
expect "a certificate file with a key only" 2 "" \
  --bundle "$T/inter.pem" "$D/key-pkcs8-rsa.pem"
expect "an unparsable --key" 2 "" \
  --bundle "$T/inter.pem" --key "$D/corrupt-key.pem" "$good"
expect "a missing file" 2 "" --bundle "$T/inter.pem" "$T/nonexistent.pem"
expect "a bad --at" 2 "" --bundle "$T/inter.pem" --at 2020-02-30T00:00:00Z "$good"
expect "--chain-only with --id" 2 "" \
  --chain-only --id spiffe://example.org/x --bundle "$T/inter.pem" "$good"
expect "an invalid --id" 2 "" \
  --id spiffe://Example.org/x --bundle "$T/inter.pem" "$good"
expect "no certificate file" 2 "" --bundle "$T/inter.pem"
rc=0
"$LANYARD" svid frobnicate >/dev/null 2>&1 || rc=$?
check "an unknown svid subcommand is a usage error" test "$rc" -eq 2

# ---- chains OpenSSL makes ---------------------------------------------------
# A root whose name constraints permit the URI host example.org (as a
# SPIFFE bundle may carry a constrained CA), an intermediate, and leaves in
# and outside example.org.
O=$T/openssl
mkdir -p "$O"
cat >"$O/ca.cnf" <<'EOF'
[root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
nameConstraints = critical, permitted;URI:example.org
[inter]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
openssl_cert() { # NAME SUBJECT EXT ISSUER [SAN]
  local name=$1 subj=$2 ext=$3 issuer=$4 san=${5:-}
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$O/$name.key" -subj "$subj" -out "$O/$name.csr" 2>/dev/null
  if [ -n "$san" ]; then
    cat >"$O/$name.ext" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $san
EOF
    openssl x509 -req -in "$O/$name.csr" -CA "$O/$issuer.pem" \
      -CAkey "$O/$issuer.key" -CAcreateserial -days 2 -extfile "$O/$name.ext" \
      -out "$O/$name.pem" 2>/dev/null
  elif [ "$issuer" = self ]; then
    openssl x509 -req -in "$O/$name.csr" -signkey "$O/$name.key" -days 3 \
      -extfile "$O/ca.cnf" -extensions "$ext" -out "$O/$name.pem" 2>/dev/null
  else
    openssl x509 -req -in "$O/$name.csr" -CA "$O/$issuer.pem" \
      -CAkey "$O/$issuer.key" -CAcreateserial -days 3 -extfile "$O/ca.cnf" \
      -extensions "$ext" -out "$O/$name.pem" 2>/dev/null
  fi
}
openssl_cert root "/O=test/CN=constrained root" root self
openssl_cert inter "/O=test/CN=intermediate" inter root
openssl_cert good "/O=test" - inter "URI:spiffe://example.org/ns/a/sa/b"
openssl_cert evil "/O=test" - inter "URI:spiffe://evil.org/ns/a/sa/b"
openssl_cert sub "/O=test" - inter "URI:spiffe://sub.example.org/ns/a/sa/b"

check "openssl accepts the leaf inside example.org" \
  bash -c "openssl verify -CAfile '$O/root.pem' -untrusted '$O/inter.pem' '$O/good.pem' >/dev/null"
expect "  and so does Lanyard, with the intermediate from --untrusted" 0 \
  "^OK spiffe://example\.org/ns/a/sa/b serial=$(serial_hex "$O/good.pem") " \
  --bundle "$O/root.pem" --untrusted "$O/inter.pem" --trust-domain example.org \
  --key "$O/good.key" "$O/good.pem"
cat "$O/good.pem" "$O/inter.pem" >"$O/good-chain.pem"
expect "  or with it in the certificate file" 0 "^OK " \
  --bundle "$O/root.pem" --trust-domain example.org "$O/good-chain.pem"
expect "  and not without it" 1 "^REJECTED unknown_ca: no path to a trusted root$" \
  --bundle "$O/root.pem" --trust-domain example.org "$O/good.pem"
# This root carries no SPIFFE ID, so the bundle names no trust domain: the
# caller says which one, or that any will do.
expect "a bundle whose roots name no trust domain: usage" 2 "" \
  --bundle "$O/root.pem" "$O/good-chain.pem"
check "  and the message says what to give" \
  grep -q "no root names a trust domain .*--trust-domain TD or --any-trust-domain" "$T/stderr"
expect "  --any-trust-domain" 0 "^OK spiffe://example\.org/ns/a/sa/b " \
  --bundle "$O/root.pem" --any-trust-domain "$O/good-chain.pem"
expect "  --any-trust-domain with --trust-domain: usage" 2 "" \
  --bundle "$O/root.pem" --any-trust-domain --trust-domain example.org "$O/good-chain.pem"
expect "  --any-trust-domain with --chain-only: usage" 2 "" \
  --bundle "$O/root.pem" --any-trust-domain --chain-only "$O/good-chain.pem"
for leaf in evil sub; do
  check "openssl refuses the $leaf leaf (name constraints)" \
    bash -c "! openssl verify -CAfile '$O/root.pem' -untrusted '$O/inter.pem' '$O/$leaf.pem' >/dev/null 2>&1"
  expect "  and so does Lanyard, with any trust domain allowed" 1 \
    "^REJECTED bad_identity: URI not permitted by name constraints$" \
    --bundle "$O/root.pem" --untrusted "$O/inter.pem" --any-trust-domain "$O/$leaf.pem"
done
expect "a CA certificate as the leaf" 1 "^REJECTED bad_identity: leaf is a CA$" \
  --bundle "$O/root.pem" --any-trust-domain "$O/inter.pem"
expect "  also with --chain-only" 1 "^REJECTED bad_identity: leaf is a CA$" \
  --chain-only --bundle "$O/root.pem" "$O/inter.pem"

# ---- the SVID a live agent writes out ---------------------------------------
TD=example.org
ID=spiffe://$TD/ns/default/sa/web
ca_setup "$T/ca" "$TD"
"$LANYARD" ca init --trust-domain other.org --dir "$T/other" >/dev/null
ca_start "$T/ca"
agent_config "$T/a" "$T/ca" "$ID" 5m
# Listeners that admit any ID of the domain, to set the agent's verdicts
# beside svid verify's: a server listener in front of nginx, and a client
# listener toward whatever server a case starts on PEER_PORT.
NGINX_PORT=$(free_port)
nginx_start "$T/nginx" "$NGINX_PORT"
SERVER_PORT=$(free_port) CLIENT_PORT=$(free_port) PEER_PORT=$(free_port)
cat >>"$T/a/agent.yaml" <<YAML
listeners:
  - name: in
    mode: server
    listen: 127.0.0.1:$SERVER_PORT
    forward: 127.0.0.1:$NGINX_PORT
  - name: out
    mode: client
    listen: 127.0.0.1:$CLIENT_PORT
    connect: 127.0.0.1:$PEER_PORT
YAML
if ! agent_run "$T/a"; then
  bad "agent writes its SVID"
else
  ok "agent writes its SVID"
  svid=$T/a/svid/svid.pem
  expect "the agent's SVID verifies against its bundle" 0 \
    "^OK $ID serial=$(serial_hex "$svid") not_after=" \
    --bundle "$T/a/svid/bundle.pem" --id "$ID" --trust-domain "$TD" \
    --key "$T/a/svid/svid.key" "$svid"
  na=$("$LANYARD" svid verify --bundle "$T/a/svid/bundle.pem" "$svid" |
    sed -n 's/.*not_after=//p' || true)
  check "not_after is the certificate's ($na)" test "$(date -u -d "$na" +%s)" = \
    "$(date -u -d "$(openssl x509 -in "$svid" -noout -enddate | cut -d= -f2)" +%s)"
  expect "against another CA's bundle" 1 "^REJECTED unknown_ca: " \
    --bundle "$T/other/bundle.pem" --trust-domain "$TD" "$svid"
  expect "an hour after it expires" 1 "^REJECTED expired: certificate has expired$" \
    --bundle "$T/a/svid/bundle.pem" --at "$(($(date +%s) + 3600))" "$svid"
  expect "the CA's signing certificate is no SVID" 1 \
    "^REJECTED bad_identity: leaf is a CA$" \
    --bundle "$T/ca/bundle.pem" "$T/ca/signing.pem"
  cat "$T/ca/bundle.pem" "$T/other/bundle.pem" >"$T/two-domains.pem"
  expect "a bundle whose roots name two trust domains: usage" 2 "" \
    --bundle "$T/two-domains.pem" "$svid"
  check "  and the message names them" \
    grep -q "more than one trust domain ($TD, other.org)" "$T/stderr"
  expect "  with --trust-domain, it verifies" 0 "^OK $ID " \
    --bundle "$T/two-domains.pem" --trust-domain "$TD" "$svid"
fi

# ---- svid verify judges as the agent does -----------------------------------
# Leaves that OpenSSL signs with the CA's own signing key, each presented
# to the agent in both of its roles: by openssl s_client to its server
# listener, and by openssl s_server to its client listener. svid verify,
# given nothing but the bundle, must admit a leaf exactly when the agent
# admits it in both roles, and refuse it for the agent's reason otherwise;
# with --eku clientAuth it judges as the server side, with --eku
# serverAuth as the client side.
# ca_leaf NAME URI [EKU]: $T/leaves/NAME.pem (the leaf, then the signing
# certificate) and NAME.key; EKU "-" leaves the extension out.
mkdir -p "$T/leaves"
ca_leaf() {
  local name=$1 uri=$2 eku=${3:-serverAuth, clientAuth} L=$T/leaves
  {
    echo "basicConstraints = critical, CA:FALSE"
    echo "keyUsage = critical, digitalSignature"
    [ "$eku" = - ] || echo "extendedKeyUsage = $eku"
    echo "subjectKeyIdentifier = hash"
    echo "authorityKeyIdentifier = keyid"
    echo "subjectAltName = critical, URI:$uri"
  } >"$L/$name.ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$L/$name.key" -subj "/O=test" -out "$L/$name.csr" 2>/dev/null
  openssl x509 -req -in "$L/$name.csr" -CA "$T/ca/signing.pem" \
    -CAkey "$T/ca/signing.key" -CAcreateserial -days 1 -extfile "$L/$name.ext" \
    -out "$L/$name.pem" 2>/dev/null
  cat "$T/ca/signing.pem" >>"$L/$name.pem"
}
# verdict LISTENER COMMAND...: runs COMMAND, then prints the agent's
# verdict on the connection through LISTENER: "admitted", or "refused
# REASON" (from its log).
verdict() {
  local l=$1 log=$T/a/agent.log n _ line
  shift
  n=$(grep -cE "event=mtls_(established|refused) listener=$l " "$log" || true)
  "$@" >/dev/null 2>&1 || true
  for _ in $(seq 1 30); do
    line=$(grep -E "event=mtls_(established|refused) listener=$l " "$log" |
      sed -n "$((n + 1))p")
    [ -n "$line" ] && break
    sleep 0.1
  done
  case $line in
  *event=mtls_established*) echo admitted ;;
  *event=mtls_refused*) echo "refused $(sed -n 's/.* reason=\([a-z_]*\).*/\1/p' <<<"$line")" ;;
  *) echo "no verdict" ;;
  esac
}
as_server_client() { # the leaf as a client of the server listener
  local L=$T/leaves
  printf "GET / HTTP/1.0\r\n\r\n" | timeout 5 openssl s_client -connect \
    "127.0.0.1:$SERVER_PORT" -tls1_3 -CAfile "$T/a/svid/bundle.pem" -quiet \
    -cert "$L/$1.pem" -cert_chain "$L/$1.pem" -key "$L/$1.key"
}
as_client_server() { # the leaf as the server behind the client listener
  local L=$T/leaves pid rc=0
  openssl s_server -accept "127.0.0.1:$PEER_PORT" -tls1_3 -www \
    -cert "$L/$1.pem" -cert_chain "$L/$1.pem" -key "$L/$1.key" \
    >"$L/$1.s_server.log" 2>&1 &
  pid=$!
  PEERS+=("$pid")
  wait_port 127.0.0.1 "$PEER_PORT" 5 || true
  curl -sS -m 5 "http://127.0.0.1:$CLIENT_PORT/" || rc=$?
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  return "$rc"
}
# judge WHAT NAME AS_SERVER AS_CLIENT LINE [OPTION...]: the agent's
# verdicts on leaf NAME in front of its server listener (AS_SERVER) and of
# its client listener (AS_CLIENT); svid verify [OPTION...] prints LINE (a
# regex), and with --eku clientAuth and --eku serverAuth agrees with each.
judge() {
  local what=$1 name=$2 srv=$3 cli=$4 line=$5 got want eku rc
  shift 5
  got=$(verdict in as_server_client "$name")
  check "$what: the agent's server listener: $got" test "$got" = "$srv"
  got=$(verdict out as_client_server "$name")
  check "$what: the agent's client listener: $got" test "$got" = "$cli"
  rc=1
  [ "$srv" = admitted ] && [ "$cli" = admitted ] && rc=0
  expect "  svid verify $*" "$rc" "$line" \
    --bundle "$T/a/svid/bundle.pem" "$@" "$T/leaves/$name.pem"
  for eku in clientAuth serverAuth; do
    want=$srv
    [ "$eku" = serverAuth ] && want=$cli
    if [ "$want" = admitted ]; then
      expect "  svid verify --eku $eku $*" 0 "^OK " --eku "$eku" \
        --bundle "$T/a/svid/bundle.pem" "$@" "$T/leaves/$name.pem"
    else
      expect "  svid verify --eku $eku $*" 1 "^REJECTED ${want#refused }: " \
        --eku "$eku" --bundle "$T/a/svid/bundle.pem" "$@" "$T/leaves/$name.pem"
    fi
  done
}
if wait_port 127.0.0.1 "$SERVER_PORT" 5; then
  C=spiffe://$TD/ns/default/sa/peer
  ca_leaf good "$C"
  judge "a leaf that keeps every rule" good admitted admitted "^OK $C "
  ca_leaf no-eku "$C" -
  judge "a leaf without extendedKeyUsage" no-eku admitted admitted "^OK $C "
  ca_leaf pathless "spiffe://$TD"
  judge "a leaf whose ID is the bare trust domain" pathless \
    "refused bad_identity" "refused bad_identity" \
    "^REJECTED bad_identity: a workload SPIFFE ID needs a path \(X509-SVID 3\.1\)$"
  # the trust domain is the one the bundle's roots name, as the agent's is
  # its own
  F=spiffe://other.org/ns/default/sa/peer
  ca_leaf foreign "$F"
  judge "a leaf of another trust domain, from the same CA" foreign \
    "refused bad_identity" "refused bad_identity" \
    "^REJECTED bad_identity: SPIFFE ID not in trust domain$"
  expect "  svid verify --any-trust-domain" 0 "^OK $F " \
    --bundle "$T/a/svid/bundle.pem" --any-trust-domain "$T/leaves/foreign.pem"
  expect "  svid verify --trust-domain other.org" 0 "^OK $F " \
    --bundle "$T/a/svid/bundle.pem" --trust-domain other.org "$T/leaves/foreign.pem"
  # extendedKeyUsage: a server needs serverAuth, a client clientAuth, and
  # an agent is both
  ca_leaf server-only "$C" serverAuth
  judge "a leaf for servers only" server-only "refused bad_identity" admitted \
    "^REJECTED bad_identity: leaf's extended key usage lacks clientAuth$"
  expect "  svid verify --ignore-eku" 0 "^OK $C " \
    --bundle "$T/a/svid/bundle.pem" --ignore-eku "$T/leaves/server-only.pem"
  expect "  svid verify --ignore-eku --eku serverAuth: usage" 2 "" \
    --bundle "$T/a/svid/bundle.pem" --ignore-eku --eku serverAuth \
    "$T/leaves/server-only.pem"
  ca_leaf client-only "$C" clientAuth
  judge "a leaf for clients only" client-only admitted "refused bad_identity" \
    "^REJECTED bad_identity: leaf's extended key usage lacks serverAuth$"
  ca_leaf any-eku "$C" anyExtendedKeyUsage
  judge "a leaf with anyExtendedKeyUsage alone" any-eku admitted admitted "^OK $C "
else
  bad "the agent's listeners are up"
fi
finish
