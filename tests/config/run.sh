#!/usr/bin/env bash
# Bad configs: each file in bad/ must be rejected by --check with exit
# code 2 and exactly the diagnostics listed for it in expected.txt (the
# same set of lines, nothing else on stderr). Files are passed by their
# bare name from inside bad/, so diagnostics read "name.yaml:line:col: ...".
#
# Env: LANYARD (the binary), LY_SOURCE_DIR (the repository root).
set -u
: "${LANYARD:?set LANYARD to the lanyard binary}"
: "${LY_SOURCE_DIR:?set LY_SOURCE_DIR to the repository root}"

here=$LY_SOURCE_DIR/tests/config
expected=$here/expected.txt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 count=0

fail() {
  echo "FAIL $1: $2"
  fails=$((fails + 1))
}

# every file named in the table exists
for f in $(grep -v '^#' "$expected" | cut -d'|' -f1 | sort -u); do
  [ -f "$here/bad/$f" ] || fail "$f" "listed in expected.txt but missing"
done

cd "$here/bad" || exit 1
for f in *.yaml; do
  count=$((count + 1))
  awk -F'|' -v f="$f" '$1 == f { sub(/^[^|]*\|[^|]*\|/, ""); print }' \
    "$expected" | sort >"$tmp/want"
  kind=$(awk -F'|' -v f="$f" '$1 == f { print $2; exit }' "$expected")
  case $kind in
  ca) args=(ca serve -c "$f" --check) ;;
  agent) args=(agent -c "$f" --check) ;;
  *)
    fail "$f" "no entry in expected.txt"
    continue
    ;;
  esac
  "$LANYARD" "${args[@]}" >/dev/null 2>"$tmp/stderr"
  rc=$?
  sort "$tmp/stderr" >"$tmp/got"
  [ "$rc" -eq 2 ] || fail "$f" "exit code $rc, expected 2"
  if ! cmp -s "$tmp/want" "$tmp/got"; then
    fail "$f" "diagnostics differ (- expected, + printed)"
    diff -u "$tmp/want" "$tmp/got" | tail -n +3
  fi
done

echo "$count bad configs, $fails failures"
[ "$fails" -eq 0 ]
