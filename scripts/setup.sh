#!/usr/bin/env bash
# Prepare a Debian 12 machine (Node 20 already installed) to build and test DepthCrafter Live.
# Idempotent: installs only missing Debian packages, runs `npm ci` only when the lock file changed,
# and always compiles TypeScript (seconds). Run as root, or as a user with sudo.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'setup: %s\n' "$*"; }

PACKAGES=(
  # Build of the GStreamer binding (gstreamer-superficial)
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev pkg-config g++ make python3
  # GStreamer runtime elements
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav
  # Loopback RTSP server for tests
  gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi python3-gst-1.0
  # Browser tests and numeric cross-checks
  chromium python3-numpy
  # The fleet's message bus, for its tests (docs/fleet.md)
  nats-server
)

# shellcheck source=as-root.sh
. scripts/as-root.sh  # (the working folder is the project root here)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends "${missing[@]}"
else
  log "Debian packages: all ${#PACKAGES[@]} present"
fi

command -v node >/dev/null 2>&1 || { log "node is not installed (Node 20 is required)"; exit 1; }
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  log "Node $(node --version) is too old (Node 20 or newer is required)"
  exit 1
fi

# Native addons build offline only when node-gyp finds Node's headers (Debian: /usr/include/node).
export npm_config_nodedir=/usr
# onnxruntime-node's postinstall tries to download GPU providers: skip it.
export ONNXRUNTIME_NODE_INSTALL=skip
if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm dependencies (npm ci)"
  npm ci
else
  log "npm dependencies: up to date"
fi

# `npx depthcrafter-live` finds the CLI in node_modules/.bin at once (about 1 s) instead of installing the checkout
# into npx's cache and running `prepare` (8-37 s measured): npm never links a package's own bin there.
ln -sfn ../../bin/depthcrafter-live.js node_modules/.bin/depthcrafter-live

bash scripts/setup-vulkan.sh  # lavapipe (software Vulkan) into .vulkan/ for the WebGPU tests

log "compiling TypeScript (tsc -p tsconfig.json)"
npx tsc -p tsconfig.json
log "done"
