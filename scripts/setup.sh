#!/usr/bin/env bash
# Installs everything DepthCrafter Live needs on Debian 12 with Node 20: GStreamer (build and
# runtime), the RTSP test server's Python bindings, Chromium for the viewer tests, then the npm
# packages, then builds. Idempotent: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }

PACKAGES=(
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev pkg-config g++ make python3
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0
  python3-gi python3-gst-1.0 python3-numpy chromium
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=''
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { say "need root or sudo to install: ${missing[*]}"; exit 1; }
    SUDO='sudo'
  fi
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}"
else
  say "Debian packages present"
fi

command -v node >/dev/null || { say "Node.js 20 is required (apt-get install nodejs npm, or NodeSource)"; exit 1; }
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || { say "Node.js >= 20 is required, found $(node --version)"; exit 1; }

# onnxruntime-node's postinstall downloads CUDA libraries; there is no network for that, and the
# CPU backend is bundled. Native addons build against Debian's Node headers.
export ONNXRUNTIME_NODE_INSTALL=skip
export npm_config_nodedir=/usr
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund
else
  say "node_modules up to date"
fi

say "building (tsc)"
npx tsc -p tsconfig.json
say "ready"
