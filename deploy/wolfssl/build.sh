#!/usr/bin/env bash
# Builds the wolfSSL that Lanyard links statically, optimized for this CPU.
#
# Why not Debian's libwolfssl: it is built without AES-NI and assembly, so
# AES-GCM runs ~40x slower, and a sidecar sits in every byte's path.
#
# usage: build.sh WORKDIR PREFIX [SOURCE_TARBALL]
#   WORKDIR  where sources are unpacked and built (kept: a rebuild is free)
#   PREFIX   where headers and libwolfssl.a are installed
#   SOURCE_TARBALL  a wolfSSL release tarball; without it the source comes
#            from Debian's source package (apt-get source wolfssl), which
#            carries Debian's security patches.
set -euo pipefail

work=$1
prefix=$2
tarball=${3:-}

# The feature set Lanyard needs; changing it triggers a rebuild (the stamp
# below records it).
flags=(
  --enable-static --disable-shared --disable-examples --disable-crypttests
  --disable-benchmark
  --enable-tls13 --enable-ecc --enable-rsapss --enable-keygen
  --enable-certgen --enable-certreq --enable-certext
  --enable-session-ticket --enable-alpn --enable-sni --enable-asn=template
  --disable-sha3 --disable-dh
)
# Single-precision math for what Lanyard uses on every connection and
# signing: P-256 (SVIDs, TLS key exchange) and RSA 2048 (Kubernetes JWTs).
# Other sizes (P-384 keys it may load, RSA 3072/4096) still work through
# the generic code. The P-384, P-521 and RSA 3072/4096 tables alone would
# be 1.3 MB of the binary, much of it resident.
sp=--enable-sp=2048,256
case "$(uname -m)" in
x86_64 | amd64)
  flags+=(--enable-aesni --enable-intelasm "$sp" --enable-sp-asm) ;;
aarch64 | arm64)
  flags+=(--enable-armasm "$sp" --enable-sp-asm) ;;
*)
  flags+=("$sp") ;;
esac
# WOLFSSL_ALT_NAMES: URI SANs in parsed certificates. KEEP_PEER_CERT: the
# CA reads a renewing client's leaf. WOLFSSL_ALWAYS_VERIFY_CB: the SPIFFE
# checks run in the verify callback for valid chains too. The ticket
# padding leaves room for the peer's SPIFFE ID and expiry inside session
# tickets (agent/tls/tickets.c), so resumed sessions keep their identity.
# No SESSION_CERTS: it adds ~18 KB of chain buffers to every connection.
# -ffunction-sections -fdata-sections: the link drops what Lanyard never
# calls (--gc-sections), which keeps the agent's resident text small.
cflags="-O2 -fPIC -ffunction-sections -fdata-sections"
cflags+=" -DWOLFSSL_ALT_NAMES -DKEEP_PEER_CERT -DWOLFSSL_ALWAYS_VERIFY_CB"
cflags+=" -DWOLFSSL_TICKET_EXTRA_PADDING_SZ=288"
stamp_text="${flags[*]} CFLAGS=$cflags SOURCE=${tarball:-debian}"

# Two builds configuring at once (a normal and a sanitizer tree) must not
# build into the same place together.
mkdir -p "$(dirname "$work")"
exec 9>"$work.lock"
flock 9

if [ -f "$prefix/lib/libwolfssl.a" ] && [ -f "$prefix/.lanyard-stamp" ] &&
  [ "$(cat "$prefix/.lanyard-stamp")" = "$stamp_text" ]; then
  exit 0
fi

need() { command -v "$1" >/dev/null 2>&1; }
if ! need autoreconf || ! need libtoolize || ! need make ||
  { [ -z "$tarball" ] && ! need dpkg-source; }; then
  echo "wolfssl: installing build tools (autoconf automake libtool dpkg-dev)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q autoconf automake \
    libtool make dpkg-dev >&2
fi

mkdir -p "$work"
cd "$work"
src=$(find . -maxdepth 1 -type d -name 'wolfssl-*' | sort | tail -n 1)
if [ -z "$src" ]; then
  if [ -n "$tarball" ]; then
    tar xzf "$tarball"
  else
    # Debian ships no deb-src entry by default. Rather than add one to
    # the host's apt configuration, use a private one: its own sources
    # list and package lists under WORKDIR, checked against Debian's
    # archive key like any apt source. The host's apt is left as it was.
    echo "wolfssl: fetching Debian's wolfssl source package" >&2
    apt_dir=$work/apt
    mkdir -p "$apt_dir/lists/partial"
    key=/usr/share/keyrings/debian-archive-keyring.gpg
    {
      echo "deb-src [signed-by=$key] http://deb.debian.org/debian bookworm main"
      echo "deb-src [signed-by=$key] http://deb.debian.org/debian bookworm-updates main"
      echo "deb-src [signed-by=$key] http://deb.debian.org/debian-security bookworm-security main"
    } >"$apt_dir/sources.list"
    apt_private=(-o Dir::Etc::SourceList="$apt_dir/sources.list"
      -o Dir::Etc::SourceParts="$apt_dir/none" -o Dir::State::Lists="$apt_dir/lists"
      -o Dir::Cache="$apt_dir/cache")
    mkdir -p "$apt_dir/none" "$apt_dir/cache/archives/partial"
    apt-get "${apt_private[@]}" update -q >"$apt_dir/update.log" 2>&1 ||
      { cat "$apt_dir/update.log" >&2; exit 1; }
    apt-get "${apt_private[@]}" source --download-only wolfssl >"$apt_dir/source.log" 2>&1 ||
      { cat "$apt_dir/source.log" >&2; exit 1; }
    # apt checked each file (the .dsc and the tarballs) against the hashes
    # in the archive's signed index. dpkg-source would check the .dsc's
    # hashes again and the uploader's own signature, but Debian
    # developers' keys (package debian-keyring) are not on a normal host,
    # so all it could do is warn "Can't check signature": --no-check.
    dpkg-source --no-check -x wolfssl_*.dsc >/dev/null
  fi
  src=$(find . -maxdepth 1 -type d -name 'wolfssl-*' | sort | tail -n 1)
fi
cd "$src"
echo "wolfssl: configuring $(basename "$src") (about a minute)" >&2
[ -x configure ] || ./autogen.sh >/dev/null 2>&1
make distclean >/dev/null 2>&1 || true
./configure --prefix="$prefix" "${flags[@]}" CFLAGS="$cflags" >build.log 2>&1 ||
  { tail -30 build.log >&2; exit 1; }
echo "wolfssl: compiling into $prefix (about 2 minutes on 2 cores)" >&2
make -j"$(nproc)" >>build.log 2>&1 || { tail -30 build.log >&2; exit 1; }
rm -rf "$prefix"
make install >>build.log 2>&1
printf '%s' "$stamp_text" >"$prefix/.lanyard-stamp"
