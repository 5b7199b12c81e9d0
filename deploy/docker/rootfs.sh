#!/usr/bin/env bash
# Lays out the final image's root filesystem in OUT: the lanyard binary,
# iptables-restore/-save (nf_tables and legacy) with their match and
# target modules, every shared library these load (found with ldd), and
# the few files a process expects (/etc/passwd with UID 1337, /tmp).
#
#   rootfs.sh LANYARD_BINARY OUT
set -euo pipefail
bin=$1
out=$2
mkdir -p "$out"/{usr/local/bin,usr/sbin,etc,tmp,run,var/lib/lanyard/ca,var/lib/lanyard/join}
chmod 1777 "$out/tmp"
install -m 0755 "$bin" "$out/usr/local/bin/lanyard"

# iptables: the multi-call binaries and the names `lanyard iptables` runs.
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -dumpmachine)
cp -a /usr/sbin/xtables-nft-multi /usr/sbin/xtables-legacy-multi "$out/usr/sbin/"
for t in iptables-restore iptables-save ip6tables-restore ip6tables-save; do
  ln -s xtables-nft-multi "$out/usr/sbin/$t"
  ln -s xtables-nft-multi "$out/usr/sbin/${t/tables/tables-nft}"
  ln -s xtables-legacy-multi "$out/usr/sbin/${t/tables/tables-legacy}"
done
mkdir -p "$out/usr/lib/$multiarch"
cp -a "/usr/lib/$multiarch/xtables" "$out/usr/lib/$multiarch/"

# Every shared library the above load, with the paths ldd reports
# (symlinks resolved: the file itself goes where its name points).
copy_deps() {
  ldd "$1" 2>/dev/null | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }'
}
{
  copy_deps "$bin"
  copy_deps /usr/sbin/xtables-nft-multi
  copy_deps /usr/sbin/xtables-legacy-multi
  for m in "/usr/lib/$multiarch"/xtables/*.so; do copy_deps "$m"; done
} | sort -u | while read -r lib; do
  mkdir -p "$out$(dirname "$lib")"
  cp -L "$lib" "$out$lib"
done
# The loader under its usual path (/lib64 on amd64 is a symlink on the
# host; the binaries ask for it by that path).
for l in /lib64/ld-linux-x86-64.so.2 /lib/ld-linux-aarch64.so.1; do
  if [ -e "$l" ] && [ ! -e "$out$l" ]; then
    mkdir -p "$out$(dirname "$l")"
    cp -L "$l" "$out$l"
  fi
done

cp /etc/protocols "$out/etc/protocols" 2>/dev/null || true
printf 'root:x:0:0:root:/:/nonexistent\nlanyard:x:1337:1337:lanyard:/var/lib/lanyard:/nonexistent\n' >"$out/etc/passwd"
printf 'root:x:0:\nlanyard:x:1337:\n' >"$out/etc/group"
# Named volumes mounted here start owned by the agent's UID, so the CA
# (UID 1337) can write its state and the join tokens.
chown -R 1337:1337 "$out/var/lib/lanyard"
chmod 0700 "$out/var/lib/lanyard/ca"
chmod 0755 "$out/var/lib/lanyard/join"
