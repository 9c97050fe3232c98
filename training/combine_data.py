#!/usr/bin/env python3
"""Concatenate training data folders written by make_data.py (same frames and size) into one.

Usage: .venv-train/bin/python training/combine_data.py training/data/train training/data/train-b --out training/data/train-1000
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

ARRAYS = ["rgb", "disp", "depth", "seeds"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    infos = [json.load(open(os.path.join(f, "info.json"))) for f in args.folders]
    shape = {(i["frames"], i["width"], i["height"]) for i in infos}
    if len(shape) != 1:
        raise SystemExit(f"folders differ in frames/size: {sorted(shape)}")
    os.makedirs(args.out, exist_ok=True)
    for name in ARRAYS:
        parts = [np.load(os.path.join(f, f"{name}.npy"), mmap_mode="r") for f in args.folders]
        np.save(os.path.join(args.out, f"{name}.npy"), np.concatenate(parts))
    seeds = np.load(os.path.join(args.out, "seeds.npy"))
    if len(set(seeds.tolist())) != len(seeds):
        raise SystemExit("the folders share seeds")
    kinds: dict[str, int] = {}
    for i in infos:
        for k, v in i["kinds"].items():
            kinds[k] = kinds.get(k, 0) + v
    meta = {**infos[0], "seeds": [int(seeds.min()), int(seeds.max())], "clips": int(len(seeds)), "kinds": kinds,
            "combined_from": args.folders, "seconds": round(sum(i["seconds"] for i in infos), 1)}
    with open(os.path.join(args.out, "info.json"), "w") as fh:
        json.dump(meta, fh, indent=2)
    print(f"[combine_data] wrote {args.out}: {meta['clips']} clips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
