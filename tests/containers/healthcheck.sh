#!/usr/bin/env bash
# `lanyard healthcheck` in the image, as an exec probe (no curl, no shell
# there): ready, not ready (an agent with no identity yet, and why), and
# nothing listening.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/../integration/lib.sh"
require_images

N=lyhc$$
teardown() {
  "$DOCKER" rm -f "$N-ca" "$N-agent" "$N-lost" >/dev/null 2>&1 || true
  "$DOCKER" network rm "$N" >/dev/null 2>&1 || true
  "$DOCKER" volume rm "$N-join" >/dev/null 2>&1 || true
  cleanup
}
trap teardown EXIT
"$DOCKER" network create "$N" >/dev/null
"$DOCKER" volume create "$N-join" >/dev/null

# probe NAME EXPECT_RC PATTERN CMD...: the exit code and what it says.
probe() {
  local what=$1 want=$2 pattern=$3 rc=0 out
  shift 3
  out=$("$@" 2>&1) || rc=$?
  echo "  $what: exit $rc: $out"
  check "$what: exit $want" [ "$rc" = "$want" ]
  check "$what: says '$pattern'" grep -q "$pattern" <<<"$out"
}

echo "# nothing listening"
probe "no agent" 1 "nothing answers on 127.0.0.1:15020" \
  "$DOCKER" run --rm "$LY_IMAGE" healthcheck
probe "no agent, --wait 2s" 1 "nothing answers" \
  "$DOCKER" run --rm "$LY_IMAGE" healthcheck --wait 2s

echo "# the CA"
"$DOCKER" run -d --name "$N-ca" --network "$N" -v "$N-join:/var/lib/lanyard/join" "$LY_IMAGE" \
  ca bootstrap --dir /var/lib/lanyard/ca --trust-domain mesh.local \
  --join-dir /var/lib/lanyard/join --listen 0.0.0.0:15012 --admin 127.0.0.1:15014 \
  --token w=spiffe://mesh.local/ns/test/sa/w --serve >/dev/null
probe "the CA" 0 "^ready" "$DOCKER" exec "$N-ca" lanyard healthcheck --admin 127.0.0.1:15014 --wait 30s
mp=$("$DOCKER" volume inspect -f '{{.Mountpoint}}' "$N-join")
check "the join token is mode 600, owned by UID 1337" [ "$(stat -c '%a %u' "$mp/w.token")" = "600 1337" ]

agent_yaml() { # CA_ADDRESS
  cat <<YAML
trust_domain: mesh.local
spiffe_id: spiffe://mesh.local/ns/test/sa/w
ca: {address: $1, bundle: /var/lib/lanyard/join/bundle.pem, token_file: /var/lib/lanyard/join/w.token}
admin: 127.0.0.1:15020
listeners:
  - {name: app, mode: server, listen: 127.0.0.1:9443, forward: 127.0.0.1:9080}
YAML
}
mkdir -p "$T/cfg"
agent_yaml "127.0.0.1:1" >"$T/cfg/lost.yaml"
agent_yaml "$N-ca:15012" >"$T/cfg/agent.yaml"
chmod 0755 "$T" "$T/cfg"
chmod 0644 "$T/cfg"/*.yaml

echo "# an agent whose CA never answers: not ready, and why"
"$DOCKER" run -d --name "$N-lost" --network "$N" -v "$N-join:/var/lib/lanyard/join:ro" \
  -v "$T/cfg:/etc/lanyard:ro" "$LY_IMAGE" agent -c /etc/lanyard/lost.yaml >/dev/null
for _ in $(seq 1 40); do # until its admin port answers
  "$DOCKER" exec "$N-lost" lanyard healthcheck 2>&1 | grep -q "HTTP 503" && break
  sleep 0.25
done
probe "agent without identity" 1 "not ready (HTTP 503): no valid SVID yet" \
  "$DOCKER" exec "$N-lost" lanyard healthcheck

echo "# an agent with its identity"
"$DOCKER" run -d --name "$N-agent" --network "$N" -v "$N-join:/var/lib/lanyard/join:ro" \
  -v "$T/cfg:/etc/lanyard:ro" "$LY_IMAGE" agent -c /etc/lanyard/agent.yaml >/dev/null
probe "agent with identity (--wait)" 0 "^ready" "$DOCKER" exec "$N-agent" lanyard healthcheck --wait 30s
probe "agent with identity" 0 "^ready" "$DOCKER" exec "$N-agent" lanyard healthcheck
finish
