#!/usr/bin/env bash
# Reproduce models/synthetic-small from scratch: venv, data, training, export, engine evaluation.
# Usage (repository root): bash training/run.sh            (about 45 min on the 2-core project machine)
#
# Stage budgets are wall-clock minutes by default (what the committed pack used), so the number of
# optimiser steps depends on the machine's speed and load. For a step-exact repeat of the committed
# pack's run pass the step counts it reached (logged in training/runs/<run>/log.jsonl):
#   STEPS_EXACT=1 bash training/run.sh
# Other overrides: RUN=short CLIPS=192 FRAMES=32 SIZE=128x128 AE_MIN=5 SPATIAL_MIN=7 TEMPORAL_MIN=8
#   TEMPORAL2_MIN=9 THREADS=1; RESUME=1 continues an interrupted first phase from its checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${RUN:-short}
CLIPS=${CLIPS:-192}
FRAMES=${FRAMES:-32}
SIZE=${SIZE:-128x128}
AE_MIN=${AE_MIN:-5}
SPATIAL_MIN=${SPATIAL_MIN:-7}
TEMPORAL_MIN=${TEMPORAL_MIN:-8}
TEMPORAL2_MIN=${TEMPORAL2_MIN:-9}
THREADS=${THREADS:-1}
PY=.venv-train/bin/python

if [ ! -x "$PY" ]; then
  python3 -m venv .venv-train
  .venv-train/bin/pip install -r training/requirements.txt
fi
[ -f dist/cli/main.js ] || npx tsc -p tsconfig.json

# data: training seeds 1000-1999, held-out quick-metric seeds 80000+; evaluation seeds (90000+) are never rendered here
[ -f training/data/train/info.json ] || $PY training/make_data.py --split train --clips "$CLIPS" --frames "$FRAMES" --size "$SIZE"
[ -f training/data/val/info.json ] || $PY training/make_data.py --split val --clips 4 --frames "$FRAMES" --size "$SIZE"

P1=() P2=()
if [ "${STEPS_EXACT:-0}" = 1 ]; then
  P1=(--ae-steps 848 --spatial-steps 1473 --temporal-steps 1824)
  P2=(--temporal-steps 1991)
fi
[ "${RESUME:-0}" = 1 ] && P1+=(--resume)

# phase 1: autoencoder, latent cache, spatial denoiser, temporal denoiser
(cd training && "../$PY" train.py --name "$RUN" --threads "$THREADS" --ae-minutes "$AE_MIN" \
  --spatial-minutes "$SPATIAL_MIN" --temporal-minutes "$TEMPORAL_MIN" "${P1[@]}")
# phase 2: the temporal stage continued with a fresh optimiser (same cached latents)
(cd training && "../$PY" train.py --name "$RUN-t2" --threads "$THREADS" --init "runs/$RUN/final.pt" \
  --stages temporal --latents "runs/$RUN" --temporal-minutes "$TEMPORAL2_MIN" "${P2[@]}")

(cd training && "../$PY" export.py --ckpt "runs/$RUN-t2/final.pt" --out ../models/synthetic-small --size "$SIZE")

# engine check on held-out evaluation seeds (never in the training range)
mkdir -p .tmp/synthetic-small-eval
for s in 90000 90001 90002 90003 90004; do
  [ -d ".tmp/synthetic-small-eval/$s" ] || node bin/depthcrafter-live.js synth --seed "$s" --frames 32 --size "$SIZE" --out ".tmp/synthetic-small-eval/$s" >/dev/null
done
$PY training/evaluate.py --clips .tmp/synthetic-small-eval --pack models/synthetic-small --ckpt "training/runs/$RUN-t2/final.pt" \
  --out "training/runs/$RUN-t2/eval.json"
