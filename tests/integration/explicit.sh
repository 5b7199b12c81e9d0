#!/usr/bin/env bash
# Explicit listeners on loopback: curl -> client listener (agent "web") ->
# mTLS -> server listener (agent "api") -> nginx. Then every kind of bad
# client is refused by the server listener with its own reason.
. "$(dirname "$0")/lib.sh"
: "${CA_PROBE:?}"

TD=example.org
explicit_pair "$TD"
echo "hello through lanyard" >"$T/nginx/www/index.html"

body=$(curl -sS -m 10 "http://127.0.0.1:$CLIENT_PORT/index.html" || true)
check "curl through the client listener reaches nginx ($body)" test "$body" = "hello through lanyard"
check "the server agent saw the client's SPIFFE ID" \
  grep -q "event=mtls_established listener=api direction=inbound .*peer_id=$WEB" "$T/api/agent.log"
check "an explicit client listener offers no ALPN (any TLS server may be behind it)" \
  grep -q "event=mtls_established listener=api direction=inbound .*agent=false" "$T/api/agent.log"
check "the client agent saw the server's SPIFFE ID" \
  grep -q "event=mtls_established listener=api direction=outbound .*peer_id=$API" "$T/web/agent.log"

# -- resumption between the two agents under repeated connections
n=100
for _ in $(seq 1 $n); do curl -s -o /dev/null -m 5 "http://127.0.0.1:$CLIENT_PORT/index.html"; done
full=$(grep -c "direction=inbound .*resumed=false" "$T/api/agent.log" || true)
resumed=$(grep -c "direction=inbound .*resumed=true" "$T/api/agent.log" || true)
total=$((full + resumed))
check "resumption rate above 90% ($resumed of $total handshakes resumed)" \
  test $((resumed * 100)) -gt $((total * 90))
check "resumed sessions still carry the client's identity" \
  bash -c "! grep 'resumed=true' '$T/api/agent.log' | grep -v -q 'peer_id=$WEB'"

# -- bad clients, straight at the server listener
refused() { # description reason client-command...
  local what=$1 reason=$2; shift 2
  local before
  before=$(grep -c "reason=$reason" "$T/api/agent.log" || true)
  if "$@" >"$T/client.out" 2>&1; then
    bad "$what: the client got through"
    return
  fi
  sleep 0.3
  local after
  after=$(grep -c "reason=$reason" "$T/api/agent.log" || true)
  if [ "$after" -gt "$before" ]; then ok "$what: refused, reason=$reason"; else
    bad "$what: no log line with reason=$reason"; tail -3 "$T/api/agent.log"; fi
}
s_client() { # extra openssl args...
  printf "GET / HTTP/1.0\r\n\r\n" | timeout 5 openssl s_client -connect "127.0.0.1:$SERVER_PORT" \
    -tls1_3 -CAfile "$T/ca/bundle.pem" -quiet "$@" 2>&1 | grep -q "hello through lanyard"
}
refused "client without a certificate" no_peer_cert s_client

# a certificate from another CA (signed by openssl with that CA's key)
"$LANYARD" ca init --trust-domain "$TD" --dir "$T/other" >/dev/null
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkey -out "$T/other/leaf.key"
cat >"$T/other/ext.cnf" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=URI:$WEB
EXT
openssl req -new -key "$T/other/leaf.key" -subj "/O=other" 2>/dev/null |
  openssl x509 -req -CA "$T/other/signing.pem" -CAkey "$T/other/signing.key" \
    -CAcreateserial -days 1 -extfile "$T/other/ext.cnf" -out "$T/other/leaf.pem" 2>/dev/null
cat "$T/other/signing.pem" >>"$T/other/leaf.pem"
refused "client certificate from another CA" unknown_ca \
  s_client -cert "$T/other/leaf.pem" -key "$T/other/leaf.key"

svid_for "spiffe://$TD/ns/default/sa/intruder" "$T/intruder"
refused "valid SVID whose ID is not in allow" not_authorized \
  s_client -cert "$T/intruder/cert.pem" -cert_chain "$T/intruder/cert.pem" -key "$T/intruder/key.pem"

svid_for "$WEB" "$T/short" 5
sleep 6
refused "expired SVID" expired s_client -cert "$T/short/cert.pem" -cert_chain "$T/short/cert.pem" -key "$T/short/key.pem"

refused "plaintext HTTP to the mTLS port" plaintext_rejected \
  bash -c "curl -sS -m 5 http://127.0.0.1:$SERVER_PORT/ | grep -q hello"

svid_for "$WEB" "$T/good"
check "and a good SVID from openssl s_client gets through" \
  s_client -cert "$T/good/cert.pem" -cert_chain "$T/good/cert.pem" -key "$T/good/key.pem"

# -- the client listener checks the server's identity: point it at a
# server listener whose agent has another ID
WRONG_PORT=$(free_port)
agent_yaml "$T/wrong" "spiffe://$TD/ns/default/sa/impostor" "$T/ca"
cat >>"$T/wrong/agent.yaml" <<YAML
listeners:
  - name: impostor
    mode: server
    listen: 127.0.0.1:$WRONG_PORT
    forward: 127.0.0.1:$NGINX_PORT
YAML
agent_run "$T/wrong"
MIS_PORT=$(free_port)
agent_yaml "$T/web2" "$WEB" "$T/ca"
cat >>"$T/web2/agent.yaml" <<YAML
listeners:
  - name: api
    mode: client
    listen: 127.0.0.1:$MIS_PORT
    connect: 127.0.0.1:$WRONG_PORT
    expect: $API
YAML
agent_run "$T/web2"
check "client listener refuses a server with the wrong identity" \
  bash -c "! curl -sS -m 5 http://127.0.0.1:$MIS_PORT/index.html 2>/dev/null | grep -q hello"
check "  and logs bad_identity" grep -q "event=mtls_refused listener=api direction=outbound .*reason=bad_identity" "$T/web2/agent.log"

# -- a refusal counts as one on the client side too. A TLS 1.3 client
# finishes its handshake before the server judges its certificate; the
# server's alert comes after, and decides. "stranger" is a valid SVID that
# api's allow list does not admit.
metric() { # metric AGENT_DIR 'name{labels}' -> value (0 when absent)
  curl -sS -m 5 "http://$(awk '/^admin:/ {print $2}' "$1/agent.yaml")/metrics" |
    awk -v m="$2" '$1 == m {print $2; f=1} END {if (!f) print 0}'
}
STRANGER_PORT=$(free_port)
agent_yaml "$T/stranger" "spiffe://$TD/ns/default/sa/stranger" "$T/ca"
cat >>"$T/stranger/agent.yaml" <<YAML
listeners:
  - name: api
    mode: client
    listen: 127.0.0.1:$STRANGER_PORT
    connect: 127.0.0.1:$SERVER_PORT
    expect: $API
YAML
agent_run "$T/stranger"
refused_before=$(metric "$T/api" 'lanyard_mtls_handshake_failures_total{direction="inbound",reason="not_authorized"}')
for _ in 1 2 3; do curl -s -o /dev/null -m 5 "http://127.0.0.1:$STRANGER_PORT/index.html" || true; done
sleep 0.3
refused_after=$(metric "$T/api" 'lanyard_mtls_handshake_failures_total{direction="inbound",reason="not_authorized"}')
check "api refused the stranger 3 times (not_authorized: $refused_before -> $refused_after)" \
  test $((refused_after - refused_before)) = 3
stranger_ok=$(metric "$T/stranger" 'lanyard_mtls_handshakes_total{direction="outbound",result="success"}')
stranger_failed=$(metric "$T/stranger" 'lanyard_mtls_handshakes_total{direction="outbound",result="failure"}')
check "the stranger's agent counts 0 successes and 3 failures ($stranger_ok, $stranger_failed)" \
  test "$stranger_ok/$stranger_failed" = 0/3
check "  with the server's alert as the reason (not_authorized)" \
  test "$(metric "$T/stranger" 'lanyard_mtls_handshake_failures_total{direction="outbound",reason="not_authorized"}')" = 3
check "  and says so in its log" \
  grep -q 'event=mtls_refused listener=api direction=outbound .*reason=not_authorized cause="the peer refused our certificate (alert bad_certificate): its policy does not admit our identity" tls_error=-313' "$T/stranger/agent.log"

# -- every listener's policy holds on resumed sessions too. One agent (one
# worker, so one session cache) with two client listeners to the same
# server: l_ok expects the server's ID, l_bad another one. A session made
# through l_ok must not carry l_bad past its check.
TWO_OK=$(free_port)
TWO_BAD=$(free_port)
agent_yaml "$T/two" "$WEB" "$T/ca"
cat >>"$T/two/agent.yaml" <<YAML
workers: 1
listeners:
  - name: l_ok
    mode: client
    listen: 127.0.0.1:$TWO_OK
    connect: 127.0.0.1:$SERVER_PORT
    expect: $API
  - name: l_bad
    mode: client
    listen: 127.0.0.1:$TWO_BAD
    connect: 127.0.0.1:$SERVER_PORT
    expect: spiffe://$TD/ns/default/sa/other
YAML
agent_run "$T/two"
for _ in 1 2 3; do curl -s -o /dev/null -m 5 "http://127.0.0.1:$TWO_OK/index.html"; done
check "l_ok (expects the server) gets through" \
  bash -c "curl -sS -m 5 http://127.0.0.1:$TWO_OK/index.html | grep -q hello"
check "  and resumes its sessions" \
  grep -q "event=mtls_established listener=l_ok direction=outbound .*resumed=true" "$T/two/agent.log"
check "l_bad (expects another ID) is refused after l_ok made sessions with the same server" \
  bash -c "! curl -sS -m 5 http://127.0.0.1:$TWO_BAD/index.html 2>/dev/null | grep -q hello"
check "  with bad_identity" \
  grep -q "event=mtls_refused listener=l_bad direction=outbound .*reason=bad_identity" "$T/two/agent.log"
check "l_ok still gets through afterwards" \
  bash -c "curl -sS -m 5 http://127.0.0.1:$TWO_OK/index.html | grep -q hello"

# The server side: a ticket from a listener that admits anyone does not
# let a client into a listener that does not admit it (openssl carries
# the session from one port to the other; both in one agent, one ticket
# key).
OPEN_PORT=$(free_port)
STRICT_PORT=$(free_port)
agent_yaml "$T/gate" "$API" "$T/ca"
cat >>"$T/gate/agent.yaml" <<YAML
workers: 1
listeners:
  - name: open
    mode: server
    listen: 127.0.0.1:$OPEN_PORT
    forward: 127.0.0.1:$NGINX_PORT
  - name: strict
    mode: server
    listen: 127.0.0.1:$STRICT_PORT
    forward: 127.0.0.1:$NGINX_PORT
    allow: [$WEB]
YAML
agent_run "$T/gate"
intruder=(-cert "$T/intruder/cert.pem" -cert_chain "$T/intruder/cert.pem" -key "$T/intruder/key.pem" -CAfile "$T/ca/bundle.pem" -tls1_3)
printf "GET / HTTP/1.0\r\n\r\n" | timeout 5 openssl s_client -connect "127.0.0.1:$OPEN_PORT" \
  "${intruder[@]}" -sess_out "$T/gate/session.pem" -ign_eof >"$T/gate/open.out" 2>&1 || true
check "a client the open listener admits gets a session ticket there" \
  bash -c "grep -q 'hello through lanyard' '$T/gate/open.out' && test -s '$T/gate/session.pem'"
printf "GET / HTTP/1.0\r\n\r\n" | timeout 5 openssl s_client -connect "127.0.0.1:$STRICT_PORT" \
  "${intruder[@]}" -sess_in "$T/gate/session.pem" -ign_eof >"$T/gate/strict.out" 2>&1 || true
check "that ticket does not get it into the strict listener" \
  bash -c "! grep -q 'hello through lanyard' '$T/gate/strict.out'"
check "  which refuses it as not_authorized" \
  grep -q "event=mtls_refused listener=strict direction=inbound .*reason=not_authorized" "$T/gate/agent.log"

check "the CA and agents never logged a key" bash -c "! grep -rq 'PRIVATE KEY' '$T' --include='*.log'"
finish
