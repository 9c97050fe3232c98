#!/usr/bin/env bash
# One command for a machine with an NVIDIA GPU, PyTorch and no network: a pack of the real DepthCrafter architecture
# with random weights (built from the installed diffusers/transformers classes, nothing downloaded), `infer` at
# 512x256 and 1024x576 (window 110, overlap 25, 5 steps) on each provider that loads (cuda, tensorrt, webgpu; cpu at
# the small size only), ms/frame per stage, peak GPU memory (nvidia-smi), and the ratio to the reference PyTorch
# pipeline on the same GPU and weights; within 8 minutes (--budget). See docs/gpu.md.
#
#   bash bench/gpu-check.sh                          # the GPU check
#   bash bench/gpu-check.sh --dry-run --device cpu   # every step on the CPU at a tiny shape (tiny real-class models)
#   bash bench/gpu-check.sh --help                   # all options (bench/gpu-check/gpu_check.py)
#
# Python: DCL_EXPORT_PYTHON, else .venv-export/bin/python, else python3 (torch, diffusers, transformers, onnx,
# onnxruntime, numpy, pillow: tools/requirements-export.txt). Node 20 with this checkout's node_modules.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${DCL_EXPORT_PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x "$ROOT/.venv-export/bin/python" ]; then PY="$ROOT/.venv-export/bin/python"; else PY="$(command -v python3 || true)"; fi
fi
if [ -z "$PY" ] || ! "$PY" -c "import torch, diffusers, transformers, onnx, onnxruntime, numpy, PIL" 2>/dev/null; then
  echo "gpu-check: need a Python with torch, diffusers, transformers, onnx, onnxruntime, numpy and pillow" \
       "(set DCL_EXPORT_PYTHON, or: python3 -m venv .venv-export && .venv-export/bin/pip install -r tools/requirements-export.txt)" >&2
  exit 2
fi
command -v node >/dev/null || { echo "gpu-check: node (20) is not on PATH" >&2; exit 2; }
# the CLI runs from dist/: build it when missing or older than the sources
if [ ! -f dist/cli/main.js ] || [ -n "$(find src -name '*.ts' -newer dist/cli/main.js -print -quit)" ]; then
  node node_modules/typescript/bin/tsc -p tsconfig.json || [ -f dist/cli/main.js ]
fi
exec "$PY" "$ROOT/bench/gpu-check/gpu_check.py" "$@"
