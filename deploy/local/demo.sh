#!/usr/bin/env bash
# The local demo: a CA and two workload agents on loopback, with short-lived
# identities so you can watch them being issued and rotated.
#
#   deploy/local/demo.sh [--duration SECONDS] [--ttl 20s]
#
# Installs what is missing (Debian 12, as root), builds, runs, and stops
# cleanly on Ctrl-C or after --duration, leaving nothing running.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
duration=0
ttl=20s
while [ $# -gt 0 ]; do
  case "$1" in
  --duration) duration=$2; shift 2 ;;
  --ttl) ttl=$2; shift 2 ;;
  -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
  *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

deploy/deps.sh
# LANYARD=/path/to/lanyard uses that binary (the tests do) instead of build/.
if [ -z "${LANYARD:-}" ] && { [ ! -x build/lanyard ] || [ -n "$(find agent include proto -newer build/lanyard -print -quit)" ]; }; then
  echo "building lanyard..."
  cmake -S . -B build -DLANYARD_WOLFSSL_WORKDIR="$root/.cache/wolfssl-src" \
    -DLANYARD_WOLFSSL_PREFIX="$root/.cache/wolfssl" >/dev/null
  cmake --build build -j"$(nproc)" --target lanyard >/dev/null
fi
L=${LANYARD:-$root/build/lanyard}
work=$(mktemp -d /tmp/lanyard-demo.XXXXXX)
pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping..."
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
  echo "stopped; nothing left running."
}
trap stop INT TERM EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
TD=demo.lanyard.local
ca_port=$(port)
"$L" ca init --trust-domain $TD --dir "$work/ca" --listen 127.0.0.1:$ca_port \
  --admin 127.0.0.1:$(port) >/dev/null
"$L" ca serve -c "$work/ca/ca.yaml" >"$work/ca.log" 2>&1 &
pids+=($!)

for name in frontend backend; do
  id=spiffe://$TD/ns/demo/sa/$name
  mkdir -p "$work/$name/svid"
  "$L" ca token -c "$work/ca/ca.yaml" --spiffe-id "$id" --ttl 5m >"$work/$name/join.token"
  cat >"$work/$name/agent.yaml" <<YAML
trust_domain: $TD
spiffe_id: $id
ca:
  address: 127.0.0.1:$ca_port
  bundle: $work/ca/bundle.pem
  token_file: join.token
svid:
  ttl: $ttl
  dir: svid
admin: 127.0.0.1:$(port)
YAML
  "$L" agent -c "$work/$name/agent.yaml" >"$work/$name.log" 2>&1 &
  pids+=($!)
done

echo "Lanyard demo: CA on 127.0.0.1:$ca_port, trust domain $TD, SVID TTL $ttl"
echo "workloads: frontend, backend (Ctrl-C to stop)"
echo
start=$SECONDS
declare -A last
while [ "$duration" -eq 0 ] || [ $((SECONDS - start)) -lt "$duration" ]; do
  for name in frontend backend; do
    f=$work/$name/svid/svid.pem
    [ -s "$f" ] || continue
    serial=$(openssl x509 -in "$f" -noout -serial 2>/dev/null | cut -d= -f2) || continue
    if [ "${last[$name]:-}" != "$serial" ]; then
      what=$([ -z "${last[$name]:-}" ] && echo "issued " || echo "rotated")
      last[$name]=$serial
      id=$(openssl x509 -in "$f" -noout -ext subjectAltName | tail -1 | sed 's/ *URI://')
      until=$(openssl x509 -in "$f" -noout -enddate | cut -d= -f2)
      printf '%s  %-8s %s  %s  serial %.16s…  valid until %s\n' \
        "$(date +%T)" "$name" "$what" "$id" "$serial" "$until"
    fi
  done
  sleep 1
done
