#!/usr/bin/env python3
"""Score a pack through the project's engine and CLI on held-out synthetic clips, with reference points.

For every clip folder (``<clips>/<seed>/{rgb,depth}``, rendered by ``depthcrafter-live synth`` from
the evaluation seed range 90000+, which training never uses) this runs:

  video      ``depthcrafter-live eval --dataset CLIP --model PACK`` (the pack defaults: window 16,
             overlap 4, 5 steps)
  perframe   ``depthcrafter-live infer CLIP/rgb --window 1 --overlap 0`` (every frame denoised on
             its own, one min-max over the video) then ``eval --pred``: the per-frame baseline
  constant   a constant prediction (the trivial prior; the fit is rank-deficient: min-norm)
  meanprior  the per-pixel mean normalised disparity of the training set, the same map every frame
  vgradient  a vertical gradient (bottom = near)
  ceiling    the autoencoder ceiling: GT disparity (normalised as in training) -> the pack's ONNX
             VAE encoder -> VAE decoder in chunks of 8 -> mean over RGB of clamp((x+1)/2)

All with ``--depth-scale 0.001 --max-depth 80``; the numbers are the CLI's JSON (docs/evaluation.md).
Means over the clips go to --out (JSON) and stdout.

Usage: .venv-train/bin/python training/evaluate.py --clips .tmp/synthetic-small-eval --pack models/synthetic-small --out training/runs/short/eval.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLI = ["node", os.path.join(ROOT, "bin", "depthcrafter-live.js")]
KEYS = ["absrel", "delta1", "rmse", "temporal", "temporalBoundary", "flickerNoGt"]
EVAL_ARGS = ["--depth-scale", "0.001", "--max-depth", "80", "--json"]


def cli(args: list[str]) -> dict:
    res = subprocess.run(CLI + args, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({res.returncode}): {res.stderr[-2000:]}")
    return json.loads(res.stdout)


def pick(d: dict) -> dict:
    return {k: d.get(k) for k in KEYS}


def load_depth(folder: str) -> np.ndarray:
    names = sorted(os.listdir(folder))
    return np.stack([np.array(Image.open(os.path.join(folder, n))).astype(np.float32) * 0.001 for n in names])


def norm_disp(depth: np.ndarray) -> np.ndarray:
    valid = depth > 0
    d = np.zeros_like(depth)
    d[valid] = 1.0 / depth[valid]
    lo, hi = d[valid].min(), d[valid].max()
    d[valid] = (d[valid] - lo) / max(hi - lo, 1e-6)
    return d


def eval_pred(pred: np.ndarray, gt_dir: str, tmp: str, name: str) -> dict:
    path = os.path.join(tmp, f"{name}.npz")
    np.savez(path, depth=pred.astype(np.float32))
    return pick(cli(["eval", "--pred", path, "--gt", gt_dir] + EVAL_ARGS))


def ceiling(pack: str, depth: np.ndarray) -> np.ndarray:
    man = json.load(open(os.path.join(pack, "manifest.json")))
    enc = ort.InferenceSession(os.path.join(pack, man["files"]["vaeEncoder"]), providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(os.path.join(pack, man["files"]["vaeDecoder"]), providers=["CPUExecutionProvider"])
    x = (norm_disp(depth) * 2 - 1)[:, None].repeat(3, axis=1).astype(np.float32)
    z = enc.run(None, {"sample": x})[0]
    out = []
    chunk = man.get("defaults", {}).get("decodeChunk", 8)
    for i in range(0, len(z), chunk):
        y = dec.run(None, {"latent": z[i:i + chunk]})[0]
        out.append(np.clip(y * 0.5 + 0.5, 0, 1).mean(axis=1))
    return np.concatenate(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", required=True, help="folder of clip folders (each with rgb/ and depth/)")
    ap.add_argument("--pack", default=os.path.join(ROOT, "models", "synthetic-small"))
    ap.add_argument("--train-disp", default=os.path.join(HERE, "data", "train", "disp.npy"))
    ap.add_argument("--ckpt", default=None, help="unused; recorded in the output for provenance")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--out", default=None)
    ap.add_argument("--video-args", default="", help="extra arguments for the video run, e.g. '--steps 2' (default: the pack's defaults)")
    ap.add_argument("--skip-baselines", action="store_true", help="only the video prediction (no per-frame, priors, ceiling)")
    args = ap.parse_args()

    clips = sorted(d for d in os.listdir(args.clips) if os.path.isdir(os.path.join(args.clips, d, "rgb")))
    mean_prior = None
    if os.path.exists(args.train_disp):
        mean_prior = np.load(args.train_disp, mmap_mode="r").astype(np.float32).mean(axis=(0, 1))
    rows: dict[str, dict] = {}
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for c in clips:
            cdir = os.path.join(args.clips, c)
            gt_dir = os.path.join(cdir, "depth")
            depth = load_depth(gt_dir)
            n, h, w = depth.shape
            r: dict[str, dict] = {}
            t0 = time.time()
            v = cli(["eval", "--dataset", cdir, "--model", args.pack, "--threads", args.threads] + args.video_args.split() + EVAL_ARGS)
            r["video"] = pick(v)
            timings[c] = round(time.time() - t0, 2)
            if not args.skip_baselines:  # the reference points beside the video prediction
                out = os.path.join(tmp, f"pf-{c}")
                cli(["infer", os.path.join(cdir, "rgb"), "--out", out, "--model", args.pack, "--threads", args.threads,
                     "--window", "1", "--overlap", "0", "--no-videos", "--json"])
                r["perframe"] = pick(cli(["eval", "--pred", out, "--gt", gt_dir] + EVAL_ARGS))
                r["constant"] = eval_pred(np.full((n, h, w), 0.5, np.float32), gt_dir, tmp, "const")
                if mean_prior is not None and mean_prior.shape == (h, w):
                    r["meanprior"] = eval_pred(np.repeat(mean_prior[None], n, 0), gt_dir, tmp, "meanprior")
                grad = np.repeat(np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None], w, 1)
                r["vgradient"] = eval_pred(np.repeat(grad[None], n, 0), gt_dir, tmp, "vgrad")
                r["ceiling"] = eval_pred(ceiling(args.pack, depth), gt_dir, tmp, "ceiling")
            rows[c] = r
            print(json.dumps({"clip": c, **{k: {m: round(x, 4) if isinstance(x, float) else x for m, x in d.items()}
                                              for k, d in r.items()}}), flush=True)
    methods = list(next(iter(rows.values())).keys())
    mean = {}
    for mth in methods:
        mean[mth] = {}
        for k in KEYS:
            vals = [rows[c][mth][k] for c in rows if rows[c][mth].get(k) is not None]
            mean[mth][k] = round(float(np.mean(vals)), 5) if vals else None
    print("\nmean over clips " + ", ".join(clips))
    print(f"{'method':<10} {'AbsRel':>8} {'delta1':>8} {'RMSE':>8} {'temporal':>9} {'tempBnd':>9} {'flicker':>9}")
    for mth in methods:
        m = mean[mth]
        f = lambda x, p=4: "   -    " if x is None else f"{x:8.{p}f}"
        print(f"{mth:<10} {f(m['absrel'])} {f(m['delta1'])} {f(m['rmse'])} {f(m['temporal'], 5)} "
              f"{f(m['temporalBoundary'], 5)} {f(m['flickerNoGt'], 5)}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"pack": args.pack, "ckpt": args.ckpt, "videoArgs": args.video_args, "clips": clips, "mean": mean, "perClip": rows,
                       "videoEvalSeconds": timings}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
