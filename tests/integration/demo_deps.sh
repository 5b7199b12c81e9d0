#!/usr/bin/env bash
# What the demo installs on a machine that has none of it: only the
# build's and the local mesh's packages (not the test toolchain), said
# before it installs them, with no host service started by the install
# (a policy-rc.d forbids it while apt runs, and is gone afterwards).
# dpkg-query and apt-get are stand-ins here that record what they are
# asked; nothing is installed.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "skipped: needs root"; exit 77; }
# deps.sh keeps a policy-rc.d it finds (container images ship one): set
# the host's aside for the run, so that deps.sh's own is what is tested.
POLICY=/usr/sbin/policy-rc.d
if [ -e "$POLICY" ]; then
  mv "$POLICY" "$T/policy-rc.d.host"
  trap 'mv "$T/policy-rc.d.host" "$POLICY"; cleanup' EXIT
fi

mkdir -p "$T/bin"
cat >"$T/bin/dpkg-query" <<'SH'
#!/bin/sh
exit 1 # nothing is installed
SH
cat >"$T/bin/apt-get" <<SH
#!/bin/sh
echo "\$*" >>"$T/apt.log"
if [ -x /usr/sbin/policy-rc.d ]; then
  /usr/sbin/policy-rc.d nginx start; echo "policy \$?" >>"$T/apt.log"
fi
[ "\$1" = update ] && exit 0
exit 100 # as a failed install would
SH
chmod +x "$T/bin/"*

PATH=$T/bin:$PATH "$LY_SOURCE_DIR/deploy/local/demo.sh" --duration 1 >"$T/demo.out" 2>&1 && rc=0 || rc=$?
cat "$T/demo.out"
check "the demo stops when its install fails (status $rc)" test "$rc" -ne 0
install=$(sed -n 's/^install -y -q //p' "$T/apt.log")
check "it asked apt to install packages" test -n "$install"
expected=$("$LY_SOURCE_DIR/deploy/deps.sh" --print demo | sort | xargs)
check "what it asked for is the demo's list ($expected)" \
  test "$(tr ' ' '\n' <<<"$install" | sort | xargs)" = "$expected"
for p in prometheus stunnel4 tcpdump clang-14 libcmocka-dev; do
  check "  which leaves out the test toolchain's $p" bash -c "! grep -qw '$p' <<<'$install'"
done
check "it said what it installs before installing" \
  grep -q "installing for 'demo': .*nginx-light" "$T/demo.out"
check "no service could start while apt ran (policy-rc.d said 101)" \
  grep -qx "policy 101" "$T/apt.log"
check "the policy is removed afterwards" test ! -e "$POLICY"
finish
