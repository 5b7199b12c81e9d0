#!/usr/bin/env bash
# The CA benchmark: certificates issued per second, with authenticated
# requests, by `lanyard ca serve` and by `cfssl serve`, on loopback.
#
#   LANYARD=... CA_LOAD=... CA_PROBE=... [DURATION=5] [OUT=dir] \
#     tests/bench/ca_bench.sh [--quick]
#
# Rows of $OUT/ca.tsv (no header; tab-separated):
#   name  per_second  p50_ms  p99_ms  cpu_s
#   lanyard-join    Sign with a join token (HMAC-SHA256 token, TLS 1.3)
#   lanyard-mtls    Sign as an mTLS renewal: the client presents its SVID,
#                   which the CA re-verifies against its bundle per call
#   cfssl-authsign  POST /api/v1/cfssl/authsign, the request HMAC-SHA256'd
#                   with a shared auth key (plain HTTP/1.1, keep-alive)
# cpu_s is the server's CPU time (user + system, /proc/PID/stat) over the
# measured window.
#
# Fairness: both CAs sign with the same intermediate and key (the files
# `lanyard ca init` wrote), ECDSA P-256 with SHA-256, the same CSR, 16
# keep-alive connections with one request outstanding on each. Each
# server is pinned to CPU 0 (taskset) and cfssl runs with GOMAXPROCS=1,
# since Lanyard's CA is single-threaded; the load generators run on CPU 1.
# Both log every issuance at their default level to a file.
# Differences: cfssl (Debian's 1.2.0 snapshot of 2016) drops the CSR's URI
# SAN (it predates URI SAN support), so its certificates have no SAN;
# cfssl speaks plain HTTP where Lanyard speaks TLS 1.3; a cfssl auth token
# is bound to the request bytes, a join token to a SPIFFE ID (and is
# checked against the CSR's ID).
#
# Starts and stops everything itself, in a temporary directory, and
# leaves nothing running. --quick: DURATION=1.
set -euo pipefail

DURATION=${DURATION:-5}
while [ $# -gt 0 ]; do
  case $1 in
  --quick) DURATION=1 ;;
  -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  *) echo "ca_bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
: "${LANYARD:?LANYARD must point at the lanyard binary}"
: "${CA_LOAD:?CA_LOAD must point at tests/ca_load}"
: "${CA_PROBE:?CA_PROBE must point at tests/ca_probe}"
# wrk takes whole seconds only
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || { echo "ca_bench.sh: DURATION must be whole seconds" >&2; exit 2; }
OUT=${OUT:-$PWD/ca-bench}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

CONNS=16
TD=bench.local
ID=spiffe://$TD/ns/bench/sa/load
SERVER_CPU=0
CLIENT_CPU=1
if [ "$(nproc)" -lt 2 ]; then
  echo "ca_bench.sh: one CPU: the load generator shares it with the server" >&2
  CLIENT_CPU=0
fi
CLK_TCK=$(getconf CLK_TCK)

T=$(mktemp -d /tmp/lanyard-cabench.XXXXXX)
PORTS_GIVEN=$T/ports.given
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT

# ---- helpers ----------------------------------------------------------------

. "$(dirname "$0")/lib.sh" # free_port, wait_port, cpu_ticks

cpu_seconds() { # ticks_before ticks_after
  awk -v a="$1" -v b="$2" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / hz }'
}

# field NAME LINE: the value of NAME=value in a key=value line
field() {
  tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2 }'
}

row() { # name per_second p50_ms p99_ms cpu_s
  printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$OUT/ca.tsv"
}

# ---- Lanyard ------------------------------------------------------------------

LY_PORT=
LY_PID=
TOKEN=

lanyard_start() {
  LY_PORT=$(free_port)
  "$LANYARD" ca init --trust-domain "$TD" --dir "$T/ca" \
    --listen "127.0.0.1:$LY_PORT" --admin "127.0.0.1:$(free_port)" >/dev/null
  taskset -c "$SERVER_CPU" "$LANYARD" ca serve -c "$T/ca/ca.yaml" 2>"$T/lanyard.log" &
  LY_PID=$!
  PIDS+=("$LY_PID")
  wait_port "$LY_PORT"
  TOKEN=$("$LANYARD" ca token -c "$T/ca/ca.yaml" --spiffe-id "$ID" --ttl 1h)
}

# One P-256 key and CSR (made by openssl) for every request of both CAs.
make_csr() {
  openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null |
    openssl pkey -out "$T/key.pem" 2>/dev/null
  openssl req -new -key "$T/key.pem" -subj "/O=bench" \
    -addext "subjectAltName=URI:$ID" -outform DER -out "$T/csr.der" 2>/dev/null
  openssl req -inform DER -in "$T/csr.der" -out "$T/csr.pem"
}

# The SVID the mTLS-renewal run presents, for the CSR's own ID and key.
make_svid() {
  "$CA_PROBE" --ca "127.0.0.1:$LY_PORT" --bundle "$T/ca/bundle.pem" --td "$TD" \
    sign --csr "$T/csr.der" --join-token "$TOKEN" --out "$T/svid.pem" >/dev/null
  openssl verify -CAfile "$T/ca/bundle.pem" -untrusted "$T/ca/signing.pem" \
    "$T/svid.pem" >/dev/null
}

# lanyard_run NAME CREDENTIAL_ARGS...: one measurement with ca_load, which
# also reads the CA's CPU time over exactly the window it counts.
lanyard_run() {
  local name=$1 out
  shift
  out=$(taskset -c "$CLIENT_CPU" "$CA_LOAD" --ca "127.0.0.1:$LY_PORT" \
    --bundle "$T/ca/bundle.pem" --td "$TD" --csr "$T/csr.der" \
    --conns "$CONNS" --duration "$DURATION" --server-pid "$LY_PID" "$@" \
    2>"$T/$name.err") ||
    echo "ca_bench.sh: $name: ca_load reported errors: $(cat "$T/$name.err")" >&2
  row "$name" "$(field per_second "$out")" "$(field p50_ms "$out")" \
    "$(field p99_ms "$out")" "$(field server_cpu_s "$out")"
  echo "  $name: $out" >&2
}

lanyard_stop() {
  kill -TERM "$LY_PID"
  wait "$LY_PID" || true
}

# ---- cfssl ----------------------------------------------------------------------

CF_PORT=
CF_PID=

# A profile that requires auth, so only /authsign signs. The usages match
# an X.509-SVID's: digitalSignature, serverAuth + clientAuth.
cfssl_config() {
  openssl rand -hex 32 >"$T/cfssl-auth.hex"
  cat >"$T/cfssl.json" <<EOF
{
  "signing": {
    "default": {
      "auth_key": "bench",
      "expiry": "1h",
      "usages": ["digital signature", "server auth", "client auth"]
    }
  },
  "auth_keys": {
    "bench": { "type": "standard", "key": "$(cat "$T/cfssl-auth.hex")" }
  }
}
EOF
}

# The authsign body, computed once: {"token": b64(HMAC-SHA256(key,
# request)), "request": b64(request)}, request being the JSON sign
# request (cfssl's auth.AuthenticatedRequest: []byte fields are base64).
cfssl_body() {
  python3 - "$T/cfssl-auth.hex" "$T/csr.pem" >"$T/authsign.json" <<'EOF'
import base64, hashlib, hmac, json, sys
key = bytes.fromhex(open(sys.argv[1]).read().strip())
req = json.dumps({"certificate_request": open(sys.argv[2]).read()}).encode()
tok = hmac.new(key, req, hashlib.sha256).digest()
print(json.dumps({"token": base64.b64encode(tok).decode(),
                  "request": base64.b64encode(req).decode()}))
EOF
}

cfssl_start() {
  CF_PORT=$(free_port)
  cfssl_config
  cfssl_body
  # GOMAXPROCS=1: one core, like Lanyard's single-threaded CA
  GOMAXPROCS=1 taskset -c "$SERVER_CPU" cfssl serve -address 127.0.0.1 \
    -port "$CF_PORT" -ca "$T/ca/signing.pem" -ca-key "$T/ca/signing.key" \
    -config "$T/cfssl.json" 2>"$T/cfssl.log" &
  CF_PID=$!
  PIDS+=("$CF_PID")
  wait_port "$CF_PORT"
}

# One request by curl: a certificate comes back, openssl parses it, and
# it chains to Lanyard's bundle through the same intermediate.
cfssl_check() {
  curl -sS -X POST --data-binary @"$T/authsign.json" \
    "http://127.0.0.1:$CF_PORT/api/v1/cfssl/authsign" >"$T/cfssl-resp.json"
  python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
assert r["success"], r
print(r["result"]["certificate"])' "$T/cfssl-resp.json" >"$T/cfssl-cert.pem"
  openssl x509 -in "$T/cfssl-cert.pem" -noout
  openssl verify -CAfile "$T/ca/bundle.pem" -untrusted "$T/ca/signing.pem" \
    "$T/cfssl-cert.pem" >/dev/null
}

# wrk posts the same body; only 200s whose body says "success":true count
# (a 400 from cfssl carries "success":false).
cfssl_lua() {
  cat >"$T/authsign.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$T/authsign.json")
wrk.body = f:read("*a")
f:close()

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; bad = 0 end
function response(status, headers, body)
  if status == 200 and body:find('"success":true', 1, true) then
    ok = ok + 1
  else
    bad = bad + 1
  end
end
function done(summary, latency, requests)
  local o, b = 0, 0
  for _, t in ipairs(threads) do o = o + t:get("ok"); b = b + t:get("bad") end
  local s = summary.duration / 1e6
  io.write(string.format(
    "issued=%d errors=%d seconds=%.3f per_second=%.1f p50_ms=%.2f p99_ms=%.2f\n",
    o, b, s, o / s, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
EOF
}

cfssl_wrk() { # seconds
  taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"$1s" -s "$T/authsign.lua" \
    "http://127.0.0.1:$CF_PORT/api/v1/cfssl/authsign"
}

cfssl_run() {
  local out t0 t1
  cfssl_lua
  # an uncounted second first, like ca_load's warm-up (connections, heap)
  cfssl_wrk 1 >/dev/null
  t0=$(cpu_ticks "$CF_PID")
  out=$(cfssl_wrk "$DURATION" | grep '^issued=')
  t1=$(cpu_ticks "$CF_PID")
  [ "$(field errors "$out")" = 0 ] || echo "ca_bench.sh: cfssl-authsign: failed requests: $out" >&2
  row cfssl-authsign "$(field per_second "$out")" "$(field p50_ms "$out")" \
    "$(field p99_ms "$out")" "$(cpu_seconds "$t0" "$t1")"
  echo "  cfssl-authsign: $out" >&2
}

cfssl_stop() {
  kill "$CF_PID"
  wait "$CF_PID" 2>/dev/null || true
}

# ---- the run --------------------------------------------------------------------

: >"$OUT/ca.tsv"
echo "CA benchmark: ${DURATION}s per figure, $CONNS connections, servers on CPU $SERVER_CPU, load on CPU $CLIENT_CPU" >&2
lanyard_start
make_csr
make_svid
lanyard_run lanyard-join --join-token "$TOKEN"
lanyard_run lanyard-mtls --cert "$T/svid.pem" --key "$T/key.pem"
lanyard_stop
cfssl_start
cfssl_check
cfssl_run
cfssl_stop

printf 'name\tper_second\tp50_ms\tp99_ms\tcpu_s\n'
cat "$OUT/ca.tsv"
awk -F'\t' '$1 == "cfssl-authsign" { c = $2 } $1 ~ /^lanyard/ { l[$1] = $2 }
  END { for (n in l) if (c > 0) printf "%s / cfssl-authsign: %.2fx\n", n, l[n] / c }' "$OUT/ca.tsv"
