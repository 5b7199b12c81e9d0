# shellcheck shell=bash
# Helpers shared by the benchmark scripts (sourced). Messages name the
# script that sourced this file.

# free_port: never the same port twice in one run (free_port.py); the
# script sets PORTS_GIVEN to a file in its work directory.
free_port() {
  python3 "$(dirname "${BASH_SOURCE[0]}")/../tools/free_port.py" "${PORTS_GIVEN:?}"
}

wait_port() { # port: the server is up when it accepts a connection
  local _
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$(basename "$0"): nothing listens on port $1" >&2
  return 1
}

# cpu_ticks PID...: user + system clock ticks of whole processes (all
# threads), summed. Fields are counted after the ")" that ends comm,
# which may hold spaces: utime is the 12th, stime the 13th.
cpu_ticks() {
  local p t=0
  for p in "$@"; do
    t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
  done
  echo "$t"
}
