#!/usr/bin/env bash
# Builds the images the container suites share (CTest fixture
# containers.image), once per run: the base debian:bookworm-slim when the
# engine lacks it (base_image.sh, cached under CACHE_DIR), then Lanyard's
# image from deploy/docker/Dockerfile and the demo app image, exactly as
# a user builds them. Prints the final image's size.
#
#   image.sh STATE_DIR CACHE_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export LY_CONTAINERS_STATE=${LY_CONTAINERS_STATE:-$1}
. "$here/lib.sh"
require_engine
cache=$2
started=$(date +%s)
bash "$here/base_image.sh" "$cache"
echo "image: building $LY_IMAGE from deploy/docker/Dockerfile"
# The build stage is tagged too (lanyard-build:test), so that the one
# this build used is never dangling; those of earlier builds are, and go
# (760 MB each, one per source change otherwise).
build_tag="${LY_IMAGE%%:*}-build:${LY_IMAGE##*:}"
if ! { "$DOCKER" build -f "$LY_SOURCE_DIR/deploy/docker/Dockerfile" --target build \
  -t "$build_tag" "$LY_SOURCE_DIR" &&
  "$DOCKER" build -f "$LY_SOURCE_DIR/deploy/docker/Dockerfile" -t "$LY_IMAGE" \
    "$LY_SOURCE_DIR"; } >"$LY_CSTATE/image-build.log" 2>&1; then
  tail -40 "$LY_CSTATE/image-build.log"
  echo "image: docker build failed"
  exit 1
fi
"$DOCKER" image prune -f --filter label=org.lanyard.stage=build >/dev/null
"$DOCKER" build -t "$LY_APP_IMAGE" "$LY_SOURCE_DIR/deploy/compose/app" \
  >"$LY_CSTATE/app-build.log" 2>&1 || { tail -20 "$LY_CSTATE/app-build.log"; exit 1; }
size=$("$DOCKER" image inspect -f '{{.Size}}' "$LY_IMAGE")
echo "image: $LY_IMAGE is $((size / 1024)) KiB ($(awk -v s="$size" 'BEGIN { printf "%.1f MB", s / 1e6 }')), built in $(($(date +%s) - started)) s"
# The final stage must hold no shell: the probe and every command are
# the binary itself.
if "$DOCKER" run --rm --entrypoint /bin/sh "$LY_IMAGE" -c true >/dev/null 2>&1; then
  echo "image: FAIL - the image has a shell"
  exit 1
fi
[ "$("$DOCKER" image inspect -f '{{.Config.User}}' "$LY_IMAGE")" = 1337:1337 ] ||
  { echo "image: FAIL - the image does not run as 1337"; exit 1; }
"$DOCKER" run --rm "$LY_IMAGE" version
# The init step, as a Kubernetes init container runs it: root with
# NET_ADMIN, in a fresh namespace, with the image's own iptables-restore.
if ! out=$("$DOCKER" run --rm --user 0 --cap-add NET_ADMIN "$LY_IMAGE" iptables 2>&1) ||
  ! grep -q "event=iptables_installed family=ipv4" <<<"$out"; then
  echo "$out"
  echo "image: FAIL - lanyard iptables does not work in the image"
  exit 1
fi
echo "image: the init step (lanyard iptables) installs its rules"
