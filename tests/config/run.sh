#!/usr/bin/env bash
# Bad configs: each file in bad/ must be rejected by --check with exit
# code 2 and exactly the diagnostics listed for it in expected.txt (the
# same set of lines, nothing else on stderr). A file whose every line is
# a warning must pass instead (exit 0). Files are passed by their bare
# name from inside a copy of bad/, so diagnostics read
# "name.yaml:line:col: ...".
#
# The files the configs name are in bad/ too (a throwaway self-signed
# certificate and key, tokens). Modes git cannot keep are set on the
# copy: secrets 0600, open.* readable by all, unreadable.token 0000 (its
# config is checked as nobody when this runs as root, who reads
# anything), and adir/ is a directory.
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

cp -R "$here/bad" "$tmp/bad" || exit 1
cd "$tmp/bad" || exit 1
chmod 0755 "$tmp" "$tmp/bad"
chmod 0644 ./*
chmod 0600 t join.token k8s.token s.key empty.token
chmod 0644 open.token open.key
mkdir adir
printf 'fixture-join-token\n' >unreadable.token
chmod 0000 unreadable.token
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
  as=()
  if [[ $f == *unreadable* && $(id -u) -eq 0 ]]; then
    as=(setpriv --reuid 65534 --regid 65534 --clear-groups --)
  fi
  "${as[@]}" "$LANYARD" "${args[@]}" >/dev/null 2>"$tmp/stderr"
  rc=$?
  sort "$tmp/stderr" >"$tmp/got"
  want_rc=2
  grep -qv ': warning: ' "$tmp/want" || want_rc=0
  [ "$rc" -eq "$want_rc" ] || fail "$f" "exit code $rc, expected $want_rc"
  if ! cmp -s "$tmp/want" "$tmp/got"; then
    fail "$f" "diagnostics differ (- expected, + printed)"
    diff -u "$tmp/want" "$tmp/got" | tail -n +3
  fi
done

echo "$count bad configs, $fails failures"
[ "$fails" -eq 0 ]
