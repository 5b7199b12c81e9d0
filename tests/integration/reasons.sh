#!/usr/bin/env bash
# Failures in words. Each common way an mTLS connection fails is produced
# for real, and the log line says what a person needs: the reason (the
# metrics label), the cause in words, wolfSSL's code (tls_error=), and
# the other end: the destination (dest=) outbound, the client (peer=) and
# the local app (app=) inbound.
#
#   - the server agent has no identity yet (the client sees a close);
#   - a client whose leaf is a CA (the same words as `lanyard svid verify`);
#   - a client certificate from another CA (openssl s_client);
#   - plaintext to a strict listener;
#   - a server that is not the expected identity, a client not allowed;
#   - an agent whose bundle does not trust the CA (RPC client side), a
#     foreign client certificate at the CA (RPC server side).
# The CA's log: a clean start logs no failed handshake, a TCP probe is no
# failure, and a burst of bad connections (plaintext, or idle until the
# CA's handshake deadline) makes a bounded number of lines that, with the
# summary, account for every one.
. "$(dirname "$0")/lib.sh"
: "${CA_PROBE:?}"

TD=example.org
API=spiffe://$TD/ns/default/sa/api
WEB=spiffe://$TD/ns/default/sa/web
OTHER=spiffe://$TD/ns/default/sa/other
CA_LOG=$T/ca/ca.log

ca_setup "$T/ca" "$TD"
"$LANYARD" ca serve -c "$T/ca/ca.yaml" --log-level debug >>"$CA_LOG" 2>&1 &
CA_PID=$!
PIDS+=("$CA_PID")
check "the CA listens" wait_listen "$CA_PORT" 10
NGINX_PORT=$(free_port)
nginx_start "$T/nginx" "$NGINX_PORT"
echo hello >"$T/nginx/www/index.html"
SERVER_PORT=$(free_port) CLIENT_PORT=$(free_port) WRONG_PORT=$(free_port)
NOBODY_PORT=$(free_port) LONELY_PORT=$(free_port)
DEAD_PORT=$(free_port) DEAD_CLIENT_PORT=$(free_port) CLOSED_PORT=$(free_port)

# api: a strict server listener in front of nginx that admits web
agent_yaml "$T/api" "$API" "$T/ca"
cat >>"$T/api/agent.yaml" <<YAML
listeners:
  - name: api
    mode: server
    listen: 127.0.0.1:$SERVER_PORT
    forward: 127.0.0.1:$NGINX_PORT
    allow: [$WEB]
  - name: deadapp
    mode: server
    listen: 127.0.0.1:$DEAD_PORT
    forward: 127.0.0.1:$CLOSED_PORT
    allow: [$WEB]
YAML
check "api gets its SVID" agent_run "$T/api"

# web: client listeners to api (as api, and expecting another ID) and to
# an agent that has no identity
agent_yaml "$T/web" "$WEB" "$T/ca"
cat >>"$T/web/agent.yaml" <<YAML
listeners:
  - name: api
    mode: client
    listen: 127.0.0.1:$CLIENT_PORT
    connect: 127.0.0.1:$SERVER_PORT
    expect: $API
  - name: wrongid
    mode: client
    listen: 127.0.0.1:$WRONG_PORT
    connect: 127.0.0.1:$SERVER_PORT
    expect: $OTHER
  - name: nobody
    mode: client
    listen: 127.0.0.1:$NOBODY_PORT
    connect: 127.0.0.1:$LONELY_PORT
    expect: $API
  - name: deadapp
    mode: client
    listen: 127.0.0.1:$DEAD_CLIENT_PORT
    connect: 127.0.0.1:$DEAD_PORT
    expect: $API
YAML
check "web gets its SVID" agent_run "$T/web"
check "a request through the pair works" \
  bash -c "curl -sf -m 5 http://127.0.0.1:$CLIENT_PORT/index.html | grep -qx hello"

# -- the CA on a clean start, and TCP probes
check "a clean start: the CA logged no failed handshake" \
  bash -c "! grep -q rpc_handshake_failed '$CA_LOG'"
for _ in 1 2 3; do (exec 3<>"/dev/tcp/127.0.0.1/$CA_PORT") 2>/dev/null || true; done
check "three TCP probes (connect, close): debug tcp_probe lines" \
  wait_log "$CA_LOG" "level=debug event=tcp_probe peer=127\.0\.0\.1:" 5
sleep 0.3
check "  and no failed handshake" bash -c "! grep -q rpc_handshake_failed '$CA_LOG'"
for _ in 1 2 3; do (exec 3<>"/dev/tcp/127.0.0.1/$SERVER_PORT") 2>/dev/null || true; done
check "three TCP probes to a server listener: debug tcp_probe lines" \
  wait_log "$T/api/agent.log" "level=debug event=tcp_probe listener=api peer=127\.0\.0\.1:" 5
sleep 0.3
check "  and no refusal" bash -c "! grep -q event=mtls_refused '$T/api/agent.log'"

# last_line LOG PATTERN: waits for a line that matches (grep -E), prints
# the last one
last_line() {
  wait_log "$1" "$2" 10 || true
  grep -E "$2" "$1" | tail -1
}
# has LINE TEXT...: every TEXT is in LINE (fixed strings)
has() {
  local line=$1 t
  shift
  for t in "$@"; do
    grep -qF -- "$t" <<<"$line" || { echo "  missing '$t' in: $line"; return 1; }
  done
}

# -- the server agent has no identity yet: its CA address goes nowhere
agent_yaml "$T/lonely" "spiffe://$TD/ns/default/sa/lonely" "$T/ca"
sed -i "s|address: 127.0.0.1:$CA_PORT|address: 127.0.0.1:$(free_port)|" "$T/lonely/agent.yaml"
cat >>"$T/lonely/agent.yaml" <<YAML
listeners:
  - name: lonely
    mode: server
    listen: 127.0.0.1:$LONELY_PORT
    forward: 127.0.0.1:$NGINX_PORT
    allow: [$WEB]
YAML
agent_start "$T/lonely"
check "the agent without an identity listens" wait_listen "$LONELY_PORT" 10
# The server closes with the ClientHello unread, which resets the
# connection: a reset and a FIN must read the same. Three tries, three
# lines alike.
for _ in 1 2 3; do curl -s -o /dev/null -m 5 "http://127.0.0.1:$NOBODY_PORT/" || true; done
for _ in $(seq 1 30); do
  [ "$(grep -c "event=mtls_refused listener=nobody " "$T/web/agent.log")" -ge 3 ] && break
  sleep 0.1
done
i=0
while read -r line; do
  i=$((i + 1))
  check "client side of a server without identity ($i): protocol, the peer closed, -308, dest" \
    has "$line" "direction=outbound" "peer=127.0.0.1:$LONELY_PORT" "dest=127.0.0.1:$LONELY_PORT" \
    "reason=protocol" \
    'cause="the peer closed the connection during the handshake (it may have no identity yet, or refused ours)"' \
    "tls_error=-308"
done < <(grep "event=mtls_refused listener=nobody " "$T/web/agent.log")
check "  three lines ($i)" test "$i" = 3
line=$(last_line "$T/lonely/agent.log" "event=mtls_refused listener=lonely ")
check "server side: no_identity, in words, with the app it was for" \
  has "$line" "direction=inbound" "peer=127.0.0.1:" "app=127.0.0.1:$NGINX_PORT" \
  "reason=no_identity" 'cause="this agent holds no valid SVID yet'

# -- a client whose leaf is a CA, signed by the mesh's signing CA
# leaf NAME URI CA_DIR BC: $T/leaves/NAME.pem (the leaf, then the signer)
mkdir -p "$T/leaves"
leaf() {
  local name=$1 uri=$2 ca=$3 bc=$4 L=$T/leaves
  {
    echo "basicConstraints = critical, $bc"
    if [ "$bc" = CA:TRUE ]; then
      echo "keyUsage = critical, digitalSignature, keyCertSign"
    else
      echo "keyUsage = critical, digitalSignature"
    fi
    echo "extendedKeyUsage = serverAuth, clientAuth"
    echo "subjectKeyIdentifier = hash"
    echo "authorityKeyIdentifier = keyid"
    echo "subjectAltName = critical, URI:$uri"
  } >"$L/$name.ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$L/$name.key" -subj "/O=test" -out "$L/$name.csr" 2>/dev/null
  openssl x509 -req -in "$L/$name.csr" -CA "$ca/signing.pem" \
    -CAkey "$ca/signing.key" -CAcreateserial -days 1 -extfile "$L/$name.ext" \
    -out "$L/$name.pem" 2>/dev/null
  cat "$ca/signing.pem" >>"$L/$name.pem"
}
as_client() { # NAME: the leaf as an s_client of api's server listener
  printf "GET / HTTP/1.0\r\n\r\n" | timeout 5 openssl s_client -connect \
    "127.0.0.1:$SERVER_PORT" -tls1_3 -CAfile "$T/ca/bundle.pem" -quiet \
    -cert "$T/leaves/$1.pem" -cert_chain "$T/leaves/$1.pem" \
    -key "$T/leaves/$1.key" >/dev/null 2>&1 || true
}
leaf caleaf "$WEB" "$T/ca" CA:TRUE
verdict=$("$LANYARD" svid verify --bundle "$T/ca/bundle.pem" "$T/leaves/caleaf.pem" || true)
check "svid verify: the leaf is a CA ($verdict)" test "$verdict" = "REJECTED bad_identity: leaf is a CA"
n=$(grep -c "event=mtls_refused listener=api " "$T/api/agent.log" || true)
as_client caleaf
wait_log "$T/api/agent.log" "event=mtls_refused listener=api .*peer_id" 1 || true
line=$(last_line "$T/api/agent.log" "event=mtls_refused listener=api .*reason=bad_identity")
check "the data path says the same words: bad_identity, \"leaf is a CA\"" \
  has "$line" "direction=inbound" "app=127.0.0.1:$NGINX_PORT" "reason=bad_identity" \
  "cause=\"leaf is a CA\"" "tls_error=-"
check "  not wolfSSL's (\"ASN CA path length\")" bash -c "! grep -q 'path length' '$T/api/agent.log'"

# -- a client certificate from another CA (same trust domain, other keys)
"$LANYARD" ca init --trust-domain "$TD" --dir "$T/other" \
  --listen "127.0.0.1:$(free_port)" --admin "127.0.0.1:$(free_port)" >/dev/null
leaf foreign "$WEB" "$T/other" CA:FALSE
as_client foreign
line=$(last_line "$T/api/agent.log" "event=mtls_refused listener=api .*reason=unknown_ca")
verdict=$("$LANYARD" svid verify --bundle "$T/ca/bundle.pem" "$T/leaves/foreign.pem" || true)
check "another CA's client: unknown_ca, with svid verify's words ($verdict), -188" \
  has "$line" "peer=127.0.0.1:" "app=127.0.0.1:$NGINX_PORT" "reason=unknown_ca" \
  "cause=\"${verdict#REJECTED unknown_ca: }\"" "tls_error=-188"

# -- plaintext to the strict listener
curl -s -o /dev/null -m 5 "http://127.0.0.1:$SERVER_PORT/" || true
line=$(last_line "$T/api/agent.log" "event=mtls_refused listener=api .*reason=plaintext_rejected")
check "plaintext: plaintext_rejected, in words, with the app it was for" \
  has "$line" "peer=127.0.0.1:" "app=127.0.0.1:$NGINX_PORT" \
  'cause="the client sent plaintext, not a TLS handshake"'

# -- a server that is not the expected identity; a client not allowed
curl -s -o /dev/null -m 5 "http://127.0.0.1:$WRONG_PORT/" || true
line=$(last_line "$T/web/agent.log" "event=mtls_refused listener=wrongid ")
check "wrong server identity: bad_identity, naming the expected ID and the destination" \
  has "$line" "peer=127.0.0.1:$SERVER_PORT" "dest=127.0.0.1:$SERVER_PORT" "peer_id=$API" \
  "reason=bad_identity" "cause=\"the server's identity is not the expected $OTHER\""
svid_for "spiffe://$TD/ns/default/sa/intruder" "$T/intruder"
cp "$T/intruder/cert.pem" "$T/leaves/intruder.pem"
cp "$T/intruder/key.pem" "$T/leaves/intruder.key"
as_client intruder
line=$(last_line "$T/api/agent.log" "event=mtls_refused listener=api .*reason=not_authorized")
check "a client not allowed: not_authorized, in words" \
  has "$line" "peer_id=spiffe://$TD/ns/default/sa/intruder" \
  'cause="the client'"'"'s identity is not in the allow list"'

# -- the app behind a server listener is not running
curl -s -o /dev/null -m 5 "http://127.0.0.1:$DEAD_CLIENT_PORT/" || true
line=$(last_line "$T/api/agent.log" "event=mtls_refused listener=deadapp ")
check "the local app is down: connect_failed, naming the app and why" \
  has "$line" "peer_id=$WEB" "app=127.0.0.1:$CLOSED_PORT" "reason=connect_failed" \
  'cause="the local app did not accept the connection: connection refused"'

# -- the RPC client: an agent whose bundle is another CA's
agent_yaml "$T/alien" "spiffe://$TD/ns/default/sa/alien" "$T/other"
sed -i "s|address: 127.0.0.1:[0-9]*|address: 127.0.0.1:$CA_PORT|" "$T/alien/agent.yaml"
agent_start "$T/alien"
line=$(last_line "$T/alien/agent.log" "event=ca_handshake_failed")
check "an agent that does not trust the CA: unknown_ca, in words, -188, dest" \
  has "$line" "dest=127.0.0.1:$CA_PORT" "reason=unknown_ca" \
  "cause=\"the peer's certificate chain does not lead to a root in our trust bundle\"" \
  "tls_error=-188"
check "  and svid_request_failed carries the same words" \
  wait_log "$T/alien/agent.log" "svid_request_failed .*does not lead to a root in our trust bundle" 5
stop_daemon "$AGENT_PID"

# -- the RPC server: a foreign client certificate at the CA
"$CA_PROBE" --ca "127.0.0.1:$CA_PORT" --bundle "$T/ca/bundle.pem" --td "$TD" \
  --cert "$T/leaves/foreign.pem" --key "$T/leaves/foreign.key" \
  report --spiffe-id "$WEB" --instance x >/dev/null 2>&1 || true
line=$(last_line "$CA_LOG" "event=rpc_handshake_failed")
check "the CA, a foreign client certificate: unknown_ca, in words, -188, peer" \
  has "$line" "peer=127.0.0.1:" "reason=unknown_ca" \
  "cause=\"the peer's certificate chain does not lead to a root in our trust bundle\"" \
  "tls_error=-188"

# -- a burst of bad connections to the CA: a bounded number of lines, and
# with what they and the summary say was left out, every one
L0=$(wc -l <"$CA_LOG")
BURST=300
python3 - "$CA_PORT" "$BURST" <<'PY'
import socket, sys
from concurrent.futures import ThreadPoolExecutor
port, n = int(sys.argv[1]), int(sys.argv[2])
def plaintext(_):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            s.recv(100)
    except OSError:
        pass
with ThreadPoolExecutor(16) as pool:
    list(pool.map(plaintext, range(n)))
PY
# the lines since, and how many connections they account for: each line
# one, plus what lines and summaries say was left out
since() { tail -n +$((L0 + 1)) "$CA_LOG" | grep -E "event=(rpc_handshake_failed|rpc_log_suppressed)" || true; }
accounted() {
  since | awk '/event=(rpc_handshake_failed|rpc_conn_timeout)/ {n++}
    match($0, /suppressed=[0-9]+/) {s += substr($0, RSTART + 11, RLENGTH - 11)}
    END {print n + s}'
}
for _ in $(seq 1 50); do
  [ "$(accounted)" -ge "$BURST" ] && break
  sleep 0.1
done
lines=$(since | grep -c "event=rpc_handshake_failed" || true)
words=$(since | grep -c 'event=rpc_handshake_failed .*reason=plaintext_rejected cause="the client sent plaintext, not a TLS handshake"' || true)
check "$BURST plaintext connections to the CA: fewer lines ($lines)" test "$lines" -lt "$BURST"
check "  each says plaintext_rejected in words ($words of $lines)" test "$words" = "$lines"
summaries=$(since | grep -c "event=rpc_log_suppressed suppressed=" || true)
check "  a summary line says how many were left out ($summaries)" test "$summaries" -ge 1
check "  lines plus what they and the summary say was left out: $BURST ($(accounted))" \
  test "$(accounted)" = "$BURST"

# -- idle connections: each one the CA times out is a line, limited too
L0=$(wc -l <"$CA_LOG")
IDLE=200
python3 - "$CA_PORT" "$IDLE" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
conns = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(n)]
for s in conns:  # the CA's handshake deadline closes each (10 s)
    try:
        s.recv(100)
    except OSError:
        pass
    s.close()
PY
since() { tail -n +$((L0 + 1)) "$CA_LOG" | grep -E "event=(rpc_conn_timeout|rpc_log_suppressed)" || true; }
for _ in $(seq 1 50); do
  [ "$(accounted)" -ge "$IDLE" ] && break
  sleep 0.1
done
lines=$(since | grep -c "event=rpc_conn_timeout .*phase=handshake" || true)
check "$IDLE idle connections timed out by the CA: fewer lines ($lines)" test "$lines" -lt "$IDLE"
check "  lines plus what they and the summary say was left out: $IDLE ($(accounted))" \
  test "$(accounted)" = "$IDLE"
check "the CA still serves (a probe gets an answer)" \
  bash -c "'$CA_PROBE' --ca 127.0.0.1:$CA_PORT --bundle '$T/ca/bundle.pem' --td $TD --cert '$T/web/svid/svid.pem' --key '$T/web/svid/svid.key' report --spiffe-id '$WEB' --instance x 2>&1 | grep -q code=OK"
finish
