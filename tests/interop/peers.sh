#!/usr/bin/env bash
# Interop with real TLS peers holding Lanyard-issued SVIDs:
#   openssl s_client and curl --cert  -> server listener -> nginx
#   client listener -> openssl s_server -Verify 1
#   client listener -> nginx with ssl_verify_client on
#   stunnel (client side) -> server listener -> nginx
#   client listener -> stunnel (server side, verifying clients) -> nginx
. "$LY_SOURCE_DIR/tests/integration/lib.sh"
: "${CA_PROBE:?}"

TD=example.org
API=spiffe://$TD/ns/default/sa/api
WEB=spiffe://$TD/ns/default/sa/web
ca_setup "$T/ca" "$TD"
ca_start "$T/ca"
NGINX_PORT=$(free_port)
nginx_start "$T/nginx" "$NGINX_PORT"
echo "hello interop" >"$T/nginx/www/index.html"
BUNDLE=$T/ca/bundle.pem

# -- peers as clients of a Lanyard server listener
S_PORT=$(free_port)
agent_yaml "$T/api" "$API" "$T/ca"
cat >>"$T/api/agent.yaml" <<YAML
listeners:
  - {name: api, mode: server, listen: 127.0.0.1:$S_PORT, forward: 127.0.0.1:$NGINX_PORT, allow: [$WEB]}
YAML
check "server agent up" agent_run "$T/api"
svid_for "$WEB" "$T/web"
got=$(printf 'GET /index.html HTTP/1.0\r\n\r\n' | timeout 5 openssl s_client -quiet \
  -connect "127.0.0.1:$S_PORT" -CAfile "$BUNDLE" -verify_return_error \
  -cert "$T/web/cert.pem" -cert_chain "$T/web/cert.pem" -key "$T/web/key.pem" 2>"$T/s_client.err" | tail -1 || true)
check "openssl s_client with an SVID, verifying the agent against the bundle ($got)" \
  test "$got" = "hello interop"
# SVIDs carry a SPIFFE ID, not a host name, so curl's host check cannot
# apply (-k); the chain was verified by s_client above.
got=$(curl -sS -m 5 -k --cert "$T/web/cert.pem" --key "$T/web/key.pem" \
  "https://127.0.0.1:$S_PORT/index.html" || true)
check "curl --cert with an SVID ($got)" test "$got" = "hello interop"
check "  and the agent saw the SVID's ID" \
  grep -q "event=mtls_established.*direction=inbound.*peer_id=$WEB" "$T/api/agent.log"

# -- peers as servers behind a Lanyard client listener
svid_for "$API" "$T/apisvid"
client_listener() { # name target-port
  echo "  - {name: $1, mode: client, listen: 127.0.0.1:$(free_port | tee "$T/$1.port"), connect: 127.0.0.1:$2, expect: $API}"
}
OSSL_PORT=$(free_port)
NGX_TLS_PORT=$(free_port)
STN_SRV_PORT=$(free_port)
HELLO_PORT=$(free_port)
agent_yaml "$T/webagent" "$WEB" "$T/ca"
{
  echo "listeners:"
  client_listener s_server "$OSSL_PORT"
  client_listener nginx "$NGX_TLS_PORT"
  client_listener stunnel "$STN_SRV_PORT"
  client_listener hello "$HELLO_PORT"
} >>"$T/webagent/agent.yaml"
check "client agent up" agent_run "$T/webagent"

# The ClientHello: the key share's group (P-256, 23) comes first in
# supported_groups, so a server that picks by the client's order needs no
# HelloRetryRequest, and no obsolete group (below P-256: 1..22) is offered.
python3 "$LY_SOURCE_DIR/tests/tools/tcpkit.py" hello --port "$HELLO_PORT" >"$T/hello.out" 2>&1 &
PEERS+=($!)
wait_port 127.0.0.1 "$HELLO_PORT" 5
curl -s -o /dev/null -m 5 "http://127.0.0.1:$(cat "$T/hello.port")/" || true
hello=$(cat "$T/hello.out")
groups=$(sed -nE 's/^groups=([0-9,]*) .*/\1/p' <<<"$hello")
share=$(sed -nE 's/.* key_share=([0-9,]*)$/\1/p' <<<"$hello")
check "the ClientHello offers its key share's group first ($hello)" \
  test -n "$share" -a "${groups%%,*}" = "${share%%,*}"
check "  and that group is P-256" test "${share%%,*}" = 23
check "  and no obsolete group (secp224r1 and older)" \
  bash -c "! tr ',' '\n' <<<'$groups' | awk '\$1 < 23 {f=1} END {exit !f}'"

openssl s_server -accept "127.0.0.1:$OSSL_PORT" -tls1_3 -www -quiet \
  -cert "$T/apisvid/cert.pem" -cert_chain "$T/apisvid/cert.pem" -key "$T/apisvid/key.pem" \
  -CAfile "$BUNDLE" -Verify 1 -verify_return_error >"$T/s_server.log" 2>&1 &
PEERS+=($!)
wait_port 127.0.0.1 "$OSSL_PORT" 5
got=$(curl -sS -m 5 "http://127.0.0.1:$(cat "$T/s_server.port")/" || true)
check "client listener -> openssl s_server -Verify 1" grep -q "Client certificate" <<<"$got"
check "  s_server saw the agent's SVID" grep -q "URI:$WEB\|$WEB" <<<"$got$(cat "$T/s_server.log")" 

mkdir -p "$T/ngxtls/www"
echo "hello mtls nginx" >"$T/ngxtls/www/index.html"
NGINX_LISTEN_OPTS=" ssl" nginx_start "$T/ngxtls" "$NGX_TLS_PORT" "
    ssl_protocols TLSv1.3;
    ssl_certificate $T/apisvid/cert.pem;
    ssl_certificate_key $T/apisvid/key.pem;
    ssl_client_certificate $BUNDLE;
    ssl_verify_client on;
    ssl_verify_depth 3;
    add_header X-Client-Verify \$ssl_client_verify;"
hdr=$(curl -sS -m 5 -D - "http://127.0.0.1:$(cat "$T/nginx.port")/index.html" || true)
check "client listener -> nginx with ssl_verify_client on" grep -q "hello mtls nginx" <<<"$hdr"
check "  nginx verified the agent's certificate (X-Client-Verify: SUCCESS)" \
  grep -qi "X-Client-Verify: SUCCESS" <<<"$hdr"

# stunnel as the server: verifies clients against the bundle
cat >"$T/stunnel-server.conf" <<CONF
foreground = yes
pid =
[api]
accept = 127.0.0.1:$STN_SRV_PORT
connect = 127.0.0.1:$NGINX_PORT
cert = $T/apisvid/cert.pem
key = $T/apisvid/key.pem
CAfile = $BUNDLE
verifyChain = yes
requireCert = yes
sslVersionMin = TLSv1.3
CONF
stunnel "$T/stunnel-server.conf" >"$T/stunnel-server.log" 2>&1 &
PEERS+=($!)
wait_port 127.0.0.1 "$STN_SRV_PORT" 5
got=$(curl -sS -m 5 "http://127.0.0.1:$(cat "$T/stunnel.port")/index.html" || true)
check "client listener -> stunnel (verifying clients) ($got)" test "$got" = "hello interop"

# stunnel as the client: presents an SVID to the server listener
STN_CLI_PORT=$(free_port)
cat >"$T/stunnel-client.conf" <<CONF
foreground = yes
pid =
[web]
client = yes
accept = 127.0.0.1:$STN_CLI_PORT
connect = 127.0.0.1:$S_PORT
cert = $T/web/cert.pem
key = $T/web/key.pem
CAfile = $BUNDLE
verifyChain = yes
sslVersionMin = TLSv1.3
CONF
stunnel "$T/stunnel-client.conf" >"$T/stunnel-client.log" 2>&1 &
PEERS+=($!)
wait_port 127.0.0.1 "$STN_CLI_PORT" 5
got=$(curl -sS -m 5 "http://127.0.0.1:$STN_CLI_PORT/index.html" || true)
check "stunnel (client, with an SVID) -> server listener ($got)" test "$got" = "hello interop"
finish
