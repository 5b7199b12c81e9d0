# shellcheck shell=bash
# Shared helpers for the integration suites (sourced, bash).
# Environment from CTest: LANYARD (the binary), LY_SOURCE_DIR, LY_TESTDATA,
# CA_PROBE (the probe tool).
set -euo pipefail

: "${LANYARD:?LANYARD must point at the lanyard binary}"
T=$(mktemp -d /tmp/lanyard-test.XXXXXX)
PIDS=()  # Lanyard's daemons: must exit 0 on SIGTERM
PEERS=() # third-party peers: just stopped
FAILS=0
CHECKS=0

cleanup() {
  for p in "${PIDS[@]:-}" "${PEERS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]:-}" "${PEERS[@]:-}"; do
    [ -n "$p" ] && wait "$p" 2>/dev/null || true
  done
  if [ "$FAILS" -eq 0 ]; then rm -rf "$T"; else echo "kept $T for inspection"; fi
}
trap cleanup EXIT

ok() { CHECKS=$((CHECKS + 1)); echo "ok   - $*"; }
bad() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); echo "FAIL - $*"; }
check() { # check "description" command...
  local what=$1; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
# stop_daemon PID: SIGTERM, then the exit status must be 0 (a clean,
# graceful exit: under the sanitizers a leak or error makes it non-zero).
stop_daemon() {
  local rc=0
  kill -TERM "$1" 2>/dev/null || return 0
  wait "$1" 2>/dev/null || rc=$?
  [ "$rc" -eq 0 ] || bad "process $1 exited with status $rc after SIGTERM"
}

finish() {
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && stop_daemon "$p"
  done
  PIDS=()
  local reports
  reports=$(grep -rlE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$T" --include='*.log' || true)
  if [ -n "$reports" ]; then
    bad "sanitizer reports in: $reports"
    grep -hE -A12 "ERROR: (Address|Leak)Sanitizer|runtime error:" $reports | head -60
  else
    ok "no sanitizer reports in the daemons' logs"
  fi
  echo "$((CHECKS - FAILS)) passed, $FAILS failed"
  [ "$FAILS" -eq 0 ]
}

free_port() { # never the same port twice in one script (free_port.py)
  python3 "$LY_SOURCE_DIR/tests/tools/free_port.py" "$T/ports.given"
}

wait_port() { # host port [seconds]
  local _
  for _ in $(seq 1 $((${3:-10} * 10))); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# wait_listen PORT [seconds]: something listens on PORT, asked of the
# kernel (ss) without connecting: a readiness probe that connects shows
# up in the server's log as a connection that went nowhere.
wait_listen() {
  local _
  for _ in $(seq 1 $((${2:-10} * 10))); do
    [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ] && return 0
    sleep 0.1
  done
  return 1
}

wait_file() { # path [seconds]
  local _
  for _ in $(seq 1 $((${2:-10} * 10))); do
    [ -s "$1" ] && return 0
    sleep 0.1
  done
  return 1
}

wait_log() { # file pattern [seconds]: until a line matches (grep -E)
  local _
  for _ in $(seq 1 $((${3:-10} * 10))); do
    grep -qE "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# ca_setup DIR TD: a CA in DIR on a free port; sets CA_PORT.
ca_setup() {
  CA_PORT=$(free_port)
  "$LANYARD" ca init --trust-domain "$2" --dir "$1" \
    --listen "127.0.0.1:$CA_PORT" --admin "127.0.0.1:$(free_port)" >/dev/null
}

# ca_start DIR: starts `ca serve`, logs to DIR/ca.log; sets CA_PID.
ca_start() {
  "$LANYARD" ca serve -c "$1/ca.yaml" >>"$1/ca.log" 2>&1 &
  CA_PID=$!
  PIDS+=("$CA_PID")
  wait_listen "$CA_PORT" 10
}

ca_stop() {
  stop_daemon "$CA_PID"
}

# agent_config DIR CA_DIR ID TTL: writes DIR/agent.yaml with a join token.
agent_config() {
  mkdir -p "$1/svid"
  "$LANYARD" ca token -c "$2/ca.yaml" --spiffe-id "$3" --ttl 10m >"$1/join.token"
  cat >"$1/agent.yaml" <<YAML
trust_domain: ${3#spiffe://}
spiffe_id: $3
ca:
  address: 127.0.0.1:$CA_PORT
  bundle: $2/bundle.pem
  token_file: join.token
svid:
  ttl: $4
  dir: svid
admin: 127.0.0.1:$(free_port)
YAML
  # trust_domain is the ID's authority
  sed -i "s|^trust_domain: \([^/]*\)/.*|trust_domain: \1|" "$1/agent.yaml"
}

# agent_start DIR: sets AGENT_PID; logs to DIR/agent.log.
agent_start() {
  "$LANYARD" agent -c "$1/agent.yaml" >>"$1/agent.log" 2>&1 &
  AGENT_PID=$!
  PIDS+=("$AGENT_PID")
}

serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }

# nginx_start DIR PORT [extra server-block lines]: nginx serving DIR/www
# on 127.0.0.1:PORT (NGINX_LISTEN_OPTS=" ssl" for TLS); sets NGINX_PID.
nginx_start() {
  local dir=$1 port=$2 extra=${3:-}
  mkdir -p "$dir/www" "$dir/tmp"
  cat >"$dir/nginx.conf" <<NGINX
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log $dir/access.log;
  client_body_temp_path $dir/tmp;
  proxy_temp_path $dir/tmp;
  fastcgi_temp_path $dir/tmp;
  uwsgi_temp_path $dir/tmp;
  scgi_temp_path $dir/tmp;
  server {
    listen 127.0.0.1:$port${NGINX_LISTEN_OPTS:-};
    root $dir/www;
    $extra
  }
}
NGINX
  nginx -p "$dir" -c "$dir/nginx.conf" >>"$dir/nginx.log" 2>&1 &
  NGINX_PID=$!
  PEERS+=("$NGINX_PID")
  wait_port 127.0.0.1 "$port" 10
}

# agent_yaml DIR ID CA_DIR: writes DIR/agent.yaml's identity part (a join
# token for ID); listeners are appended by the caller.
agent_yaml() {
  local dir=$1 id=$2 ca=$3
  mkdir -p "$dir"
  "$LANYARD" ca token -c "$ca/ca.yaml" --spiffe-id "$id" --ttl 10m >"$dir/join.token"
  local td=${id#spiffe://}
  cat >"$dir/agent.yaml" <<YAML
trust_domain: ${td%%/*}
spiffe_id: $id
ca:
  address: 127.0.0.1:$CA_PORT
  bundle: $ca/bundle.pem
  token_file: join.token
svid:
  ttl: ${SVID_TTL:-10m}
  dir: svid
admin: 127.0.0.1:$(free_port)
YAML
  mkdir -p "$dir/svid"
}

# agent_run DIR: starts the agent and waits for its SVID; sets AGENT_PID.
agent_run() {
  "$LANYARD" agent -c "$1/agent.yaml" --log-level debug >>"$1/agent.log" 2>&1 &
  AGENT_PID=$!
  PIDS+=("$AGENT_PID")
  wait_file "$1/svid/svid.pem" 15
}

# explicit_pair TD [YAML]: a CA, nginx serving $T/nginx/www, and two
# agents on explicit listeners: api (server listener on SERVER_PORT to
# nginx, admitting web) and web (client listener on CLIENT_PORT to api,
# expecting api). YAML (top-level keys) goes into both agents' configs.
# Sets API, WEB, NGINX_PORT, SERVER_PORT and CLIENT_PORT.
explicit_pair() {
  local td=$1 extra=${2:-}
  API=spiffe://$td/ns/default/sa/api
  WEB=spiffe://$td/ns/default/sa/web
  ca_setup "$T/ca" "$td"
  ca_start "$T/ca"
  NGINX_PORT=$(free_port)
  nginx_start "$T/nginx" "$NGINX_PORT"
  SERVER_PORT=$(free_port)
  agent_yaml "$T/api" "$API" "$T/ca"
  cat >>"$T/api/agent.yaml" <<YAML
$extra
listeners:
  - name: api
    mode: server
    listen: 127.0.0.1:$SERVER_PORT
    forward: 127.0.0.1:$NGINX_PORT
    allow: [$WEB]
YAML
  check "server agent (api) gets its SVID" agent_run "$T/api"
  CLIENT_PORT=$(free_port)
  agent_yaml "$T/web" "$WEB" "$T/ca"
  cat >>"$T/web/agent.yaml" <<YAML
$extra
listeners:
  - name: api
    mode: client
    listen: 127.0.0.1:$CLIENT_PORT
    connect: 127.0.0.1:$SERVER_PORT
    expect: $API
YAML
  check "client agent (web) gets its SVID" agent_run "$T/web"
}

# need_tools TOOL...: exits 77 (skipped) unless every tool is installed
# and this is root (network namespaces).
need_tools() {
  local tool
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null; then
      echo "skipped: $tool is not installed"
      exit 77
    fi
  done
  if [ "$(id -u)" -ne 0 ]; then
    echo "skipped: needs root for network namespaces"
    exit 77
  fi
}

# mesh_suite [TOOL...]: the start of a suite on the local mesh
# (deploy/local/mesh.sh). Skips (77) without root or a tool; takes the
# machine's mesh lock (the namespaces have fixed names: one mesh at a
# time); fails if a mesh is already up; and makes sure the mesh goes away
# whatever happens (MESH_STATE: the suite's state directory, if it gives
# one to `mesh up`).
mesh_suite() {
  need_tools ip iptables-restore setpriv setsid nginx curl flock "$@"
  MESH=$LY_SOURCE_DIR/deploy/local/mesh.sh
  exec 9>/run/lock/lanyard-mesh.lock
  # The game-day suite holds the mesh for about four minutes.
  flock -w 900 9 || { echo "FAIL - another mesh test holds the lock"; exit 1; }
  # The mesh's namespaces (other suites have ly-* namespaces of their own).
  MESH_NS='^(ly-node|ly-ca|ly-web|ly-api|ly-legacy)( |$)'
  # A live mesh is someone's (its namespaces have fixed names); names
  # left over with nothing running are removed by `mesh up`.
  if "$MESH" status >/dev/null 2>&1 9>&-; [ $? -ne 3 ]; then
    echo "FAIL - a local mesh is already up (deploy/local/mesh.sh down)"
    exit 1
  fi
  chmod 0711 "$T" # the agents (UID 1337) read their files below $T
  trap mesh_cleanup EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
}
# mesh.sh, without the lock's descriptor (its daemons must not hold it)
mesh() { "$MESH" "$@" 9>&-; }
# The mesh's processes (whoever started them, in its namespaces), then
# lib.sh's cleanup.
mesh_cleanup() {
  mesh down ${MESH_STATE:+--state "$MESH_STATE"} >/dev/null 2>&1 || true
  cleanup
}

td_of() { local t=${1#spiffe://}; echo "${t%%/*}"; }

# svid_for ID DIR [TTL]: an SVID with an openssl-made key, via ca_probe;
# writes DIR/cert.pem and DIR/key.pem. SVID_CA (the CA directory),
# SVID_CA_ADDR (its RPC address) and SVID_NS (a network namespace to run
# the probe in) point it at another CA.
svid_for() {
  local id=$1 dir=$2 ttl=${3:-600}
  mkdir -p "$dir"
  openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null |
    openssl pkey -out "$dir/key.pem" 2>/dev/null
  openssl req -new -key "$dir/key.pem" -subj "/O=test" \
    -addext "subjectAltName=URI:$id" -outform DER -out "$dir/csr.der" 2>/dev/null
  ${SVID_NS:+ip netns exec "$SVID_NS"} \
    "$CA_PROBE" --ca "${SVID_CA_ADDR:-127.0.0.1:$CA_PORT}" --bundle "${SVID_CA:-$T/ca}/bundle.pem" \
    --td "$(td_of "$id")" sign --csr "$dir/csr.der" --ttl "$ttl" \
    --join-token "$("$LANYARD" ca token -c "${SVID_CA:-$T/ca}/ca.yaml" --spiffe-id "$id")" \
    --out "$dir/cert.pem" >/dev/null
}
