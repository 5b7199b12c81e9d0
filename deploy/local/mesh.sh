#!/usr/bin/env bash
# The local mesh: Kubernetes-like pods made of Linux network namespaces,
# with no Docker and no change to the host's own network.
#
#   deploy/local/mesh.sh up [--mode strict|permissive] [--ttl 20s] [--state DIR]
#   deploy/local/mesh.sh down [--state DIR]
#   deploy/local/mesh.sh status [--state DIR]
#   deploy/local/mesh.sh exec POD CMD...     (POD: ca, web, api, legacy, node)
#
# Layout (trust domain mesh.local, IDs spiffe://mesh.local/ns/default/sa/<pod>):
#   ly-node    the node: bridge ly-br0, 10.77.0.1/24 and fd00:77::1/64
#   ly-ca      10.77.0.10  lanyard ca serve on 10.77.0.10:15012
#   ly-web     10.77.0.20  lanyard agent + lanyard iptables (its app is
#                          whatever you run with `mesh.sh exec web ...`)
#   ly-api     10.77.0.21  lanyard agent + lanyard iptables + nginx on :8080;
#                          its inbound allow admits web on port 8080
#   ly-legacy  10.77.0.40  no agent: nginx on :8080, plaintext only
# Each pod is joined to the bridge by a veth pair (eth0 in the pod). Agents
# run as UID 1337 with --log-level debug. State (the CA, configs, logs,
# pids) lives under --state DIR (default /tmp/lanyard-mesh). Needs root.
# LANYARD=/path/to/lanyard uses that binary instead of build/lanyard.
set -euo pipefail

self=$(readlink -f "$0")
root=$(cd "$(dirname "$self")/../.." && pwd)

TD=mesh.local
PROXY_UID=1337
AS_PROXY=(setpriv --reuid "$PROXY_UID" --regid "$PROXY_UID" --clear-groups --)
PODS=(ca web api legacy)   # every pod, in start order
AGENT_PODS=(web api)       # pods with an agent
NODE_NS=ly-node
BRIDGE=ly-br0
NET4=10.77.0
NET6=fd00:77:
CA_ADDR=$NET4.10:15012
MARK=.lanyard-mesh         # marks a directory as a mesh state directory
STATE_LINK=/run/lanyard-mesh.state # where the running mesh keeps its state

declare -A HOST=([ca]=10 [web]=20 [api]=21 [legacy]=40 [node]=1)

die() { echo "mesh.sh: $*" >&2; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$self"; }

ns_of() { # POD -> its namespace
  case "$1" in
  ly-*) echo "$1" ;;
  node) echo "$NODE_NS" ;;
  *) echo "ly-$1" ;;
  esac
}
ip4() { echo "$NET4.${HOST[$1]}"; }
ip6() { echo "$NET6:${HOST[$1]}"; }
in_ns() { local ns; ns=$(ns_of "$1"); shift; ip netns exec "$ns" "$@"; }
ns_exists() { [ -e "/run/netns/$1" ]; }
all_ns() { local p; for p in "${PODS[@]}"; do ns_of "$p"; done; echo "$NODE_NS"; }
# The mesh is live while a process runs in one of its namespaces. Names
# left in /run/netns with nothing running (a run killed with SIGKILL, a
# machine restored from a snapshot: then not even a namespace is mounted
# there) are left over: `up` removes them instead of refusing.
mesh_live() {
  local ns
  for ns in $(all_ns); do
    ns_exists "$ns" && [ -n "$(ip netns pids "$ns" 2>/dev/null)" ] && return 0
  done
  return 1
}
leftover_ns() { local ns; for ns in $(all_ns); do ns_exists "$ns" && echo "$ns"; done; }
remove_leftovers() {
  local ns
  for ns in $(leftover_ns); do
    ip netns del "$ns" 2>/dev/null || rm -f "/run/netns/$ns"
    echo "mesh.sh: removed namespace $ns, left over with nothing running in it" >&2
  done
}
ipv6_on() { [ -e /proc/sys/net/ipv6 ] && [ "$(cat /proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null || echo 1)" = 0 ]; }

need_root() { [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, iptables)"; }

# The binary: $LANYARD, or build/lanyard (built when missing or older
# than the sources, as demo.sh did).
find_lanyard() {
  if [ -n "${LANYARD:-}" ]; then
    [ -x "$LANYARD" ] || die "LANYARD=$LANYARD is not an executable"
    L=$LANYARD
    return
  fi
  L=$root/build/lanyard
  if [ ! -x "$L" ] || [ -n "$(cd "$root" && find agent include proto -newer "$L" -print -quit)" ]; then
    "$root/deploy/deps.sh" demo
    "$root/deploy/build.sh"
  fi
}

need_tools() {
  local t missing=0
  for t in ip iptables-restore setpriv setsid nginx openssl curl; do
    command -v "$t" >/dev/null || missing=1
  done
  [ "$missing" -eq 0 ] || "$root/deploy/deps.sh" demo
}

# --state: given, else the running mesh's, else the default.
resolve_state() {
  if [ -z "$STATE" ]; then
    if [ -s "$STATE_LINK" ]; then STATE=$(cat "$STATE_LINK"); else STATE=/tmp/lanyard-mesh; fi
  fi
  STATE=$(readlink -m "$STATE")
}

# ---- daemons -----------------------------------------------------------

# _run STATE NAME NS UID CMD...: runs CMD in NS as UID (0: root), logging
# to STATE/logs/NAME.log; records its PID, then its exit status. mesh.sh
# starts it with setsid, so the daemons outlive the script and a Ctrl-C
# on the terminal never reaches them (`down` stops them).
run_daemon() {
  local state=$1 name=$2 ns=$3 uid=$4
  shift 4
  local cmd=(ip netns exec "$ns")
  [ "$uid" = 0 ] || cmd+=(setpriv --reuid "$uid" --regid "$uid" --clear-groups --)
  "${cmd[@]}" "$@" >>"$state/logs/$name.log" 2>&1 </dev/null &
  local pid=$! rc=0
  echo "$pid" >"$state/run/$name.pid.tmp"
  mv "$state/run/$name.pid.tmp" "$state/run/$name.pid"
  wait "$pid" || rc=$?
  echo "$rc" >"$state/run/$name.rc.tmp"
  mv "$state/run/$name.rc.tmp" "$state/run/$name.rc"
}

# spawn NAME POD UID CMD...: a daemon in POD; waits for its PID file.
spawn() {
  local name=$1 ns uid=$3
  ns=$(ns_of "$2")
  shift 3
  setsid "$self" _run "$STATE" "$name" "$ns" "$uid" "$@" </dev/null >/dev/null 2>&1 &
  for _ in $(seq 1 50); do
    [ -s "$STATE/run/$name.pid" ] && return 0
    sleep 0.1
  done
  die "$name did not start"
}

running() { # NAME: its PID when it is running
  local f=$STATE/run/$1.pid pid
  [ -s "$f" ] || return 1
  pid=$(cat "$f")
  [ -e "$STATE/run/$1.rc" ] && return 1
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

wait_tcp() { # POD HOST PORT SECONDS
  for _ in $(seq 1 $(($4 * 10))); do
    # shellcheck disable=SC2016 # expanded by the inner bash
    in_ns "$1" bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$2" "$3" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# wait_listen POD PORT SECONDS: something listens on PORT in POD (without
# connecting: a direct connection to a capture port is refused and logged).
wait_listen() {
  for _ in $(seq 1 $(($3 * 10))); do
    [ -n "$(in_ns "$1" ss -Hltn "sport = :$2" 2>/dev/null)" ] && return 0
    sleep 0.1
  done
  return 1
}

wait_file() { # PATH SECONDS
  for _ in $(seq 1 $(($2 * 10))); do
    [ -s "$1" ] && return 0
    sleep 0.1
  done
  return 1
}

# Show why something did not come up.
explain() { # NAME
  echo "--- last lines of $STATE/logs/$1.log" >&2
  tail -15 "$STATE/logs/$1.log" >&2 2>/dev/null || true
}

# ---- up ------------------------------------------------------------------

net_up() {
  local pod ns v6=0
  ipv6_on && v6=1
  ip netns add "$NODE_NS"
  ip -n "$NODE_NS" link set lo up
  ip -n "$NODE_NS" link add "$BRIDGE" type bridge
  ip -n "$NODE_NS" addr add "$(ip4 node)/24" dev "$BRIDGE"
  [ "$v6" = 0 ] || ip -n "$NODE_NS" addr add "$(ip6 node)/64" dev "$BRIDGE" nodad
  ip -n "$NODE_NS" link set "$BRIDGE" up
  for pod in "${PODS[@]}"; do
    ns=$(ns_of "$pod")
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    # Both ends are made inside the node: the host never sees them.
    ip -n "$NODE_NS" link add "veth-$pod" type veth peer name eth0 netns "$ns"
    ip -n "$NODE_NS" link set "veth-$pod" master "$BRIDGE" up
    ip -n "$ns" addr add "$(ip4 "$pod")/24" dev eth0
    [ "$v6" = 0 ] || ip -n "$ns" addr add "$(ip6 "$pod")/64" dev eth0 nodad
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "$(ip4 node)"
  done
}

ca_up() {
  local dir=$STATE/ca
  "$L" ca init --trust-domain "$TD" --dir "$dir" --listen "$CA_ADDR" \
    --admin 127.0.0.1:15014 >/dev/null
  spawn ca ca 0 "$L" ca serve -c "$dir/ca.yaml"
  # asked of the kernel: a connection that sends nothing would show up
  # in the CA's log as a failed handshake
  wait_listen ca "${CA_ADDR##*:}" 30 || { explain ca; die "the CA did not start listening on $CA_ADDR"; }
}

# The app: nginx on :8080 (all addresses, like a pod's container), with
# an access log that shows the X-Marker header of each request.
app_up() { # POD
  local pod=$1 dir=$STATE/pods/$1/app
  mkdir -p "$dir/www" "$dir/tmp"
  echo "hello from $pod" >"$dir/www/index.html"
  cat >"$dir/nginx.conf" <<NGINX
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $STATE/logs/$pod.app-error.log;
events { worker_connections 1024; }
http {
  log_format mesh '\$remote_addr [\$time_local] "\$request" \$status \$body_bytes_sent marker="\$http_x_marker"';
  access_log $STATE/logs/$pod.access.log mesh;
  client_body_temp_path $dir/tmp;
  proxy_temp_path $dir/tmp;
  fastcgi_temp_path $dir/tmp;
  uwsgi_temp_path $dir/tmp;
  scgi_temp_path $dir/tmp;
  server {
    listen 8080;
    $(ipv6_on && echo "listen [::]:8080 ipv6only=on;")
    root $dir/www;
  }
}
NGINX
  spawn "$pod.app" "$pod" 0 nginx -p "$dir" -c "$dir/nginx.conf"
  wait_tcp "$pod" 127.0.0.1 8080 15 || { explain "$pod.app"; die "nginx in $pod did not start"; }
}

agent_config() { # POD
  local pod=$1 dir=$STATE/pods/$1 id v6=0 p
  ipv6_on && v6=1
  id=spiffe://$TD/ns/default/sa/$pod
  mkdir -p "$dir/svid"
  "$L" ca token -c "$STATE/ca/ca.yaml" --spiffe-id "$id" --ttl 24h >"$dir/join.token"
  cp "$STATE/ca/bundle.pem" "$dir/bundle.pem"
  {
    cat <<YAML
trust_domain: $TD
spiffe_id: $id
ca:
  address: $CA_ADDR
  bundle: bundle.pem
  token_file: join.token
svid:
  ttl: $TTL
  dir: svid
admin: 127.0.0.1:15020
report:
  interval: 1s
workers: 2
mode: $MODE
inbound:
  port: 15006
YAML
    if [ "$pod" = api ]; then
      cat <<YAML
  allow:
    - ports: [8080]
      from: [spiffe://$TD/ns/default/sa/web]
YAML
    fi
    # Only the pods with an agent are meshed: the others (the CA,
    # legacy) are reached in plaintext (passthrough).
    echo "outbound:"
    echo "  port: 15001"
    echo "  meshed:"
    for p in "${AGENT_PODS[@]}"; do
      echo "    - $(ip4 "$p")/32"
      [ "$v6" = 0 ] || echo "    - $(ip6 "$p")/128"
    done
    echo "  unmeshed: passthrough"
  } >"$dir/agent.yaml"
  chown -R "$PROXY_UID:$PROXY_UID" "$dir"
  chmod 0700 "$dir"
  chmod 0600 "$dir/join.token"
}

# Like the init container, before anything else runs in the pod.
iptables_up() { # POD
  local out
  if ! out=$(in_ns "$1" "$L" iptables 2>&1); then
    echo "$out" >&2
    die "lanyard iptables failed in $1"
  fi
}

agent_up() { # POD
  local pod=$1 dir=$STATE/pods/$1 out
  if ! out=$(in_ns "$pod" "${AS_PROXY[@]}" "$L" agent -c "$dir/agent.yaml" --check 2>&1); then
    echo "$out" >&2
    die "the agent config of $pod does not check (is $STATE reachable by UID $PROXY_UID?)"
  fi
  spawn "$pod.agent" "$pod" "$PROXY_UID" "$L" agent -c "$dir/agent.yaml" --log-level debug
}

up() {
  need_root
  need_tools
  find_lanyard
  mesh_live && die "a mesh is up (processes run in its namespaces); run '$0 down' first"
  remove_leftovers
  if [ -e "$STATE" ] && [ ! -e "$STATE/$MARK" ] && [ -n "$(ls -A "$STATE")" ]; then
    die "$STATE is not empty and is not a mesh state directory"
  fi
  # From here on, a failure takes down what was started.
  trap 'rc=$?; if [ $rc -ne 0 ]; then echo "mesh.sh: up failed; cleaning up" >&2; down >/dev/null 2>&1 || true; fi' EXIT
  mkdir -p "$STATE"
  rm -rf "${STATE:?}/ca" "$STATE/pods" "$STATE/logs" "$STATE/run" "$STATE/mesh.env"
  touch "$STATE/$MARK"
  # The agents (UID 1337) must reach their directories below $STATE.
  chmod 0755 "$STATE"
  mkdir -p "$STATE/logs" "$STATE/run" "$STATE/pods"
  chmod 0755 "$STATE/pods"
  printf 'MODE=%s\nTTL=%s\n' "$MODE" "$TTL" >"$STATE/mesh.env"
  echo "$STATE" >"$STATE_LINK"

  net_up
  ca_up
  local pod
  for pod in "${AGENT_PODS[@]}"; do
    agent_config "$pod"
    iptables_up "$pod"
  done
  app_up api
  app_up legacy
  for pod in "${AGENT_PODS[@]}"; do agent_up "$pod"; done
  for pod in "${AGENT_PODS[@]}"; do
    wait_file "$STATE/pods/$pod/svid/svid.pem" 30 || { explain "$pod.agent"; die "the $pod agent got no SVID"; }
    wait_listen "$pod" 15006 10 || { explain "$pod.agent"; die "the $pod agent is not listening on 15006"; }
  done
  trap - EXIT
  status
}

# ---- down ----------------------------------------------------------------

# stop_ns NS SECONDS: SIGTERM to every process in NS, then SIGKILL to
# whatever is still there after SECONDS.
stop_ns() {
  local ns=$1 pids
  ns_exists "$ns" || return 0
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  [ -n "$pids" ] || return 0
  # shellcheck disable=SC2086 # one PID per word
  kill -TERM $pids 2>/dev/null || true
  for _ in $(seq 1 $(($2 * 10))); do
    [ -z "$(ip netns pids "$ns" 2>/dev/null || true)" ] && return 0
    sleep 0.1
  done
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  echo "mesh.sh: killing what did not stop in $ns: $pids" >&2
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
  for _ in $(seq 1 30); do
    [ -z "$(ip netns pids "$ns" 2>/dev/null || true)" ] && return 0
    sleep 0.1
  done
}

down() {
  need_root
  local pod ns f
  # Pods first (the agents drain, up to 15 s), then the CA and the node:
  # every process in a namespace of the mesh, whoever started it.
  local jobs=()
  for pod in web api legacy; do
    stop_ns "$(ns_of "$pod")" 20 &
    jobs+=($!)
  done
  wait "${jobs[@]}" # only these: `up` cleaning up has daemon wrappers as children
  stop_ns "$(ns_of ca)" 10
  stop_ns "$NODE_NS" 5
  # The wrappers record each exit status as their daemon ends.
  if [ -d "$STATE/run" ]; then
    for f in "$STATE"/run/*.pid; do
      [ -e "$f" ] || continue
      wait_file "${f%.pid}.rc" 5 || true
      rm -f "$f"
    done
  fi
  # Veths and the bridge live inside the namespaces and go with them.
  for ns in $(all_ns); do
    if ns_exists "$ns"; then ip netns del "$ns"; fi
  done
  if [ -s "$STATE_LINK" ] && [ "$(cat "$STATE_LINK")" = "$STATE" ]; then rm -f "$STATE_LINK"; fi
  echo "mesh down (logs kept in $STATE/logs)"
}

# ---- status --------------------------------------------------------------

procs_of() { # POD: the processes mesh.sh runs in it
  case "$1" in
  ca) echo ca ;;
  legacy) echo legacy.app ;;
  api) echo api.agent api.app ;;
  *) echo "$1.agent" ;;
  esac
}

proc_state() { # NAME
  local pid
  if pid=$(running "$1"); then
    echo "running (pid $pid)"
  elif [ -e "$STATE/run/$1.rc" ]; then
    echo "EXITED (status $(cat "$STATE/run/$1.rc"))"
  else
    echo "not running"
  fi
}

identity() { # POD: its SPIFFE ID and expiry, from the agent's svid dir
  local f=$STATE/pods/$1/svid/svid.pem id until
  [ -s "$f" ] || { echo "no identity yet"; return; }
  id=$(openssl x509 -in "$f" -noout -ext subjectAltName 2>/dev/null | tail -1 | sed 's/ *URI://')
  until=$(date -d "$(openssl x509 -in "$f" -noout -enddate 2>/dev/null | cut -d= -f2)" +%T 2>/dev/null || echo '?')
  echo "$id until $until"
}

# status: exits 0 when every pod and process is up, 1 when something is
# missing, 3 when the mesh is down.
status() {
  local ns up=0 bad=0 pod proc role what
  for ns in $(all_ns); do ns_exists "$ns" && up=$((up + 1)); done
  if [ "$up" -eq 0 ]; then
    echo "mesh: down"
    return 3
  fi
  if ! mesh_live; then
    echo "mesh: down (namespaces left over with nothing running: $(leftover_ns | xargs); 'up' or 'down' removes them)"
    return 3
  fi
  local mode='?' ttl='?'
  if [ -s "$STATE/mesh.env" ]; then
    mode=$(sed -n 's/^MODE=//p' "$STATE/mesh.env")
    ttl=$(sed -n 's/^TTL=//p' "$STATE/mesh.env")
  fi
  echo "mesh: up (trust domain $TD, mode $mode, SVID TTL $ttl, state $STATE)"
  if ns_exists "$NODE_NS"; then
    printf '  %-7s %-11s bridge %s\n' node "$(ip4 node)" "$BRIDGE"
  else
    printf '  %-7s namespace %s MISSING\n' node "$NODE_NS"
    bad=1
  fi
  for pod in "${PODS[@]}"; do
    ns=$(ns_of "$pod")
    if ! ns_exists "$ns"; then
      printf '  %-7s namespace %s MISSING\n' "$pod" "$ns"
      bad=1
      continue
    fi
    for proc in $(procs_of "$pod"); do
      running "$proc" >/dev/null || bad=1
      role=${proc#*.}
      case "$role" in
      agent) what=$(identity "$pod") ;;
      app) what="nginx :8080" ;;
      ca) what="lanyard ca serve on $CA_ADDR" ;;
      esac
      [ "$pod" != legacy ] || what="$what, no agent"
      printf '  %-7s %-11s %-6s %-20s %s\n' "$pod" "$(ip4 "$pod")" "$role" "$(proc_state "$proc")" "$what"
    done
  done
  [ "$bad" -eq 0 ] || return 1
}

# ---- main ----------------------------------------------------------------

verb=${1:-}
[ $# -gt 0 ] && shift
case "$verb" in
_run) run_daemon "$@"; exit ;;
exec)
  [ $# -ge 2 ] || die "usage: mesh.sh exec POD CMD..."
  ns=$(ns_of "$1")
  shift
  ns_exists "$ns" || die "no namespace $ns: is the mesh up?"
  exec ip netns exec "$ns" "$@"
  ;;
-h | --help | help | "") usage; exit 0 ;;
esac

MODE=strict
TTL=20s
STATE=
while [ $# -gt 0 ]; do
  case "$1" in
  --mode) MODE=${2:-}; shift 2 || die "--mode needs a value" ;;
  --ttl) TTL=${2:-}; shift 2 || die "--ttl needs a value" ;;
  --state) STATE=${2:-}; shift 2 || die "--state needs a value" ;;
  *) die "unknown option $1 (try --help)" ;;
  esac
done
case "$MODE" in strict | permissive) ;; *) die "--mode: strict or permissive" ;; esac
resolve_state

case "$verb" in
up) up ;;
down) down ;;
status) status ;;
*) die "unknown command '$verb' (up, down, status, exec)" ;;
esac
