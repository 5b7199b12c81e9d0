#!/usr/bin/env bash
# One libFuzzer smoke run, for CTest: a fresh copy of the committed seeds
# (libFuzzer adds what it finds to its corpus directory, and the seeds in
# the source tree stay as they are), then the target for a fixed time.
# A crash, leak, UB report or timeout leaves its input in WORKDIR/artifacts.
#
# usage: run_target.sh TARGET SEEDS WORKDIR SECONDS
set -euo pipefail
target=$1 seeds=$2 work=$3 seconds=$4

rm -rf "$work/corpus"
mkdir -p "$work/corpus" "$work/artifacts"
cp "$seeds"/* "$work/corpus/"
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec "$target" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=1024 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus"
