#!/usr/bin/env bash
# `lanyard gameday` on the local mesh: every scenario runs with short SVID
# lifetimes and meets its SLOs, and the report says what happened:
#
# - `gameday run all` exits 0, prints a timeline and a verdict per SLO;
#   scenarios this build cannot run (no `lanyard ca root` yet) say so;
# - report.json's counts match what this test counts itself from the
#   driver's per-request log (requests.jsonl) and from api's nginx access
#   log (every request the driver saw succeed reached api's nginx, found
#   by its X-Marker header; nginx knows nothing of the driver);
# - scenarios where nothing may fail had no failed request, counted here;
#   ca-outage-long failed only after the first SVID expired and not after
#   its recovery;
# - web's agent counted as many mTLS handshakes as the driver opened
#   connections;
# - each chart is a valid PNG (signature, IHDR, CRCs, inflatable data);
# - `gameday list` names every scenario; `gameday run` without root says
#   it needs root.
# Needs root and the mesh's tools; exits 77 (skipped) without them.
. "$(dirname "$0")/lib.sh"

mesh_suite python3
OUT=$T/gd
DURATION=${GAMEDAY_DURATION:-15s}

list=$("$LANYARD" gameday list)
for s in rapid-rotation ca-outage-short ca-outage-long root-rotation intermediate-rotation \
  agent-restart clock-skew broken-chain; do
  check "gameday list names $s" grep -q "^  $s " <<<"$list"
done

# Without root: a clear refusal before anything starts.
if out=$(setpriv --reuid 65534 --regid 65534 --clear-groups -- \
  "$LANYARD" gameday run rapid-rotation --out "$T/nobody" 2>&1 9>&-); then
  bad "gameday run as a user other than root succeeded"
else
  check "without root: 'needs root' ($out)" grep -q "needs root" <<<"$out"
fi

rc=0
(cd "$T" && "$LANYARD" gameday run all --duration "$DURATION" --out "$OUT" 9>&-) \
  >"$T/gameday.out" 2>&1 || rc=$?
# The checks come first in this test's output and the drills' long
# output last, so a log cut after its first lines still shows what failed.
sed -n '/^== summary/,$p' "$T/gameday.out"
grep -E "^== [a-z-]+:|^  (MISSED|ERROR)" "$T/gameday.out" | cut -c1-160 || true
check "gameday run all exited 0 (status $rc)" test "$rc" -eq 0
check "the output has a verdict per SLO" grep -q "^  MET " "$T/gameday.out"
check "no SLO missed in the output" bash -c "! grep -q '^  MISSED ' '$T/gameday.out'"
check "the output has a timeline" grep -qE "^  0-1s +[0-9]+/0 " "$T/gameday.out"
check "report.json is there" test -s "$OUT/report.json"

# This test's own counts against the report.
out=$(python3 - "$OUT" "$LANYARD" <<'PY'
import json, os, re, struct, subprocess, sys, zlib

out, lanyard = sys.argv[1], sys.argv[2]
rep = json.load(open(os.path.join(out, "report.json")))
res = []
def check(what, cond):
    res.append(("ok   - " if cond else "FAIL - ") + what)

has_root = subprocess.run([lanyard, "ca", "root", "--help"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0
names = [s["name"] for s in rep["scenarios"]]
check("the report holds all 8 scenarios (%s)" % ", ".join(names), len(names) == 8)
check("the report says it passed", rep.get("passed") is True)
NOTHING_FAILS = {"rapid-rotation", "ca-outage-short", "root-rotation", "intermediate-rotation",
                 "clock-skew", "broken-chain"}

def png_ok(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return "bad signature"
    pos, chunks, idat = 8, [], b""
    while pos < len(data):
        n, = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        crc, = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            return "bad CRC in %s" % kind
        chunks.append(kind)
        if kind == b"IDAT":
            idat += body
        pos += 12 + n
    if chunks[0] != b"IHDR" or chunks[-1] != b"IEND":
        return "chunks %s" % chunks
    w, h, depth, ctype = struct.unpack(">IIBB", data[16:26])
    if not (w > 0 and h > 0 and depth == 8 and ctype == 2):
        return "IHDR %dx%d depth %d type %d" % (w, h, depth, ctype)
    if len(zlib.decompress(idat)) != h * (1 + 3 * w):
        return "IDAT size"
    return None

for s in rep["scenarios"]:
    name = s["name"]
    if name in ("root-rotation", "intermediate-rotation") and not has_root:
        check("%s skipped: %s" % (name, s.get("skip_reason")),
              s["status"] == "skipped" and "lanyard ca root" in s.get("skip_reason", ""))
        continue
    check("%s passed (%s)" % (name, s["status"]), s["status"] == "passed")
    if s["status"] not in ("passed", "failed"):
        continue
    check("%s: every SLO met" % name, s["slos"] and all(x["met"] for x in s["slos"]))
    reqs = [json.loads(l) for l in open(os.path.join(out, name, "requests.jsonl")) if l.strip()]
    new = [r for r in reqs if r["kind"] == "new"]
    new_failed = [r for r in new if not r["ok"]]
    n = s["slis"]["new_connections"]
    check("%s: requests on new connections: report %d, counted %d" % (name, n["requests"],
          len(new)), n["requests"] == len(new) and len(new) > 50)
    check("%s: failed: report %d, counted %d" % (name, n["failed"], len(new_failed)),
          n["failed"] == len(new_failed))
    lg = [r for r in reqs if r["kind"] == "long"]
    check("%s: long-lived requests: report %d, counted %d" % (name, s["slis"]["long_lived"]
          ["requests"], len(lg)), s["slis"]["long_lived"]["requests"] == len(lg) and lg)
    dropped = sum(1 for r in lg if r.get("dropped"))
    check("%s: dropped: report %d, counted %d" % (name, s["slis"]["long_lived"]["dropped"],
          dropped), s["slis"]["long_lived"]["dropped"] == dropped)
    # Every success the driver saw reached api's nginx.
    log = open(os.path.join(out, name, "logs", "api.access.log")).read()
    seen = set(re.findall(r'marker="(gd-[^"]+)"', log))
    okm = {r["marker"] for r in reqs if r["ok"]}
    check("%s: api's nginx logged all %d successful requests (%d missing)" % (
          name, len(okm), len(okm - seen)), okm and okm <= seen)
    if name in NOTHING_FAILS:
        # web's agent counted one outbound handshake per new connection and
        # per long-lived one (give or take the requests in flight at the
        # snapshots)
        hs = s["slis"].get("handshake_ms", {}).get("handshakes", -100)
        want = len(new) + len({r["conn"] for r in lg})
        check("%s: web's agent counted %d handshakes; the driver opened %d connections" % (
              name, hs, want), abs(hs - want) <= 3)
        check("%s: this test counts 0 failed requests (%d) and 0 dropped (%d)" % (
              name, len(new_failed), dropped), not new_failed and dropped == 0)
    if name == "ca-outage-long":
        t0, exp = s["started_at"], s["facts"]["expiry_at"]
        back = s["marks"]["fault_end"]
        rec = s["slis"]["recovery_s"]
        early = [r for r in new_failed if r["t"] - t0 < exp - 1]
        late = [r for r in new_failed if r["t"] - t0 > back + rec]
        check("ca-outage-long: %d failures, none before the expiry (%d) nor after the "
              "recovery (%d)" % (len(new_failed), len(early), len(late)),
              new_failed and not early and not late)
    if name == "rapid-rotation":
        check("rapid-rotation: rotations seen %s" % s["slis"]["rotations"],
              all(v >= 2 for v in s["slis"]["rotations"].values()))
    if name == "broken-chain":
        check("broken-chain: the agents said why (%s)" % s["facts"]["refused"],
              all("rejected" in v["last_error"] for v in s["facts"]["refused"].values()))
    bad = png_ok(os.path.join(out, name + ".png"))
    check("%s: the chart is a valid PNG%s" % (name, " (%s)" % bad if bad else ""), bad is None)
print("\n".join(res))
PY
) || bad "the report checker failed to run"
grep '^FAIL - ' <<<"$out" || true # first, then every check in order
echo "$out"
CHECKS=$((CHECKS + $(grep -c '^ok   - ' <<<"$out" || true)))
n_fail=$(grep -c '^FAIL - ' <<<"$out" || true)
CHECKS=$((CHECKS + n_fail))
FAILS=$((FAILS + n_fail))

# A drill that must fail does: the CA down longer than the SVIDs live.
rc=0
"$LANYARD" gameday run ca-outage-short --ttl 6s --outage 12s --duration 10s \
  --out "$T/gd-miss" >"$T/miss.out" 2>&1 9>&- || rc=$?
check "an outage past the runway: gameday exits 1 (status $rc)" test "$rc" -eq 1
check "  and says '0 failed requests' was missed" \
  grep -q "^  MISSED 0 failed requests on new connections" "$T/miss.out"
miss=$(python3 - "$T/gd-miss" <<'PY'
import json, os, sys
out = sys.argv[1]
s = json.load(open(os.path.join(out, "report.json")))["scenarios"][0]
reqs = [json.loads(l) for l in open(os.path.join(out, s["name"], "requests.jsonl")) if l.strip()]
failed = sum(1 for r in reqs if r["kind"] == "new" and not r["ok"])
print(s["status"], s["slis"]["new_connections"]["failed"], failed)
PY
)
read -r m_status m_report m_counted <<<"$miss"
check "  the report says failed, with $m_report failed requests; this test counts $m_counted" \
  test "$m_status" = failed -a "$m_report" = "$m_counted" -a "$m_counted" -gt 0

check "no mesh left up" bash -c "'$MESH' status >/dev/null 2>&1 9>&-; [ \$? -eq 3 ]"
echo "== gameday run all"
cat "$T/gameday.out"
echo "== the drill that must fail"
cat "$T/miss.out"
finish
