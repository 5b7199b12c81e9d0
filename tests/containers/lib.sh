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

# Which compose runs the files: v1 (Debian 12's docker-compose 1.29, the
# default) or v2 (the `docker compose` plugin users of Docker's own
# packages have). Debian 12 packages no v2: fetch_compose_v2 takes Debian
# 13's docker-compose 2.x package and uses its plugin from a cache.
LY_COMPOSE=${LY_COMPOSE:-v1}
LY_COMPOSE_V2_DIR=${LY_COMPOSE_V2_DIR:-$LY_SOURCE_DIR/.cache/compose-v2}

# fetch_compose_v2: the plugin in $LY_COMPOSE_V2_DIR/cli-plugins, from
# Debian 13 (trixie) through apt with its own lists, so the archive's
# signature is checked; nothing is installed on the host.
fetch_compose_v2() {
  local d=$LY_COMPOSE_V2_DIR
  DOCKER_CONFIG=$d "$DOCKER" compose version >/dev/null 2>&1 && return 0
  rm -rf "$d/apt" "$d/pkg" && mkdir -p "$d/apt/lists/partial" "$d/apt/archives/partial" "$d/pkg" "$d/cli-plugins"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" >"$d/apt/sources.list"
  local apt=(-q -o "Dir::Etc::SourceList=$d/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$d/apt/lists" -o "Dir::Cache=$d/apt" -o APT::Sandbox::User=root)
  if ! { apt-get "${apt[@]}" update &&
    (cd "$d/pkg" && apt-get "${apt[@]}" download docker-compose/trixie) &&
    dpkg-deb -x "$d"/pkg/docker-compose_*.deb "$d/pkg/root" &&
    install -m 0755 "$d/pkg/root/usr/libexec/docker/cli-plugins/docker-compose" "$d/cli-plugins/"; } >"$d/apt/log" 2>&1; then
    cat "$d/apt/log"
    return 1
  fi
  rm -rf "$d/apt" "$d/pkg"
  DOCKER_CONFIG=$d "$DOCKER" compose version
}

# compose FILE PROJECT ARGS...: in deploy/compose (paths in the files are
# relative to it).
compose() {
  local file=$1 project=$2
  shift 2
  if [ "$LY_COMPOSE" = v2 ]; then
    (cd "$LY_SOURCE_DIR/deploy/compose" &&
      DOCKER_CONFIG=$LY_COMPOSE_V2_DIR "$DOCKER" compose --ansi never -f "$file" -p "$project" "$@")
  else
    (cd "$LY_SOURCE_DIR/deploy/compose" && "$COMPOSE_BIN" --ansi never -f "$file" -p "$project" "$@")
  fi
}

# container PROJECT SERVICE: the container's name (v1 joins with _, v2 with -).
container() {
  if [ "$LY_COMPOSE" = v2 ]; then echo "${1}-${2}-1"; else echo "${1}_${2}_1"; fi
}

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
