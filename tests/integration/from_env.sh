#!/usr/bin/env bash
# `lanyard agent --from-env`: in a Kubernetes pod the agent takes its config
# from the variables the injection sets (downward API, projected token,
# bundle ConfigMap), with no file of its own. It gets an identity with a
# service-account token and serves; bad variables are errors that name the
# variable; -c and --from-env exclude each other.
#
# Transparent capture needs iptables in the pod; here the agent runs with
# the same config on the host's loopback, where nothing is redirected (the
# podman suite runs it inside a real pod).
. "$(dirname "$0")/lib.sh"
MKJWT="python3 $LY_SOURCE_DIR/tests/tools/mkjwt.py"
TD=cluster.local
ISS=https://kubernetes.default.svc.cluster.local
ca_setup "$T/ca" "$TD"
$MKJWT keygen --type ec --out "$T/k8s.pem"
$MKJWT jwks --out "$T/ca/jwks.json" "$T/k8s.pem:k1"
printf 'kubernetes:\n  jwks: jwks.json\n  issuer: %s\n' "$ISS" >>"$T/ca/ca.yaml"
ca_start "$T/ca"
mkdir -p "$T/pod/token" "$T/pod/bundle"
$MKJWT sign --key "$T/k8s.pem" --kid k1 --alg ES256 --iss "$ISS" --aud lanyard-ca \
  --ns shop --sa checkout --exp-in 3600 --out "$T/pod/token/token"
cp "$T/ca/bundle.pem" "$T/pod/bundle/bundle.pem"
ADMIN_PORT=$(free_port)
INBOUND_PORT=$(free_port)
OUTBOUND_PORT=$(free_port)
# What `lanyard inject` puts in the agent's container, and nothing else.
POD_ENV=(PATH="$PATH" ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}"
  LANYARD_NAMESPACE=shop LANYARD_SERVICE_ACCOUNT=checkout
  LANYARD_POD_NAME=checkout-7d9f LANYARD_POD_IP=127.0.0.1
  LANYARD_CA_ADDR="127.0.0.1:$CA_PORT"
  LANYARD_TOKEN_FILE="$T/pod/token/token" LANYARD_BUNDLE_FILE="$T/pod/bundle/bundle.pem"
  LANYARD_ADMIN="127.0.0.1:$ADMIN_PORT" LANYARD_MODE=strict
  LANYARD_INBOUND_PORT="$INBOUND_PORT" LANYARD_OUTBOUND_PORT="$OUTBOUND_PORT"
  LANYARD_TTL=10m)
pod_env() { env -i "${POD_ENV[@]}" "$@"; }

check "--check accepts the pod's environment" \
  grep -q 'the environment: OK' <<<"$(pod_env "$LANYARD" agent --from-env --check)"

env -i "${POD_ENV[@]}" "$LANYARD" agent --from-env --log-level debug >"$T/agent.log" 2>&1 &
AGENT_PID=$!
PIDS+=("$AGENT_PID")
ready() { curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null; }
for _ in $(seq 1 100); do ready && break; sleep 0.1; done
check "the agent is ready with an identity from its service-account token" ready
check "  the identity is the pod's namespace and service account" \
  grep -q "event=svid_issued spiffe_id=spiffe://$TD/ns/shop/sa/checkout" "$T/agent.log"
check "  the CA saw a Kubernetes token" grep -q "credential=k8s_token spiffe_id=spiffe://$TD/ns/shop/sa/checkout" "$T/ca/ca.log"
listening() { ss -Hltn "sport = :$1" | grep -q .; }
check "  and transparent capture listens in both directions" \
  bash -c "$(declare -f listening); listening $INBOUND_PORT && listening $OUTBOUND_PORT"

# Errors name the variable and its value.
out=$(pod_env env LANYARD_TTL=soon "$LANYARD" agent --from-env --check 2>&1 || true)
check "a bad LANYARD_TTL is named with its value ($out)" grep -q "LANYARD_TTL=soon: invalid duration" <<<"$out"
out=$(pod_env env LANYARD_MODE=lax "$LANYARD" agent --from-env --check 2>&1 || true)
check "a bad LANYARD_MODE is named ($out)" grep -q "^LANYARD_MODE=lax: " <<<"$out"
out=$(pod_env env -u LANYARD_CA_ADDR "$LANYARD" agent --from-env --check 2>&1 || true)
check "a missing LANYARD_CA_ADDR is named ($out)" grep -q "LANYARD_CA_ADDR is required" <<<"$out"
out=$(pod_env env LANYARD_INBOUND_PORT=http "$LANYARD" agent --from-env --check 2>&1 || true)
check "a port that is not a number is named ($out)" grep -q "LANYARD_INBOUND_PORT=http: expected a port number" <<<"$out"
out=$(pod_env env LANYARD_MESHED_CIDRS=10.0.0.0/33 "$LANYARD" agent --from-env --check 2>&1 || true)
check "a bad meshed CIDR is named ($out)" grep -q "LANYARD_MESHED_CIDRS=10.0.0.0/33: " <<<"$out"
rc=0
"$LANYARD" agent --from-env -c "$T/ca/ca.yaml" --check >/dev/null 2>&1 || rc=$?
check "-c and --from-env together: usage error (2)" test "$rc" -eq 2
rc=0
"$LANYARD" ca serve --from-env --check >/dev/null 2>&1 || rc=$?
check "ca serve refuses --from-env (2)" test "$rc" -eq 2
finish
