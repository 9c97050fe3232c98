#!/usr/bin/env bash
# A software Vulkan driver for the WebGPU execution provider: Mesa's lavapipe from Debian bookworm-backports, unpacked
# into .vulkan/ next to the checkout. The system's Mesa is not touched (bookworm's own 22.3.6 lavapipe is rejected by
# Dawn, the WebGPU implementation inside onnxruntime-node: "No supported adapters").
#
#   .vulkan/icd.json   Vulkan driver manifest with the absolute path of the unpacked libvulkan_lvp.so
#   .vulkan/root/      the unpacked mesa-vulkan-drivers package (dpkg -x)
#   .vulkan/cache/     apt's private sources file, index and the downloaded .deb
#
# Use it with VK_ICD_FILENAMES=$PWD/.vulkan/icd.json (the CLI adds it by itself when no Vulkan driver variable is set).
# Idempotent: a second run checks the result and exits. `--force` redoes everything. Network: the Debian archive only
# (VULKAN_DEBIAN_MIRROR, default http://deb.debian.org/debian). The libraries lavapipe links against (libLLVM-15, xcb,
# wayland-client, libdrm, the libvulkan1 loader...) are ordinary bookworm packages: missing ones are installed with
# apt-get as root or with sudo, like scripts/setup.sh does.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
VK="$ROOT/.vulkan"
CACHE="$VK/cache"
MIRROR="${VULKAN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
ARCH_DIR="usr/lib/x86_64-linux-gnu"
LIB="$VK/root/$ARCH_DIR/libvulkan_lvp.so"
ICD="$VK/icd.json"
STAMP="$VK/ok"

log() { printf 'setup-vulkan: %s\n' "$*"; }

# shellcheck source=as-root.sh
. scripts/as-root.sh  # (the working folder is the project root here)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

if [ "$(dpkg --print-architecture 2>/dev/null || echo unknown)" != amd64 ]; then
  log "only amd64 Debian is handled (this is $(dpkg --print-architecture 2>/dev/null || uname -m)); skipping"
  exit 0
fi

# Already done: the stamp names the runtime packages; they are still installed and the manifest points at this checkout.
if [ "${1:-}" != --force ] && [ -f "$STAMP" ] && [ -f "$LIB" ] && [ -f "$ICD" ] && grep -qF "\"$LIB\"" "$ICD"; then
  # shellcheck disable=SC2046
  pkgs=($(sed -n 's/^runtime: //p' "$STAMP"))
  present="$(dpkg-query -W -f='${Status}\n' "${pkgs[@]}" 2>/dev/null | grep -c 'install ok installed' || true)"
  if [ "${#pkgs[@]}" -gt 0 ] && [ "$present" -eq "${#pkgs[@]}" ]; then
    log "lavapipe $(sed -n 's/^mesa: //p' "$STAMP") ready: VK_ICD_FILENAMES=$ICD"
    exit 0
  fi
fi

rm -rf "$VK/root" "$ICD" "$STAMP"
mkdir -p "$CACHE/lists/partial" "$CACHE/apt/archives/partial" "$CACHE/debs"

# apt with a private sources file (bookworm-backports only), index and cache: nothing system-wide changes.
printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s bookworm-backports main\n' "$MIRROR" \
  >"$CACHE/sources.list"
APT_OPTS=(
  -o "Dir::Etc::sourcelist=$CACHE/sources.list" -o "Dir::Etc::sourceparts=-"
  -o "Dir::State::Lists=$CACHE/lists" -o "Dir::Cache=$CACHE/apt"
  -o "APT::Get::List-Cleanup=0"
)
# As root apt would hand the download to the _apt user, who cannot write into the checkout.
[ "$(id -u)" -eq 0 ] && APT_OPTS+=(-o "APT::Sandbox::User=root")

log "reading the bookworm-backports index from $MIRROR"
apt-get "${APT_OPTS[@]}" -qq update
version="$(apt-cache "${APT_OPTS[@]}" show mesa-vulkan-drivers 2>/dev/null | sed -n 's/^Version: //p' | grep '~bpo12' | head -n1)"
[ -n "$version" ] || { log "mesa-vulkan-drivers is not in bookworm-backports at $MIRROR"; exit 1; }
deb="$CACHE/debs/mesa-vulkan-drivers_${version//:/%3a}_amd64.deb"
if [ ! -s "$deb" ]; then
  log "downloading mesa-vulkan-drivers $version"
  rm -f "$CACHE/debs/"mesa-vulkan-drivers_*.deb
  (cd "$CACHE/debs" && apt-get "${APT_OPTS[@]}" -qq download "mesa-vulkan-drivers=$version")
fi
[ -s "$deb" ] || { log "download of mesa-vulkan-drivers $version failed ($deb missing)"; exit 1; }

# The libraries the driver links against, from bookworm (the system's sources). Version constraints are not checked:
# libdrm2 2.4.114 of bookworm has every symbol lavapipe uses (it is the radeon driver that wants 2.4.121).
runtime=(libvulkan1)
for dep in $(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/:any//; s/[[:space:]]//g'); do
  [ -n "$dep" ] && [ "$dep" != libvulkan1 ] && runtime+=("$dep")
done
missing=()
for p in "${runtime[@]}"; do installed "$p" || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing bookworm libraries lavapipe needs: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends "${missing[@]}"
fi

log "unpacking into $VK/root"
dpkg-deb -x "$deb" "$VK/root"
[ -f "$LIB" ] || { log "$deb holds no $ARCH_DIR/libvulkan_lvp.so"; exit 1; }
# Only lavapipe is used: drop the hardware drivers and layers (about 50 MB).
find "$VK/root/$ARCH_DIR" -maxdepth 1 -name 'lib*.so*' ! -name libvulkan_lvp.so -delete
rm -rf "$VK/root/usr/share/vulkan/explicit_layer.d" "$VK/root/usr/share/vulkan/implicit_layer.d"
find "$VK/root/usr/share/vulkan/icd.d" -name '*.json' ! -name lvp_icd.json -delete
unresolved="$(ldd "$LIB" | grep 'not found' || true)"
[ -z "$unresolved" ] || { log "libvulkan_lvp.so has unresolved libraries:"; printf '%s\n' "$unresolved"; exit 1; }

# The packaged manifest names the library without a folder (the system's library path): make it absolute.
api="$(sed -n 's/.*"api_version": *"\([^"]*\)".*/\1/p' "$VK/root/usr/share/vulkan/icd.d/lvp_icd.json")"
cat >"$ICD.tmp" <<EOF
{
    "file_format_version": "1.0.0",
    "ICD": {
        "library_path": "$LIB",
        "api_version": "${api:-1.3.0}"
    }
}
EOF
mv "$ICD.tmp" "$ICD"
printf 'mesa: %s\nruntime: %s\n' "$version" "${runtime[*]}" >"$STAMP"
log "lavapipe $version ready: VK_ICD_FILENAMES=$ICD"
