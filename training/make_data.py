#!/usr/bin/env python3
"""Render training clips with the project's own scene renderer and pack them into numpy arrays.

Every clip is one seed of ``node bin/depthcrafter-live.js synth`` (procedural indoor/outdoor
scenes with exact planar depth, see docs/synthetic-scenes.md). Seed ranges are fixed and
disjoint, so a number measured on an evaluation seed never saw that scene in training:

    train  1000-1999   (this script's default: --split train)
    val    80000-80999 (held-out clips for the quick metric during training: --split val)
    eval   90000+      (never rendered by this script; reserved for `depthcrafter-live eval`)

Output (``training/data/<split>/``, gitignored):

    rgb.npy    uint8   [clips, frames, H, W, 3]
    disp.npy   float16 [clips, frames, H, W]  affine-invariant target: disparity = 1/depth,
               min-max normalised over the valid pixels of the whole clip to [0, 1];
               invalid pixels (GT depth 0, i.e. sky) get 0, i.e. "far"
    depth.npy  float16 [clips, frames, H, W]  metric depth in metres (0 = invalid), for metrics
    seeds.npy  int64   [clips]
    info.json  sizes, seeds, renderer command, timings

Rendered PNG folders are kept under ``training/data/<split>/clips/<seed>/`` only with --keep-png.

Usage (repository root; dist/ must be built: ``npx tsc -p tsconfig.json``)::

    .venv-train/bin/python training/make_data.py --split train --clips 256 --frames 32 --size 128x128
    .venv-train/bin/python training/make_data.py --split val --clips 4 --frames 32 --size 128x128
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SPLIT_SEED_START = {"train": 1000, "val": 80000}
SPLIT_SEED_END = {"train": 1999, "val": 80999}
DEPTH_SCALE = 0.001  # synth writes uint16 millimetres


def render_clip(seed: int, frames: int, size: str, out_dir: str) -> dict:
    cmd = ["node", os.path.join(ROOT, "bin", "depthcrafter-live.js"), "synth", "--seed", str(seed),
           "--frames", str(frames), "--size", size, "--out", out_dir, "--json"]
    res = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(res.stdout)


def normalised_disparity(depth_m: np.ndarray) -> np.ndarray:
    """[F,H,W] metres (0 = invalid) -> disparity min-max normalised over the clip's valid pixels."""
    valid = depth_m > 0
    disp = np.zeros_like(depth_m, dtype=np.float32)
    disp[valid] = 1.0 / depth_m[valid]
    if valid.any():
        lo, hi = disp[valid].min(), disp[valid].max()
        disp[valid] = (disp[valid] - lo) / max(hi - lo, 1e-6)
    return disp


def load_clip(folder: str, frames: int) -> tuple[np.ndarray, np.ndarray]:
    names = sorted(os.listdir(os.path.join(folder, "rgb")))[:frames]
    rgb = np.stack([np.array(Image.open(os.path.join(folder, "rgb", n)).convert("RGB")) for n in names])
    depth = np.stack([np.array(Image.open(os.path.join(folder, "depth", n))).astype(np.float32) for n in names])
    return rgb, depth * DEPTH_SCALE


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=sorted(SPLIT_SEED_START), default="train")
    ap.add_argument("--clips", type=int, default=256)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--size", default="128x128", help="WxH, the pack's native size")
    ap.add_argument("--seed-start", type=int, default=None, help="first seed (default: the split's range start)")
    ap.add_argument("--out", default=None, help="default training/data/<split>")
    ap.add_argument("--keep-png", action="store_true")
    args = ap.parse_args()

    start = SPLIT_SEED_START[args.split] if args.seed_start is None else args.seed_start
    seeds = list(range(start, start + args.clips))
    if seeds[-1] > SPLIT_SEED_END[args.split] or seeds[0] < SPLIT_SEED_START[args.split]:
        raise SystemExit(f"seeds {seeds[0]}-{seeds[-1]} leave the {args.split} range "
                         f"{SPLIT_SEED_START[args.split]}-{SPLIT_SEED_END[args.split]}")
    w, h = (int(v) for v in args.size.lower().split("x"))
    if w % 64 or h % 64:
        # the engine snaps the model resolution to multiples of 64, so train where it will run
        raise SystemExit("--size: width and height must be multiples of 64")
    out = args.out or os.path.join(HERE, "data", args.split)
    clip_root = os.path.join(out, "clips")
    os.makedirs(clip_root, exist_ok=True)

    rgb_all = np.zeros((len(seeds), args.frames, h, w, 3), np.uint8)
    disp_all = np.zeros((len(seeds), args.frames, h, w), np.float16)
    depth_all = np.zeros((len(seeds), args.frames, h, w), np.float16)
    kinds: list[str] = []
    t0 = time.time()
    for i, seed in enumerate(seeds):
        folder = os.path.join(clip_root, str(seed))
        info = render_clip(seed, args.frames, args.size, folder)
        kinds.append(info.get("kind", "?"))
        rgb, depth = load_clip(folder, args.frames)
        rgb_all[i] = rgb
        depth_all[i] = depth.astype(np.float16)
        disp_all[i] = normalised_disparity(depth).astype(np.float16)
        if not args.keep_png:
            shutil.rmtree(folder)
        if (i + 1) % 16 == 0 or i + 1 == len(seeds):
            print(f"[make_data] {args.split}: {i + 1}/{len(seeds)} clips, {time.time() - t0:.0f}s", flush=True)

    np.save(os.path.join(out, "rgb.npy"), rgb_all)
    np.save(os.path.join(out, "disp.npy"), disp_all)
    np.save(os.path.join(out, "depth.npy"), depth_all)
    np.save(os.path.join(out, "seeds.npy"), np.array(seeds, np.int64))
    if not args.keep_png:
        shutil.rmtree(clip_root, ignore_errors=True)
    meta = {
        "split": args.split, "seeds": [seeds[0], seeds[-1]], "clips": len(seeds), "frames": args.frames,
        "width": w, "height": h, "kinds": {k: kinds.count(k) for k in sorted(set(kinds))},
        "renderer": "node bin/depthcrafter-live.js synth --seed S --frames F --size WxH --out DIR",
        "target": "disparity=1/depth, min-max over the clip's valid pixels, invalid=0",
        "seconds": round(time.time() - t0, 1),
    }
    with open(os.path.join(out, "info.json"), "w") as fh:
        json.dump(meta, fh, indent=2)
    print(f"[make_data] wrote {out}: {json.dumps(meta)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
