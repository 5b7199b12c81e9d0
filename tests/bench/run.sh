#!/usr/bin/env bash
# The benchmark: Lanyard side by side with the proxies a user could pick
# instead, on loopback, in one run, with the same certificates.
#
#   tests/bench/run.sh [--quick] [--out DIR] [--no-ca]
#
# Peers (each a client-side proxy -> server-side proxy pair in front of
# the same backends, except `direct`):
#   direct         the client talks to the backend: the machine's limit
#   lanyard        client agent (client listener) -> server agent (server
#                  listener), mTLS with Lanyard SVIDs
#   stunnel        a stunnel client -> a stunnel server, mutual TLS
#   haproxy        an HAProxy client -> an HAProxy server, mutual TLS
#   haproxy-plain  the same HAProxy pair without TLS: the limit for two
#                  proxy hops
# Every TLS peer uses TLS 1.3 with TLS_AES_128_GCM_SHA256, P-256 key
# exchange, and ECDSA P-256 certificates issued by the same Lanyard CA.
#
# Figures: bulk throughput (iperf3, the median of three runs), request latency p50/p99 on one
# keep-alive connection and at a fixed rate on 16 connections (h2load),
# new connections per second with a new connection per request (wrk with
# Connection: close; the median of three runs), idle RSS of each proxy and its growth per idle
# proxied connection (1,000 and 10,000), CPU seconds per GB and per 1,000
# handshakes, vCPU per 1,000 requests/s; and the CA's certificates issued
# per second against cfssl (tests/bench/ca_bench.sh).
#
# Prints one table with the ratio of Lanyard to each peer, writes
# results.tsv, machine.txt and PNG charts (gnuplot) into --out (default
# tests/bench/results), and leaves nothing running. --quick (the smoke
# test in tests/run.sh) runs every figure briefly and smaller: its numbers
# only show that each peer produced one. Needs root for the packages
# (installed when missing) and to raise the file limit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$(cd "$here/../.." && pwd)
QUICK=0
NO_CA=0
OUT=$here/results
while [ $# -gt 0 ]; do
  case $1 in
  --quick) QUICK=1 ;;
  --no-ca) NO_CA=1 ;;
  --out) OUT=$2; shift ;;
  -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

# A proxy holds two sockets per proxied connection: 10,000 idle
# connections need 20,000 descriptors and some to spare. Where the hard
# limit is lower (containers), the big count is what fits.
ulimit -n "$(ulimit -Hn)"
fd_limit=$(ulimit -n)
BIG_IDLE=10000
if [ "$fd_limit" != unlimited ] && [ "$fd_limit" -lt 20500 ]; then
  BIG_IDLE=$(((fd_limit - 500) / 2 / 1000 * 1000))
fi
if [ "$QUICK" = 1 ]; then
  T=1 REQS=300 RPS=50 IDLE_COUNTS=(100) BULK_RUNS=1
else
  T=8 REQS=20000 RPS=125 IDLE_COUNTS=(1000) BULK_RUNS=3
  [ "$BIG_IDLE" -gt 1000 ] && IDLE_COUNTS+=("$BIG_IDLE")
fi
CONNS=16

# ---- tools and binaries ---------------------------------------------------

need_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || { echo "run.sh: install ${missing[*]} (needs root)" >&2; exit 1; }
  echo "installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o DPkg::Lock::Timeout=600 "${missing[@]}" >&2 || {
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  }
}
"$root/deploy/deps.sh" test
need_packages iperf3 wrk nghttp2-client haproxy stunnel4 nginx-light golang-cfssl gnuplot-nox python3

BUILD=${BUILD:-$root/build}
if [ -z "${LANYARD:-}" ]; then
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$BUILD" -DLANYARD_WOLFSSL_WORKDIR="$root/.cache/wolfssl-src" \
      -DLANYARD_WOLFSSL_PREFIX="$root/.cache/wolfssl" >/dev/null
  fi
  cmake --build "$BUILD" -j"$(nproc)" --target lanyard ca_probe ca_load >/dev/null
  LANYARD=$BUILD/lanyard
fi
CA_PROBE=${CA_PROBE:-$(dirname "$LANYARD")/tests/ca_probe}
CA_LOAD=${CA_LOAD:-$(dirname "$LANYARD")/tests/ca_load}
export LANYARD CA_PROBE CA_LOAD


W=$(mktemp -d /tmp/lanyard-bench.XXXXXX)
PORTS_GIVEN=$W/ports.given
chmod 0711 "$W" # nginx workers (www-data) read $W/nginx/www
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  [ -n "${KEEP:-}" ] && echo "kept $W" >&2 || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

spawn() { # name command...: background daemon, logs in $W/NAME.log
  local name=$1; shift
  "$@" >"$W/$name.log" 2>&1 &
  PIDS+=($!)
  eval "PID_${name//-/_}=$!"
}
pid_of() { local v="PID_${1//-/_}"; echo "${!v}"; }
rss_kb() { # pid
  awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}
HZ=$(getconf CLK_TCK)

# ---- the CA, certificates, backends ----------------------------------------

TD=bench.local
SERVER_ID=spiffe://$TD/ns/bench/sa/server
CLIENT_ID=spiffe://$TD/ns/bench/sa/client
CA_PORT=$(free_port)
"$LANYARD" ca init --trust-domain "$TD" --dir "$W/ca" --listen "127.0.0.1:$CA_PORT" \
  --admin "127.0.0.1:$(free_port)" >/dev/null
spawn ca "$LANYARD" ca serve -c "$W/ca/ca.yaml"
wait_port "$CA_PORT"

# svid NAME ID: an openssl key and a Lanyard SVID for it, as PEM files
# (NAME.key, NAME.pem: leaf then intermediate), for stunnel and HAProxy.
svid() {
  local dir=$W/certs
  mkdir -p "$dir"
  openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkey -out "$dir/$1.key"
  openssl req -new -key "$dir/$1.key" -subj "/O=bench" -addext "subjectAltName=URI:$2" \
    -outform DER -out "$dir/$1.csr" 2>/dev/null
  "$CA_PROBE" --ca "127.0.0.1:$CA_PORT" --bundle "$W/ca/bundle.pem" --td "$TD" sign \
    --csr "$dir/$1.csr" --ttl 7200 \
    --join-token "$("$LANYARD" ca token -c "$W/ca/ca.yaml" --spiffe-id "$2")" \
    --out "$dir/$1.pem" >/dev/null
  cat "$dir/$1.pem" "$dir/$1.key" >"$dir/$1.haproxy.pem"
}
svid server "$SERVER_ID"
svid client "$CLIENT_ID"

# Backends: nginx (a 1 KiB file, keep-alive), iperf3, and the idle holder.
NGINX_PORT=$(free_port) IPERF_PORT=$(free_port) IDLE_PORT=$(free_port)
mkdir -p "$W/nginx/www" "$W/nginx/tmp"
head -c 1024 /dev/urandom >"$W/nginx/www/1k.bin"
cat >"$W/nginx/nginx.conf" <<NGINX
daemon off;
master_process on;
worker_processes 2;
worker_rlimit_nofile $fd_limit;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log;
events { worker_connections $((fd_limit - 100)); }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $W/nginx/tmp;
  proxy_temp_path $W/nginx/tmp;
  fastcgi_temp_path $W/nginx/tmp;
  uwsgi_temp_path $W/nginx/tmp;
  scgi_temp_path $W/nginx/tmp;
  server { listen 127.0.0.1:$NGINX_PORT backlog=4096; root $W/nginx/www; }
}
NGINX
spawn nginx nginx -p "$W/nginx" -c "$W/nginx/nginx.conf"
spawn iperf3 iperf3 -s -p "$IPERF_PORT"
spawn idle python3 "$here/idle.py" serve "$IDLE_PORT"
for p in "$NGINX_PORT" "$IPERF_PORT" "$IDLE_PORT"; do wait_port "$p"; done

SERVICES=(http bulk idle)
declare -A BACKEND=([http]=$NGINX_PORT [bulk]=$IPERF_PORT [idle]=$IDLE_PORT)
declare -A ENTRY     # ENTRY[peer.service]: the port a client connects to
declare -A PROCS     # PROCS[peer]: "client-pid server-pid"
PEERS=(direct lanyard stunnel haproxy haproxy-plain)
for s in "${SERVICES[@]}"; do ENTRY[direct.$s]=${BACKEND[$s]}; done

# ---- lanyard ------------------------------------------------------------------

agent() { # NAME ID: the identity part of an agent config
  mkdir -p "$W/$1/svid"
  "$LANYARD" ca token -c "$W/ca/ca.yaml" --spiffe-id "$2" --ttl 1h >"$W/$1/join.token"
  cat >"$W/$1/agent.yaml" <<YAML
trust_domain: $TD
spiffe_id: $2
ca:
  address: 127.0.0.1:$CA_PORT
  bundle: $W/ca/bundle.pem
  token_file: join.token
svid:
  ttl: 2h
  dir: svid
admin: 127.0.0.1:$(free_port)
listeners:
YAML
}
agent lanyard-server "$SERVER_ID"
agent lanyard-client "$CLIENT_ID"
for s in "${SERVICES[@]}"; do
  sp=$(free_port) cp=$(free_port)
  cat >>"$W/lanyard-server/agent.yaml" <<YAML
  - name: $s
    mode: server
    listen: 127.0.0.1:$sp
    forward: 127.0.0.1:${BACKEND[$s]}
    allow: [$CLIENT_ID]
YAML
  cat >>"$W/lanyard-client/agent.yaml" <<YAML
  - name: $s
    mode: client
    listen: 127.0.0.1:$cp
    connect: 127.0.0.1:$sp
    expect: $SERVER_ID
YAML
  ENTRY[lanyard.$s]=$cp
done
spawn lanyard-server "$LANYARD" agent -c "$W/lanyard-server/agent.yaml"
spawn lanyard-client "$LANYARD" agent -c "$W/lanyard-client/agent.yaml"
PROCS[lanyard]="$(pid_of lanyard-client) $(pid_of lanyard-server)"

# ---- stunnel ---------------------------------------------------------------

TLS_SUITE=TLS_AES_128_GCM_SHA256
stunnel_conf() { # client|server
  echo "foreground = yes"
  echo "pid ="
  echo "debug = 3"
  for s in "${SERVICES[@]}"; do
    echo "[$s]"
    if [ "$1" = server ]; then
      echo "accept = 127.0.0.1:${STUNNEL_SERVER[$s]}"
      echo "connect = 127.0.0.1:${BACKEND[$s]}"
      echo "cert = $W/certs/server.pem"
      echo "key = $W/certs/server.key"
    else
      echo "client = yes"
      echo "accept = 127.0.0.1:${ENTRY[stunnel.$s]}"
      echo "connect = 127.0.0.1:${STUNNEL_SERVER[$s]}"
      echo "cert = $W/certs/client.pem"
      echo "key = $W/certs/client.key"
    fi
    echo "CAfile = $W/ca/bundle.pem"
    echo "verifyChain = yes"
    echo "requireCert = yes"
    echo "sslVersionMin = TLSv1.3"
    echo "ciphersuites = $TLS_SUITE"
    echo "curves = prime256v1"
  done
}
declare -A STUNNEL_SERVER
for s in "${SERVICES[@]}"; do
  STUNNEL_SERVER[$s]=$(free_port)
  ENTRY[stunnel.$s]=$(free_port)
done
stunnel_conf server >"$W/stunnel-server.conf"
stunnel_conf client >"$W/stunnel-client.conf"
spawn stunnel-server stunnel "$W/stunnel-server.conf"
spawn stunnel-client stunnel "$W/stunnel-client.conf"
PROCS[stunnel]="$(pid_of stunnel-client) $(pid_of stunnel-server)"

# ---- haproxy (with and without TLS) -----------------------------------------

haproxy_conf() { # client|server tls|plain
  local side=$1 tls=$2 s
  cat <<CFG
global
  maxconn $(((fd_limit - 200) / 2))
  ssl-default-bind-ciphersuites $TLS_SUITE
  ssl-default-server-ciphersuites $TLS_SUITE
  ssl-default-bind-options ssl-min-ver TLSv1.3
  ssl-default-server-options ssl-min-ver TLSv1.3
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
CFG
  for s in "${SERVICES[@]}"; do
    local peer=haproxy
    [ "$tls" = plain ] && peer=haproxy-plain
    if [ "$side" = server ]; then
      echo "listen $s"
      if [ "$tls" = tls ]; then
        echo "  bind 127.0.0.1:${HAPROXY_SERVER[$peer.$s]} ssl crt $W/certs/server.haproxy.pem ca-file $W/ca/bundle.pem verify required curves P-256"
      else
        echo "  bind 127.0.0.1:${HAPROXY_SERVER[$peer.$s]}"
      fi
      echo "  server backend 127.0.0.1:${BACKEND[$s]}"
    else
      echo "listen $s"
      echo "  bind 127.0.0.1:${ENTRY[$peer.$s]}"
      if [ "$tls" = tls ]; then
        echo "  server up 127.0.0.1:${HAPROXY_SERVER[$peer.$s]} ssl crt $W/certs/client.haproxy.pem ca-file $W/ca/bundle.pem verify required"
      else
        echo "  server up 127.0.0.1:${HAPROXY_SERVER[$peer.$s]}"
      fi
    fi
  done
}
declare -A HAPROXY_SERVER
for peer in haproxy haproxy-plain; do
  for s in "${SERVICES[@]}"; do
    HAPROXY_SERVER[$peer.$s]=$(free_port)
    ENTRY[$peer.$s]=$(free_port)
  done
done
haproxy_conf server tls >"$W/haproxy-server.cfg"
haproxy_conf client tls >"$W/haproxy-client.cfg"
haproxy_conf server plain >"$W/haproxy-plain-server.cfg"
haproxy_conf client plain >"$W/haproxy-plain-client.cfg"
for n in haproxy-server haproxy-client haproxy-plain-server haproxy-plain-client; do
  spawn "$n" haproxy -db -f "$W/$n.cfg"
done
PROCS[haproxy]="$(pid_of haproxy-client) $(pid_of haproxy-server)"
PROCS[haproxy-plain]="$(pid_of haproxy-plain-client) $(pid_of haproxy-plain-server)"

for peer in "${PEERS[@]}"; do
  for s in "${SERVICES[@]}"; do wait_port "${ENTRY[$peer.$s]}"; done
done
# The Lanyard pair is up once both agents hold their SVIDs.
for _ in $(seq 1 100); do
  [ -s "$W/lanyard-server/svid/svid.pem" ] && [ -s "$W/lanyard-client/svid/svid.pem" ] && break
  sleep 0.1
done
check_path() { # peer: one request through it
  curl -sf -o /dev/null -m 5 "http://127.0.0.1:${ENTRY[$1.http]}/1k.bin" ||
    { echo "run.sh: no answer through $1" >&2; return 1; }
}
for peer in "${PEERS[@]}"; do check_path "$peer"; done

# ---- measurements --------------------------------------------------------------

RESULTS=$W/results.tsv # peer figure value
: >"$RESULTS"
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; }
pcts() { # h2load log -> "p50_ms p99_ms" of successful requests
  python3 - "$1" <<'PY'
import sys
d = sorted(int(l.split("\t")[2]) for l in open(sys.argv[1]) if l.split("\t")[1] == "200")
if not d:
    print("nan nan")
else:
    q = lambda p: d[min(len(d) - 1, int(p * len(d)))] / 1000.0
    print("%.3f %.3f" % (q(0.50), q(0.99)))
PY
}

# bulk PEER: "Gbit/s CPU-s/GB" of the median of BULK_RUNS iperf3 runs (a
# single run on a shared machine moves by a tenth from one to the next).
bulk() {
  local i before after json runs=()
  for i in $(seq 1 "$BULK_RUNS"); do
    before=$(cpu_ticks ${PROCS[$1]:-})
    json=$(iperf3 -c 127.0.0.1 -p "${ENTRY[$1.bulk]}" -t "$T" -J)
    after=$(cpu_ticks ${PROCS[$1]:-})
    runs+=("$(python3 -c '
import json, sys
d = json.loads(sys.argv[1])
bps = d["end"]["sum_received"]["bits_per_second"]
gb = d["end"]["sum_received"]["bytes"] / 1e9
cpu = (int(sys.argv[3]) - int(sys.argv[2])) / int(sys.argv[4])
print("%.2f %s" % (bps / 1e9, ("%.2f" % (cpu / gb)) if sys.argv[5] != "direct" else "-"))
' "$json" "$before" "$after" "$HZ" "$1")")
  done
  printf '%s\n' "${runs[@]}" | sort -n | sed -n "$(((BULK_RUNS + 1) / 2))p"
}

latency_one() { # peer: one keep-alive connection
  local log=$W/h2-$1-one.log
  h2load --h1 -c1 -n "$REQS" --log-file="$log" "http://127.0.0.1:${ENTRY[$1.http]}/1k.bin" >/dev/null
  pcts "$log"
}

# latency_rate PEER: 16 connections at RPS requests/s each; "p50 p99
# vCPU-per-1000-req/s", the rate being what h2load got answered.
latency_rate() {
  local log=$W/h2-$1-rate.log before after cpu answered
  before=$(cpu_ticks ${PROCS[$1]:-})
  h2load --h1 -c"$CONNS" -t2 --rps "$RPS" -D "$T" --log-file="$log" \
    "http://127.0.0.1:${ENTRY[$1.http]}/1k.bin" >/dev/null
  after=$(cpu_ticks ${PROCS[$1]:-})
  answered=$(awk -F'\t' '$2 == 200' "$log" | wc -l)
  cpu=$(awk -v a="$after" -v b="$before" -v hz="$HZ" -v t="$T" -v r=$((answered / T)) -v n="$(wc -w <<<"${PROCS[$1]:-}")" \
    'BEGIN { if (n == 0 || r == 0) print "-"; else printf "%.4f", (a - b) / hz / t / n * 1000 / r }')
  echo "$(pcts "$log") $cpu"
}

# conn_rate PEER: a new connection per request; "conns/s CPU-s/1000" of
# the median of BULK_RUNS runs (as noisy as bulk transfers).
conn_rate() {
  local i out before after rps reqs runs=()
  for i in $(seq 1 "$BULK_RUNS"); do
    before=$(cpu_ticks ${PROCS[$1]:-})
    out=$(wrk -t2 -c"$CONNS" -d"${T}s" -H "Connection: close" "http://127.0.0.1:${ENTRY[$1.http]}/1k.bin")
    after=$(cpu_ticks ${PROCS[$1]:-})
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    if grep -q "Non-2xx\|Socket errors" <<<"$out"; then
      echo "run.sh: $1: $(grep -E "Non-2xx|Socket errors" <<<"$out")" >&2
    fi
    runs+=("$(awk -v r="$rps" -v n="$reqs" -v a="$after" -v b="$before" -v hz="$HZ" -v p="$1" \
      'BEGIN { printf "%.0f %s\n", r, (p == "direct" ? "-" : sprintf("%.3f", (a - b) / hz / n * 1000)) }')")
  done
  printf '%s\n' "${runs[@]}" | sort -n | sed -n "$(((BULK_RUNS + 1) / 2))p"
}

idle_rss() { # peer count: KB per connection for each proxy process (client
  # server), then each one's RSS in KB once the connections have closed
  local pids=(${PROCS[$1]:-}) before=() p i out
  [ ${#pids[@]} -gt 0 ] || { echo "- - - -"; return; }
  for p in "${pids[@]}"; do before+=("$(rss_kb "$p")"); done
  coproc HOLD { python3 "$here/idle.py" open "127.0.0.1:${ENTRY[$1.idle]}" "$2"; }
  local hold_pid=$HOLD_PID
  read -r out <&"${HOLD[0]}"
  sleep 1
  local per=()
  for i in "${!pids[@]}"; do
    per+=("$(awk -v a="$(rss_kb "${pids[$i]}")" -v b="${before[$i]}" -v n="$2" 'BEGIN { printf "%.1f", (a - b) / n }')")
  done
  exec {HOLD[1]}>&-
  wait "$hold_pid" 2>/dev/null || true
  [ "$out" = "ready $2" ] || { echo "run.sh: $1: $2 idle connections: $out" >&2; echo "- - - -"; return; }
  # What each process still holds after the burst: Lanyard gives freed
  # heap back on a 2 s timer; others keep what their allocator keeps.
  sleep 3
  local after=()
  for i in "${!pids[@]}"; do after+=("$(rss_kb "${pids[$i]}")"); done
  echo "${per[*]} ${after[*]}"
}

echo "measuring (${T}s per figure$([ "$QUICK" = 1 ] && echo ', quick'))..." >&2
for peer in "${PEERS[@]}"; do
  echo "  $peer" >&2
  side=client
  for p in ${PROCS[$peer]:-}; do
    record "$peer" "idle_rss_kb_$side" "$(rss_kb "$p")"
    side=server
  done
  read -r gbps cpu_gb <<<"$(bulk "$peer")"
  record "$peer" bulk_gbps "$gbps"
  record "$peer" cpu_s_per_gb "$cpu_gb"
  read -r p50 p99 <<<"$(latency_one "$peer")"
  record "$peer" one_conn_p50_ms "$p50"
  record "$peer" one_conn_p99_ms "$p99"
  read -r p50 p99 vcpu <<<"$(latency_rate "$peer")"
  record "$peer" rate16_p50_ms "$p50"
  record "$peer" rate16_p99_ms "$p99"
  record "$peer" vcpu_per_1000rps "$vcpu"
  read -r cps cpu_hs <<<"$(conn_rate "$peer")"
  record "$peer" conns_per_s "$cps"
  record "$peer" cpu_s_per_1000_conns "$cpu_hs"
  for n in "${IDLE_COUNTS[@]}"; do
    read -r c s ac as <<<"$(idle_rss "$peer" "$n")"
    record "$peer" "kb_per_idle_conn_${n}_client" "$c"
    record "$peer" "kb_per_idle_conn_${n}_server" "$s"
    record "$peer" "rss_kb_after_${n}_client" "$ac"
    record "$peer" "rss_kb_after_${n}_server" "$as"
  done
done

if [ "$NO_CA" = 0 ]; then
  echo "  ca vs cfssl" >&2
  OUT=$W/ca-bench DURATION=$([ "$QUICK" = 1 ] && echo 1 || echo 5) \
    bash "$here/ca_bench.sh" $([ "$QUICK" = 1 ] && echo --quick) >&2
  while IFS=$'\t' read -r name per_s _; do
    record "$name" certs_per_s "$per_s"
  done <"$W/ca-bench/ca.tsv"
fi

# ---- report -----------------------------------------------------------------

mkdir -p "$OUT"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "cores: $(nproc)"
  echo "kernel: $(uname -r)"
  echo "quick: $QUICK (${T}s per figure)"
  "$LANYARD" version | sed 's/^/lanyard: /'
  if [ -f "$root/.cache/wolfssl/.lanyard-stamp" ]; then
    echo "wolfssl build: $(cat "$root/.cache/wolfssl/.lanyard-stamp")"
  fi
  echo "peers: stunnel $(stunnel -version 2>&1 | awk '/^stunnel/ {print $2; exit}'), HAProxy $(haproxy -v | awk 'NR == 1 {print $3}'), $(openssl version), cfssl $(cfssl version | awk '/Version/ {print $2}')"
} >"$OUT/machine.txt"
cp "$RESULTS" "$OUT/results.tsv"
python3 "$here/report.py" "$OUT" | tee "$OUT/table.md"
if command -v gnuplot >/dev/null; then
  python3 "$here/report.py" --charts "$OUT" >/dev/null
fi
echo "results in $OUT" >&2
if [ "$QUICK" = 1 ]; then # the smoke test: every peer produced every figure
  python3 "$here/report.py" --check "$OUT"
fi
