#!/usr/bin/env bash
# The documented Prometheus setup (deploy/prometheus/): the scrape config
# and the alert rules pass promtool's checks; the alerts fire, and stay
# quiet, on the series tests/prometheus/rules_test.yml gives them; and
# every metric the rules use is one a live agent or CA exports, so a
# renamed metric cannot leave an alert that never fires.
. "$(dirname "$0")/lib.sh"
need_tools promtool
P=$LY_SOURCE_DIR/deploy/prometheus

check "promtool check config" promtool check config "$P/prometheus.yml"
check "promtool check rules" promtool check rules "$P/lanyard-rules.yml"
check "promtool test rules: each alert fires when it should and only then" \
  promtool test rules "$LY_SOURCE_DIR/tests/prometheus/rules_test.yml"

TD=example.org
ca_setup "$T/ca" "$TD"
ca_start "$T/ca"
agent_yaml "$T/web" "spiffe://$TD/ns/default/sa/web" "$T/ca"
check "an agent gets its SVID" agent_run "$T/web"
AGENT_ADMIN=$(awk '/^admin:/ {print $2}' "$T/web/agent.yaml")
CA_ADMIN=$(awk '/^admin:/ {print $2}' "$T/ca/ca.yaml")
# Once the agent has reported, the CA has its mesh series.
reported() { curl -sf "http://$CA_ADMIN/metrics" | grep -qx 'lanyard_mesh_agents 1'; }
for _ in $(seq 1 40); do reported && break; sleep 0.5; done
check "the agent reported to the CA" reported
{
  curl -sf "http://$AGENT_ADMIN/metrics"
  curl -sf "http://$CA_ADMIN/metrics"
} | awk '!/^#/ {sub(/[{ ].*/, ""); print}' | sort -u >"$T/exported"
check "both admins serve metrics ($(wc -l <"$T/exported") names)" test -s "$T/exported"
grep -oE '\blanyard_[a-z0-9_]+' "$P/lanyard-rules.yml" | grep -v '^lanyard-' | sort -u >"$T/used"
while read -r m; do
  check "the rules' $m is exported" grep -qx "$m" "$T/exported"
done <"$T/used"
finish
