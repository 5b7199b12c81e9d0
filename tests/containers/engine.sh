#!/usr/bin/env bash
# The container suites' engine (CTest fixture containers.engine):
#
#   engine.sh start STATE_DIR   uses the running Docker engine, or starts
#                               Debian's dockerd and records its PID
#   engine.sh stop STATE_DIR    stops the dockerd that `start` started,
#                               and nothing else
#
# Exit 77 (skip) only when no engine can run here at all; the suites then
# skip too (they find STATE_DIR/unavailable).
set -euo pipefail
cmd=$1
state=$2
docker=${DOCKER:-/usr/bin/docker}
mkdir -p "$state"
pidfile=$state/dockerd.pid

case "$cmd" in
start)
  rm -f "$state/unavailable"
  unavailable() { echo "$*" | tee "$state/unavailable" >&2; exit 77; }
  if "$docker" info >/dev/null 2>&1; then
    echo "engine: using the running Docker engine ($("$docker" version -f '{{.Server.Version}}'))"
    exit 0
  fi
  [ -x /usr/sbin/dockerd ] || unavailable "engine: no dockerd (apt-get install docker.io)"
  [ "$(id -u)" -eq 0 ] || unavailable "engine: starting dockerd needs root"
  echo "engine: starting dockerd (log: $state/dockerd.log)"
  # setsid: the daemon outlives this fixture script, until `stop`.
  setsid /usr/sbin/dockerd --pidfile "$pidfile" >"$state/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 120); do
    "$docker" info >/dev/null 2>&1 && { echo "engine: dockerd ready"; exit 0; }
    kill -0 $! 2>/dev/null || break
    sleep 0.5
  done
  tail -15 "$state/dockerd.log" >&2
  kill $! 2>/dev/null || true
  rm -f "$pidfile"
  unavailable "engine: dockerd did not start (see above)"
  ;;
stop)
  [ -s "$pidfile" ] || { echo "engine: left running (this run did not start it)"; exit 0; }
  pid=$(cat "$pidfile")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -f "$pidfile"
  echo "engine: stopped the dockerd this run started (pid $pid)"
  ;;
*) echo "usage: engine.sh start|stop STATE_DIR" >&2; exit 2 ;;
esac
