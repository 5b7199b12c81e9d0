#!/usr/bin/env bash
# The local demo: the local mesh (deploy/local/mesh.sh: a CA pod and two
# pods with an agent, as network namespaces), live traffic from web to api
# over mTLS, and short-lived identities so you can watch them being issued
# and rotated.
#
#   deploy/local/demo.sh [--duration SECONDS] [--ttl 20s]
#
# Installs what is missing (Debian 12, as root), builds, runs, and stops
# cleanly on Ctrl-C or after --duration, leaving nothing running.
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=0
ttl=20s
while [ $# -gt 0 ]; do
  case "$1" in
  --duration) duration=$2; shift 2 ;;
  --ttl) ttl=$2; shift 2 ;;
  -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" -ne 0 ]; then
  echo "demo.sh needs root: the mesh is made of network namespaces" >&2
  exit 1
fi

deploy/deps.sh demo
mesh=deploy/local/mesh.sh
API_URL=http://10.77.0.21:8080/
state=$(mktemp -d /tmp/lanyard-demo.XXXXXX)
results=$state/requests.txt # one line per request: ok or failed
started=0
traffic=

tally() { # prints "N ok, M failed"
  local ok failed
  ok=$(grep -c '^ok$' "$results" 2>/dev/null || true)
  failed=$(grep -c '^failed$' "$results" 2>/dev/null || true)
  echo "${ok:-0} ok, ${failed:-0} failed"
}

stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping..."
  if [ -n "$traffic" ]; then
    kill "$traffic" 2>/dev/null || true
    wait "$traffic" 2>/dev/null || true
  fi
  if [ "$started" = 1 ]; then
    echo "requests web -> api: $(tally)"
    "$mesh" down --state "$state" >/dev/null || true
  fi
  rm -rf "$state"
  echo "stopped; nothing left running."
}
trap stop EXIT
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM

rc=0
"$mesh" status >/dev/null 2>&1 || rc=$?
if [ "$rc" -ne 3 ]; then # 3: down
  echo "a local mesh is already up (or left over): stop it first with $mesh down" >&2
  exit 1
fi
# The daemons run in their own sessions: a Ctrl-C reaches only this
# script, which stops them with `mesh.sh down`.
started=1
"$mesh" up --state "$state" --ttl "$ttl"
lanyard=$(readlink -f "${LANYARD:-build/lanyard}") # built by mesh.sh up
echo
echo "Lanyard demo: a local mesh of network namespaces, trust domain mesh.local, SVID TTL $ttl"
echo "pods: ca 10.77.0.10 (lanyard ca serve), web 10.77.0.20 (agent), api 10.77.0.21 (agent + nginx :8080), legacy 10.77.0.40 (no agent)"
echo "traffic: web's app calls $API_URL every 0.5 s (plain HTTP; the agents make it mTLS)"
echo "look around: $mesh status | $mesh exec ca $lanyard mesh --watch | $mesh exec api $lanyard status | logs in $state/logs"
echo "(Ctrl-C to stop)"
echo

# web's "application": curl in the web pod, knowing nothing of Lanyard.
: >"$results"
(
  trap 'exit 0' TERM
  while :; do
    if "$mesh" exec web curl -sf -m 3 -o /dev/null "$API_URL"; then
      echo ok
    else
      echo failed
    fi >>"$results"
    sleep 0.5
  done
) </dev/null &
traffic=$!

start=$SECONDS
next_report=$((SECONDS + 5))
declare -A last
while [ "$duration" -eq 0 ] || [ $((SECONDS - start)) -lt "$duration" ]; do
  for name in web api; do
    f=$state/pods/$name/svid/svid.pem
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
  if [ "$SECONDS" -ge "$next_report" ]; then
    next_report=$((SECONDS + 5))
    # The CA's mesh-wide report: what the agents themselves counted.
    rates=$("$mesh" exec ca "$lanyard" mesh --full-ids --window 1m 2>/dev/null | awk '
      $1 ~ /sa\/api$/ { api = "api inbound " $2 " " $3 }
      $1 ~ /sa\/web$/ { web = "web outbound " $4 " " $5 }
      END { if (api || web) print api ", " web; else print "no report yet" }')
    printf '%s  requests web -> api: %s; mTLS success, last minute: %s\n' \
      "$(date +%T)" "$(tally)" "$rates"
  fi
  sleep 1
done
