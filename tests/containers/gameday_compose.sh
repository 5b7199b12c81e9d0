#!/usr/bin/env bash
# `lanyard gameday run --compose`: the rotation drills on the compose mesh
# (deploy/compose/docker-compose.yml) under the gameday's own project. A
# short subset, checked as an operator would: exit 0, every SLO MET, the
# report's counts equal to the driver's own log (counted here), and the
# project's containers, network and volumes gone afterwards. Uses the
# images of the containers.image fixture.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/../integration/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "skip: gameday --compose needs root (nsenter)"; exit 77; }
require_images
remove_stale_projects
export DOCKER COMPOSE_BIN # the gameday uses Debian's engine client and compose too
SCENARIOS=(rapid-rotation ca-outage-short root-rotation)
out=$T/report
gpid=
teardown() {
  # A gameday killed halfway: its own cleanup did not run.
  if [ -n "$gpid" ]; then compose docker-compose.yml "lanyard-gameday-$gpid" down -v -t 2 >/dev/null 2>&1 || true; fi
  cleanup
}
trap teardown EXIT

echo "# lanyard gameday run --compose ${SCENARIOS[*]} --duration 15s"
start=$(date +%s)
"$LANYARD" gameday run --compose "${SCENARIOS[@]}" --duration 15s --out "$out" \
  --image "$LY_IMAGE" --app-image "$LY_APP_IMAGE" >"$T/gameday.log" 2>&1 &
gpid=$!
seen=0
# The project is really up while it runs (so "nothing left" below means
# something): the most containers it had running at once.
while kill -0 "$gpid" 2>/dev/null; do
  n=$("$DOCKER" ps -q --filter "label=com.docker.compose.project=lanyard-gameday-$gpid" | wc -l)
  [ "$n" -gt "$seen" ] && seen=$n
  sleep 1
done
rc=0
wait "$gpid" || rc=$?
echo "gameday ran in $(($(date +%s) - start)) s"
sed 's/^/  | /' "$T/gameday.log"
check "the gameday exits 0" [ "$rc" -eq 0 ]
check "its project lanyard-gameday-$gpid ran its 5 containers ($seen at most)" [ "$seen" -ge 5 ]
check "report.json says passed" [ "$(jq -r .passed "$out/report.json")" = true ]
check "report.json says the compose mesh" [ "$(jq -r .mesh "$out/report.json")" = compose ]
for s in "${SCENARIOS[@]}"; do
  sel=".scenarios[] | select(.name == \"$s\")"
  check "$s: passed" [ "$(jq -r "$sel | .status" "$out/report.json")" = passed ]
  check "$s: every SLO MET in the report" \
    [ "$(jq "[$sel | .slos[] | select(.met | not)] | length" "$out/report.json")" = 0 ]
  nslo=$(jq "$sel | .slos | length" "$out/report.json")
  met=$(sed -n "/^== $s:/,/^== /p" "$T/gameday.log" | grep -c '^  MET ' || true)
  check "$s: the output prints MET for each of its $nslo SLOs ($met)" [ "$((nslo > 0 && met == nslo))" = 1 ]
  # The driver's own log, counted here.
  log=$out/$s/requests.jsonl
  new=$(jq -c 'select(.kind == "new")' "$log" 2>/dev/null | wc -l)
  newfail=$(jq -c 'select(.kind == "new" and (.ok | not))' "$log" 2>/dev/null | wc -l)
  long=$(jq -c 'select(.kind == "long")' "$log" 2>/dev/null | wc -l)
  rnew=$(jq "$sel | .slis.new_connections.requests" "$out/report.json")
  rfail=$(jq "$sel | .slis.new_connections.failed" "$out/report.json")
  rlong=$(jq "$sel | .slis.long_lived.requests" "$out/report.json")
  check "$s: new-connection requests: report $rnew = driver log $new (> 0)" [ "$((new > 0 && rnew == new))" = 1 ]
  check "$s: failed: report $rfail = driver log $newfail" [ "$rfail" = "$newfail" ]
  check "$s: long-lived requests: report $rlong = driver log $long (> 0)" [ "$((long > 0 && rlong == long))" = 1 ]
done
rot=$(jq '.scenarios[] | select(.name == "rapid-rotation") | .slis.rotations | [.[]] | min' "$out/report.json")
check "rapid-rotation: each agent rotated (min $rot) under traffic" [ "${rot:-0}" -ge 2 ]
check "root-rotation: a new root was made" [ "$(jq -r \
  '.scenarios[] | select(.name == "root-rotation") | .facts.new_roots | length' "$out/report.json")" -ge 1 ]
check "the compose logs were kept (rapid-rotation/logs/compose.log)" [ -s "$out/rapid-rotation/logs/compose.log" ]

left=$(leftovers "lanyard-gameday-$gpid")
check "no container, network or volume of lanyard-gameday-$gpid is left${left:+ ($left)}" [ -z "$left" ]
[ -z "$left" ] && gpid= # nothing for the teardown to take down
finish
