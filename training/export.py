#!/usr/bin/env python3
"""Export a trained checkpoint (training/train.py's final.pt) as the model pack models/synthetic-small/.

Writes manifest.json (docs/model-pack.md, format version 1) and the four ONNX files, float32,
opset 17, with dynamic N/T/H/W/h/w axes. Each file is then run with onnxruntime on random inputs
at two sizes (the native one and a non-square one, to prove the axes are really dynamic) and
compared with PyTorch; the max abs differences are printed and written to export-report.json in
the run folder (not into the pack).

Usage: .venv-train/bin/python training/export.py --ckpt training/runs/short/final.pt [--out models/synthetic-small]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch

from model import (CLIP_MEAN, CLIP_SIZE, CLIP_STD, DOWN, LATENT_CH, SCALING_FACTOR, ExportImageEncoder, ExportUNet,
                   ExportVAEDecoder, ExportVAEEncoder, Models)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OPSET = 17
FILES = {"imageEncoder": "image_encoder.onnx", "vaeEncoder": "vae_encoder.onnx", "unet": "unet.onnx",
         "vaeDecoder": "vae_decoder.onnx"}


def export(module: torch.nn.Module, args: tuple, path: str, inputs: list[str], outputs: list[str], axes: dict) -> None:
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, path, input_names=inputs, output_names=outputs, dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False, do_constant_folding=True)
    model = onnx.load(path)
    # deterministic files: no producer version noise
    model.producer_name = "depthcrafter-live/training/export.py"
    model.producer_version = "1"
    onnx.checker.check_model(model, full_check=True)
    onnx.save_model(model, path)


def manifest(name: str, m: Models, height: int, width: int, info: dict) -> dict:
    return {
        "format": "depthcrafter-pack",
        "formatVersion": 1,
        "name": name,
        "version": info.get("version", "0.1.0"),
        "description": (
            "Small model trained on synthetic scenes for demos and tests; real-world quality needs the real "
            "DepthCrafter weights. Our own small architecture with the DepthCrafter pack contract (per-frame "
            f"image embedding D={m.cfg.embed_dim}, shared VAE with a temporal decoder, spatio-temporal UNet with "
            "EDM v-prediction), trained from scratch on CPU on clips rendered by `depthcrafter-live synth` "
            f"(training seeds 1000-1999; evaluation seeds 90000+ are never trained on) at {width}x{height}. "
            "Built by training/run.sh (see docs/training.md)."
        ),
        "licence": "Apache-2.0 (trained by this project from scratch on its own synthetic renders; no third-party model content)",
        "latentChannels": LATENT_CH,
        "vaeScalingFactor": SCALING_FACTOR,
        "spatialDownsample": DOWN,
        "imageEncoder": {"size": CLIP_SIZE, "mean": list(CLIP_MEAN), "std": list(CLIP_STD)},
        "embeddingDim": m.cfg.embed_dim,
        "sigmaMin": 0.002,
        "sigmaMax": 700,
        "defaults": {"steps": 5, "guidance": 1.0, "window": info.get("window", 16), "overlap": info.get("overlap", 4), "maxRes": max(height, width),
                     "noiseAugStrength": 0.02, "decodeChunk": 8},
        "maxWindow": 32,
        "nativeResolution": {"height": height, "width": width},
        "dtype": "float32",
        "files": dict(FILES),
        "addedTimeIds": [7, 127, 0.02],
        "notes": info.get("notes", ""),
        "sources": ["training/ (this repository): make_data.py, model.py, train.py, export.py"],
        "trainingDomain": "synthetic",
    }


def check(name: str, sess_path: str, module: torch.nn.Module, feeds: dict) -> float:
    sess = ort.InferenceSession(sess_path, providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {k: v.numpy() for k, v in feeds.items()})
    with torch.no_grad():
        want = module(*feeds.values()).numpy()
    assert got.shape == want.shape, f"{name}: onnx shape {got.shape} vs torch {want.shape}"
    assert np.isfinite(got).all(), f"{name}: non-finite output"
    diff = float(np.abs(got - want).max())
    scale = float(np.abs(want).max())
    print(f"  {name}: shape {list(got.shape)}, max|torch| {scale:.4g}, max abs diff {diff:.3g}")
    return diff


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default=os.path.join(HERE, "runs", "short", "final.pt"))
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "synthetic-small"))
    ap.add_argument("--name", default="synthetic-small")
    ap.add_argument("--size", default="128x128", help="WxH the model was trained at (nativeResolution)")
    ap.add_argument("--version", default="0.1.0", help="manifest version")
    ap.add_argument("--notes", default=(
        "Recipe (training/run.sh): 192 clips x 32 frames of synth seeds 1000-1191 at 128x128; phase 1 "
        "autoencoder 5 min, latent cache, spatial denoiser 7 min, temporal denoiser 8 min; phase 2 temporal "
        "denoiser +9 min; one CPU thread. Measured quality and reference points: docs/training.md."))
    ap.add_argument("--window", type=int, default=16, help="the pack's default window (frames, <= maxWindow 32)")
    ap.add_argument("--overlap", type=int, default=4, help="the pack's default overlap between windows")
    ap.add_argument("--raw", action="store_true", help="a ckpt.pt with EMA weights: export the raw weights instead")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    width, height = (int(v) for v in args.size.lower().split("x"))

    state = torch.load(args.ckpt, weights_only=False)
    m = Models.from_state(state["models"] if "models" in state else state)  # final.pt, or a ckpt.pt snapshot
    if state.get("ema") and not args.raw:  # a snapshot taken during an EMA stage: export the EMA, as final.pt would hold
        m.unet.load_state_dict(state["ema"][0])
        m.image.load_state_dict(state["ema"][1])
    for mod in (m.image, m.vae, m.unet):
        mod.eval()
    os.makedirs(args.out, exist_ok=True)
    D = m.cfg.embed_dim
    h, w = height // DOWN, width // DOWN
    p = {k: os.path.join(args.out, f) for k, f in FILES.items()}
    wrappers = {"imageEncoder": ExportImageEncoder(m), "vaeEncoder": ExportVAEEncoder(m), "unet": ExportUNet(m),
                "vaeDecoder": ExportVAEDecoder(m)}

    T = 3
    export(wrappers["imageEncoder"], (torch.randn(T, 3, CLIP_SIZE, CLIP_SIZE),), p["imageEncoder"],
           ["pixel_values"], ["image_embeds"], {"pixel_values": {0: "N"}, "image_embeds": {0: "N"}})
    export(wrappers["vaeEncoder"], (torch.rand(T, 3, height, width) * 2 - 1,), p["vaeEncoder"],
           ["sample"], ["latent_mean"], {"sample": {0: "N", 2: "H", 3: "W"}, "latent_mean": {0: "N", 2: "h", 3: "w"}})
    export(wrappers["unet"], (torch.randn(1, T, 2 * LATENT_CH, h, w), torch.tensor([1.0]), torch.randn(1, T, D),
                              torch.tensor([[7.0, 127.0, 0.02]])), p["unet"],
           ["sample", "timestep", "encoder_hidden_states", "added_time_ids"], ["noise_pred"],
           {"sample": {1: "T", 3: "h", 4: "w"}, "encoder_hidden_states": {1: "T"}, "noise_pred": {1: "T", 3: "h", 4: "w"}})
    export(wrappers["vaeDecoder"], (torch.randn(T, LATENT_CH, h, w) / SCALING_FACTOR,), p["vaeDecoder"],
           ["latent"], ["sample"], {"latent": {0: "T", 2: "h", 3: "w"}, "sample": {0: "T", 2: "H", 3: "W"}})

    with open(os.path.join(args.out, "manifest.json"), "w", encoding="utf-8") as fh:
        json.dump(manifest(args.name, m, height, width, {"notes": args.notes, "version": args.version, "window": args.window, "overlap": args.overlap}), fh, indent=2)
        fh.write("\n")

    print("onnxruntime vs PyTorch on random inputs:")
    report: dict = {}
    for (tt, hh, ww) in ((5, height, width), (9, 64, 192), (1, height, width)):
        lh, lw = hh // DOWN, ww // DOWN
        tag = f"T{tt}_{ww}x{hh}"
        report[tag] = {
            "image_encoder": check(f"image_encoder N={tt}", p["imageEncoder"], wrappers["imageEncoder"],
                                   {"pixel_values": torch.randn(tt, 3, CLIP_SIZE, CLIP_SIZE)}),
            "vae_encoder": check(f"vae_encoder N={tt} {ww}x{hh}", p["vaeEncoder"], wrappers["vaeEncoder"],
                                 {"sample": torch.rand(tt, 3, hh, ww) * 2 - 1}),
            "unet": check(f"unet T={tt} {lw}x{lh}", p["unet"], wrappers["unet"], {
                "sample": torch.cat([torch.randn(1, tt, LATENT_CH, lh, lw), torch.randn(1, tt, LATENT_CH, lh, lw) * 5], 2),
                "timestep": torch.tensor([0.25 * np.log(134.85444)], dtype=torch.float32),
                "encoder_hidden_states": torch.randn(1, tt, D),
                "added_time_ids": torch.tensor([[7.0, 127.0, 0.02]])}),
            "vae_decoder": check(f"vae_decoder T={tt} {lw}x{lh}", p["vaeDecoder"], wrappers["vaeDecoder"],
                                 {"latent": torch.randn(tt, LATENT_CH, lh, lw) / SCALING_FACTOR}),
        }
    sizes = {f: os.path.getsize(os.path.join(args.out, f)) for f in sorted(os.listdir(args.out))}
    total = sum(sizes.values())
    print(f"pack {args.out}: {total / 1e6:.2f} MB " + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sizes.items()))
    worst = max(v for r in report.values() for v in r.values())
    with open(os.path.join(os.path.dirname(os.path.abspath(args.ckpt)), "export-report.json"), "w") as fh:
        json.dump({"max_abs_diff": report, "worst": worst, "bytes": sizes, "total_bytes": total}, fh, indent=2)
    if worst > 1e-3:
        print(f"WARNING: worst max abs diff {worst:.3g} > 1e-3", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
