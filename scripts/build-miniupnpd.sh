#!/usr/bin/env bash
# Builds the two miniupnpd binaries the NAT lab runs on its routers (docs/nat-lab.md, "Port mapping"):
#   $CACHE/miniupnpd-igd1   UPnP IGD v1 + NAT-PMP + PCP, nftables backend
#   $CACHE/miniupnpd-igd2   the same with --igd2 (IGD v2, WANIPConnection:2)
# from Debian's own miniupnpd source, with two changes:
#  - getifaddr.c: the RFC 5737 documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24)
#    are no longer "reserved". Stock miniupnpd refuses to map ports when its WAN address is
#    reserved, and the lab's "Internet" is 203.0.113.0/24 (NAT-FACTS item 10).
#  - upnpsoap.c: the actions WANIPConnection:2 added (AddAnyPortMapping, DeletePortMappingRange,
#    GetListOfPortMappings) exist only in the --igd2 build. Stock miniupnpd answers them on
#    WANIPConnection:1 too, so a client that sends AddAnyPortMapping to an IGD v1 would pass in the
#    lab and fail on a router that implements v1 as specified (UPnP error 401, Invalid Action).
#
# Needs root (apt-get). Skips everything when both binaries and the recipe stamp are already there.
# CACHE is $RCPP2P_LAB_CACHE/miniupnpd, default /var/cache/rcpp2p-lab/miniupnpd (shared by every
# checkout on the machine; test/helpers/miniupnpd.ts looks there). A lock serialises parallel runs.
#
# Build dependencies (measured on Debian 12, see docs/nat-lab.md): gcc make libc6-dev pkg-config
# libnftnl-dev libmnl-dev, plus dpkg-dev and xz-utils for `apt-get source`. `apt-get build-dep
# miniupnpd` would add 23 packages (debhelper, autotools, iptables headers) that this build never uses.
set -euo pipefail

RECIPE=2 # bump when the patch or the configure options change: forces a rebuild
CACHE="${RCPP2P_LAB_CACHE:-/var/cache/rcpp2p-lab}/miniupnpd"
STAMP="recipe $RECIPE: apt-get source miniupnpd; RFC 5737 ranges not reserved; v2 actions only in igd2; --firewall=nftables, igd1 and --igd2"
DEPS=(gcc make libc6-dev pkg-config libnftnl-dev libmnl-dev dpkg-dev xz-utils)

up_to_date() {
  [[ -x "$CACHE/miniupnpd-igd1" && -x "$CACHE/miniupnpd-igd2" ]] &&
    [[ "$(cat "$CACHE/STAMP" 2>/dev/null)" == "$STAMP" ]]
}

if up_to_date; then
  echo "miniupnpd: up to date in $CACHE"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "build-miniupnpd: needs root (apt-get source and build dependencies)" >&2
  exit 1
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if up_to_date; then # another run built it while we waited for the lock
  echo "miniupnpd: up to date in $CACHE"
  exit 0
fi
started=$(date +%s%N)
step_started=$started
step() { # prints how long the previous step took
  local now
  now=$(date +%s%N)
  echo "miniupnpd: $1 in $(((now - step_started) / 1000000)) ms"
  step_started=$now
}
export DEBIAN_FRONTEND=noninteractive

# 1. a deb-src entry (Debian's images ship only binary entries)
if ! apt-cache showsrc miniupnpd 2>/dev/null | grep -q '^Package: miniupnpd'; then
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}")
  cat >/etc/apt/sources.list.d/rcpp2p-deb-src.sources <<SOURCES
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $codename $codename-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  apt-get update -qq
  step 'added a deb-src entry and updated the package lists'
fi

# 2. the build dependencies that are missing
missing=()
for pkg in "${DEPS[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]} > 0)); then
  echo "miniupnpd: installing build dependencies: ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  step 'installed the build dependencies'
fi

# 3. the source, with Debian's patches applied (dpkg-source), in a temp dir
work=$(mktemp -d /tmp/rcpp2p-miniupnpd-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work" # apt's _apt sandbox user must be able to write here, or apt warns and runs as root
(cd "$work" && apt-get source -qq miniupnpd >/dev/null 2>"$work/apt-source.log") || {
  cat "$work/apt-source.log" >&2
  exit 1
}
src=$(find "$work" -maxdepth 1 -type d -name 'miniupnpd-*' | head -n 1)
[[ -n "$src" ]] || { echo "build-miniupnpd: apt-get source unpacked no miniupnpd-* folder" >&2; exit 1; }
step "fetched and unpacked $(basename "$src")"

# 4. drop the three documentation ranges from the reserved list
count=$(grep -c 'RFC5737' "$src/getifaddr.c" || true)
if [[ "$count" != 3 ]]; then
  echo "build-miniupnpd: expected 3 RFC5737 lines in getifaddr.c, found $count; the source changed" >&2
  exit 1
fi
sed -i '/RFC5737/d' "$src/getifaddr.c"

# 5. the v2-only SOAP actions: only in the IGD v2 build
first='	{ "AddAnyPortMapping", AddAnyPortMapping},'
last='	{ "GetListOfPortMappings", GetListOfPortMappings},'
if ! grep -qxF "$first" "$src/upnpsoap.c" || ! grep -qxF "$last" "$src/upnpsoap.c"; then
  echo "build-miniupnpd: the SOAP action table in upnpsoap.c changed; check the IGD v2 patch" >&2
  exit 1
fi
sed -i -e "s/^\t{ \"AddAnyPortMapping\", AddAnyPortMapping},\$/#ifdef IGD_V2\n&/" \
  -e "s/^\t{ \"GetListOfPortMappings\", GetListOfPortMappings},\$/&\n#endif/" "$src/upnpsoap.c"

# 6. two builds
jobs=$(nproc 2>/dev/null || echo 2)
for variant in igd1 igd2; do
  dir="$work/$variant"
  cp -a "$src" "$dir"
  opts=(--firewall=nftables)
  [[ $variant == igd2 ]] && opts+=(--igd2)
  (cd "$dir" && ./configure "${opts[@]}" >"$work/configure-$variant.log" 2>&1 &&
    make -s -f Makefile.linux_nft -j"$jobs" miniupnpd >"$work/make-$variant.log" 2>&1) || {
    cat "$work/configure-$variant.log" "$work/make-$variant.log" >&2
    exit 1
  }
  install -m 0755 "$dir/miniupnpd" "$CACHE/miniupnpd-$variant.new"
  mv -f "$CACHE/miniupnpd-$variant.new" "$CACHE/miniupnpd-$variant"
  step "built miniupnpd-$variant"
done
version=$(basename "$src")
echo "$STAMP" >"$CACHE/STAMP"
echo "$version" >"$CACHE/VERSION"
elapsed_ms=$((($(date +%s%N) - started) / 1000000))
echo "miniupnpd: built $version (igd1, igd2) into $CACHE in $elapsed_ms ms"
