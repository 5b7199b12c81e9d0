# shellcheck shell=bash
# Shared by the container suites (sourced). Environment from CTest:
# LY_SOURCE_DIR, LY_CONTAINERS_STATE (the fixture's state directory).
# Debian's engine and compose, by full path: another `docker` may come
# first on PATH.
set -euo pipefail
DOCKER=${DOCKER:-/usr/bin/docker}
COMPOSE_BIN=${COMPOSE_BIN:-/usr/bin/docker-compose}
LY_CSTATE=${LY_CONTAINERS_STATE:?LY_CONTAINERS_STATE must be set}
LY_IMAGE=${LY_IMAGE:-lanyard:test}
LY_APP_IMAGE=${LY_APP_IMAGE:-lanyard-demo-app:test}
export LANYARD_IMAGE=$LY_IMAGE LANYARD_APP_IMAGE=$LY_APP_IMAGE
mkdir -p "$LY_CSTATE"

# Skip (77) only when the engine fixture found that no engine can run.
require_engine() {
  if ! "$DOCKER" info >/dev/null 2>&1; then
    if [ -e "$LY_CSTATE/unavailable" ]; then
      echo "skip: $(cat "$LY_CSTATE/unavailable")"
      exit 77
    fi
    echo "FAIL - no Docker engine answers (the containers.engine fixture should have started one)"
    exit 1
  fi
}

require_images() {
  require_engine
  local i
  for i in "$LY_IMAGE" "$LY_APP_IMAGE"; do
    "$DOCKER" image inspect "$i" >/dev/null 2>&1 ||
      { echo "FAIL - image $i missing (the containers.image fixture builds it)"; exit 1; }
  done
}

# Projects of earlier runs that died before their `down` (named
# lytest<pid>, lytestx<pid> or, a gameday --compose's, lanyard-gameday-<pid>;
# the pid no longer running) hold the fixed subnet: remove their
# containers, networks and volumes first.
remove_stale_projects() {
  local project pid
  for project in $("$DOCKER" ps -a --format '{{.Label "com.docker.compose.project"}}' 2>/dev/null;
    "$DOCKER" network ls --format '{{.Label "com.docker.compose.project"}}' 2>/dev/null;
    "$DOCKER" volume ls --format '{{.Label "com.docker.compose.project"}}' 2>/dev/null); do
    [[ $project =~ ^(lytestx?|lanyard-gameday-)([0-9]+)$ ]] || continue
    pid=${BASH_REMATCH[2]}
    kill -0 "$pid" 2>/dev/null && continue
    echo "removing what the dead test run $project left"
    "$DOCKER" ps -aq --filter "label=com.docker.compose.project=$project" | xargs -r "$DOCKER" rm -f >/dev/null
    "$DOCKER" network ls -q --filter "label=com.docker.compose.project=$project" | xargs -r "$DOCKER" network rm >/dev/null
    "$DOCKER" volume ls -q --filter "label=com.docker.compose.project=$project" | xargs -r "$DOCKER" volume rm -f >/dev/null
  done
}

# compose FILE PROJECT ARGS...: docker-compose v1 from Debian, in
# deploy/compose (paths in the files are relative to it).
compose() {
  local file=$1 project=$2
  shift 2
  (cd "$LY_SOURCE_DIR/deploy/compose" && "$COMPOSE_BIN" --ansi never -f "$file" -p "$project" "$@")
}

# container PROJECT SERVICE: the container's name (compose v1 naming).
container() { echo "${1}_${2}_1"; }

health() { "$DOCKER" inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$1" 2>/dev/null; }

# wait_healthy CONTAINER SECONDS
wait_healthy() {
  local i
  for i in $(seq 1 $(($2 * 2))); do
    [ "$(health "$1")" = healthy ] && return 0
    sleep 0.5
  done
  return 1
}

# The Linux bridge of a Docker network: br-<first 12 of its ID>.
bridge_of() { echo "br-$("$DOCKER" network inspect -f '{{.Id}}' "$1" | cut -c1-12)"; }

# The network namespace of a container's process.
netns_of() { readlink "/proc/$("$DOCKER" inspect -f '{{.State.Pid}}' "$1")/ns/net"; }

# Nothing of PROJECT left: containers, networks, volumes (by compose's
# project label). Prints what is left.
leftovers() {
  local f="label=com.docker.compose.project=$1"
  "$DOCKER" ps -aq --filter "$f"
  "$DOCKER" network ls -q --filter "$f"
  "$DOCKER" volume ls -q --filter "$f"
}

# tls_records PCAP: how many TCP segments start a TLS record (content
# type 0x14..0x17, then version 0x03).
tls_records() {
  tcpdump -nn -r "$1" \
    'tcp[((tcp[12] & 0xf0) >> 2)] >= 0x14 and tcp[((tcp[12] & 0xf0) >> 2)] <= 0x17 and tcp[((tcp[12] & 0xf0) >> 2) + 1] = 0x03' \
    2>/dev/null | wc -l
}

# A random marker for a request: it must never show on the wire.
marker() { echo "lanyard-marker-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"; }
