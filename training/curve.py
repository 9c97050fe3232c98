#!/usr/bin/env python3
"""Quality against training time: every stored model of a chain of runs, exported and scored through the
engine (`depthcrafter-live eval`, pack defaults) on held-out clips.

Points: the final.pt of each run and any snapshots (`runs/<run>/snapshots/*.pt`, copies of ckpt.pt taken
during a run). Training time is the wall time of the training stages (autoencoder, latent caching,
denoiser; evaluations and data rendering excluded), summed along the chain in the order given.

Usage (repository root):
  .venv-train/bin/python training/curve.py --runs short short-t2 short-t3 big-t4 --clips .tmp/valsel --out training/curve.json
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = sys.executable


def run_log(run: str) -> list[dict]:
    with open(os.path.join(HERE, "runs", run, "log.jsonl")) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def stage_seconds(rows: list[dict]) -> dict[str, float]:
    """Training seconds per finished stage: the last `elapsed` a timed stage logged (its evaluations are not
    counted), else the stage's wall time (autoencoder evaluation and latent caching)."""
    wall = {r["stage"]: r["wall_seconds"] for r in rows if r.get("event") == "stage done"}
    elapsed = {r["stage"]: r["elapsed"] for r in rows if "elapsed" in r and "stage" in r}
    return {k: elapsed.get(k, v) if k in ("spatial", "temporal") else v for k, v in wall.items()}


def score(ckpt: str, clips: str, threads: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        pack = os.path.join(tmp, "pack")
        subprocess.run([PY, os.path.join(HERE, "export.py"), "--ckpt", ckpt, "--out", pack, "--version", "curve"],
                       check=True, capture_output=True)
        out = os.path.join(tmp, "eval.json")
        subprocess.run([PY, os.path.join(HERE, "evaluate.py"), "--clips", clips, "--pack", pack, "--skip-baselines",
                        "--threads", threads, "--out", out], check=True, capture_output=True)
        with open(out) as fh:
            return json.load(fh)["mean"]["video"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", required=True, help="runs in chain order (each initialised from the previous)")
    ap.add_argument("--clips", required=True, help="folder of held-out clip folders (rgb/, depth/)")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()

    points = []
    offset = 0.0
    for run in a.runs:
        rows = run_log(run)
        secs = stage_seconds(rows)
        snaps = sorted(glob.glob(os.path.join(HERE, "runs", run, "snapshots", "*.pt")))
        for snap in snaps:
            st = torch.load(snap, weights_only=False)["state"]
            done = sum(secs.get(s, 0.0) for s in st["done"] if s in secs)
            minutes = (offset + done + st["elapsed"]) / 60
            points.append({"run": run, "ckpt": os.path.relpath(snap, ROOT), "stage": st["stage"], "step": st["step"],
                           "minutes": round(minutes, 1)})
        total = sum(secs.values())
        if not os.path.exists(os.path.join(HERE, "runs", run, "final.pt")):
            continue  # still running: its snapshots only
        points.append({"run": run, "ckpt": os.path.relpath(os.path.join(HERE, "runs", run, "final.pt"), ROOT),
                       "stage": "final", "minutes": round((offset + total) / 60, 1)})
        offset += total
    cached = {}
    if a.out and os.path.exists(a.out):  # re-running after more snapshots only scores the new points
        with open(a.out) as fh:
            prev = json.load(fh)
        if prev.get("clips") == a.clips:
            cached = {(q["ckpt"], q.get("mtime")): q["video"] for q in prev["points"]}
    for p in points:
        p["mtime"] = os.path.getmtime(os.path.join(ROOT, p["ckpt"]))
        p["video"] = cached.get((p["ckpt"], p["mtime"])) or score(os.path.join(ROOT, p["ckpt"]), a.clips, a.threads)
        v = p["video"]
        print(f"{p['minutes']:6.1f} min  {p['run']:<10} {p['stage']:<8} AbsRel {v['absrel']:.4f}  delta1 {v['delta1']:.4f}  "
              f"temporal {v['temporal']:.5f}", flush=True)
        if a.out:  # after every point, so an interrupted run keeps what it measured
            with open(a.out, "w") as fh:
                json.dump({"clips": a.clips, "points": [q for q in points if "video" in q]}, fh, indent=2)
    print("\n| training minutes | run | point | AbsRel | δ1 | temporal |\n|---|---|---|---|---|---|")
    for p in points:
        v = p["video"]
        print(f"| {p['minutes']} | {p['run']} | {p['stage']}{' step ' + str(p['step']) if 'step' in p else ''} "
              f"| {v['absrel']:.3f} | {v['delta1']:.3f} | {v['temporal']:.5f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
