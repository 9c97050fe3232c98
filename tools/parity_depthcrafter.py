#!/usr/bin/env python3
"""Parity check: the reference DepthCrafter pipeline (its own code) against this project's engine, on tiny
randomly initialised models of the real classes, with identical frames and identical noise.

Steps (everything under --work, nothing committed):
  1. tiny models (tools/make_tiny_depthcrafter.py) and their packs, fp32 and fp16 (tools/export_depthcrafter.py);
  2. a clip from the project's renderer (`depthcrafter-live synth`) and one draw of noise: pixel [N,3,H,W] for the
     VAE-input augmentation and latent [1,W,4,h,w] for the initial latents, saved for `infer --noise`;
  3. the reference: DepthCrafterPipeline from a local copy of github.com/Tencent/DepthCrafter (--depthcrafter), the
     same noise injected (its pixel-noise draw is replaced, the latents passed in), run in a child process for a
     clean peak-RSS figure; its stitched latents and its depth (mean over RGB, whole-video min-max, as its
     inference.py does) are saved;
  4. ours: `depthcrafter-live infer FRAMES --noise noise.npz --save-latents`, in a child process;
  5. max |diff| of stitched latents and depth, for guidance 1.0 and 1.2, fp32; fp16 pack vs fp32 pack; timing.

Usage (repository root; diffusers importable, e.g. its source tree on PYTHONPATH):
  PYTHONPATH=/path/to/diffusers/src python tools/parity_depthcrafter.py --depthcrafter /path/to/DepthCrafter \
      --work .tmp/parity [--frames 38 --window 16 --overlap 4 --steps 5 --size 192x128] [--attention unfused]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLI = ["node", os.path.join(ROOT, "bin", "depthcrafter-live.js")]


def run(cmd: list[str], env: dict | None = None) -> tuple[str, float, int]:
    """Runs a child process; returns stdout, wall seconds and that child's peak RSS in bytes (wait4)."""
    import tempfile
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.time()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.time() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.read().decode()[-4000:]}")
        return out.read().decode(), wall, usage.ru_maxrss * 1024


def load_frames(folder: str) -> np.ndarray:
    from PIL import Image
    names = sorted(n for n in os.listdir(folder) if n.endswith(".png"))
    return np.stack([np.asarray(Image.open(os.path.join(folder, n)).convert("RGB")) for n in names])


# ---------------------------------------------------------------------------------------------
# the reference, in a child process (`--reference-child`)


def reference_child(a) -> int:
    import torch
    sys.path.insert(0, a.depthcrafter)
    import depthcrafter.depth_crafter_ppl as ppl
    from depthcrafter.depth_crafter_ppl import DepthCrafterPipeline
    from depthcrafter.unet import DiffusersUNetSpatioTemporalConditionModelDepthCrafter
    from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    torch.set_num_threads(a.threads)
    dtype = torch.float16 if a.ref_dtype == "float16" else torch.float32
    svd = os.path.join(a.tiny, "svd")
    pipe = DepthCrafterPipeline(
        vae=AutoencoderKLTemporalDecoder.from_pretrained(os.path.join(svd, "vae"), torch_dtype=dtype),
        image_encoder=CLIPVisionModelWithProjection.from_pretrained(os.path.join(svd, "image_encoder"), dtype=dtype),
        unet=DiffusersUNetSpatioTemporalConditionModelDepthCrafter.from_pretrained(os.path.join(a.tiny, "unet"), torch_dtype=dtype),
        scheduler=EulerDiscreteScheduler.from_pretrained(os.path.join(svd, "scheduler")),
        feature_extractor=CLIPImageProcessor.from_pretrained(os.path.join(svd, "feature_extractor")),
    )
    pipe.set_progress_bar_config(disable=True)
    noise = np.load(a.noise)
    pixel = torch.from_numpy(noise["pixel"])
    latent = torch.from_numpy(noise["latent"])

    def injected_randn(shape, generator=None, device=None, dtype=None, layout=None):
        if tuple(shape) != tuple(pixel.shape):
            raise RuntimeError(f"unexpected noise draw of shape {tuple(shape)}")
        return pixel.to(device=device, dtype=dtype)

    ppl.randn_tensor = injected_randn  # the pipeline's only other draw is the latents, passed in below
    captured = {}
    decode = pipe.decode_latents

    def capture(latents, num_frames, decode_chunk_size=14):
        captured["latents"] = latents[0].float().cpu().numpy()
        return decode(latents, num_frames, decode_chunk_size)

    pipe.decode_latents = capture
    frames = load_frames(a.frames).astype(np.float32) / 255.0  # as its read_video_frames: float [t,h,w,3] in [0,1]
    t0 = time.time()
    with torch.inference_mode():
        res = pipe(frames, height=frames.shape[1], width=frames.shape[2], output_type="np", guidance_scale=float(a.guidance[0]),
                   num_inference_steps=a.steps, window_size=a.window, overlap=a.overlap, latents=latent).frames[0]
    seconds = time.time() - t0
    res = res.sum(-1) / res.shape[-1]  # as its inference.py
    res = (res - res.min()) / (res.max() - res.min())
    np.savez(a.out, depth=res.astype(np.float32), latents=captured["latents"])
    print(json.dumps({"seconds": seconds, "frames": len(frames), "fps": len(frames) / seconds}))
    return 0


# ---------------------------------------------------------------------------------------------
# driver


def reference(a, guidance: float, dtype: str, out: str) -> dict:
    cmd = [sys.executable, __file__, "--reference-child", "--depthcrafter", a.depthcrafter, "--tiny", a.tiny_dir,
           "--frames-dir", a.frames_dir, "--noise", a.noise_path, "--guidance", str(guidance), "--steps", str(a.steps),
           "--window", str(a.window), "--overlap", str(a.overlap), "--ref-dtype", dtype, "--out", out, "--threads", str(a.threads)]
    stdout, wall, rss = run(cmd)
    return {**json.loads(stdout.strip().splitlines()[-1]), "wall": wall, "peak_rss": rss}


def ours(a, pack: str, guidance: float, out: str) -> dict:
    cmd = CLI + ["infer", a.frames_dir, "--model", pack, "--window", str(a.window), "--overlap", str(a.overlap),
                 "--steps", str(a.steps), "--guidance", str(guidance), "--noise", a.noise_path, "--save-latents",
                 "--no-videos", "--no-compress", "--threads", str(a.threads), "--out", out, "--json"]
    stdout, wall, rss = run(cmd)
    r = json.loads(stdout)
    z = np.load(r["files"]["npz"])
    return {"depth": z["depth"], "latents": np.load(r["files"]["latents"]), "seconds": r["seconds"], "fps": r["inferFps"],
            "wall": wall, "peak_rss": rss, "worker_rss": r.get("workerRssBytes")}


def segments(n: int, w: int, o: int) -> list[tuple[int, int]]:
    if n <= w:
        return [(0, n)]
    out, s = [], 0
    while s < n - o:
        out.append((s, min(s + w, n)))
        s += w - o
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--depthcrafter", required=True, help="local copy of github.com/Tencent/DepthCrafter (never committed)")
    ap.add_argument("--work", default=os.path.join(ROOT, ".tmp", "parity"))
    ap.add_argument("--frames", type=int, default=38)
    ap.add_argument("--size", default="192x128", help="WxH of the clip (multiples of 64: the engine's model size, no resize)")
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--overlap", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--guidance", type=float, nargs="+", default=[1.0, 1.2])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--skip-fp16", action="store_true")
    ap.add_argument("--attention", choices=["mha", "unfused"], default="mha",
                    help="attention form of the exported packs (export_depthcrafter.py --attention)")
    ap.add_argument("--vae-layers", type=int, default=1, help="layers per block of the tiny VAE (2: its decoder has "
                    "the mid-block attention)")
    ap.add_argument("--out-json", default=None)
    # child mode
    ap.add_argument("--reference-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tiny", help=argparse.SUPPRESS)
    ap.add_argument("--frames-dir", help=argparse.SUPPRESS)
    ap.add_argument("--noise", help=argparse.SUPPRESS)
    ap.add_argument("--ref-dtype", default="float32", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.reference_child:
        a.frames = a.frames_dir
        return reference_child(a)

    if not os.path.isfile(os.path.join(a.depthcrafter, "depthcrafter", "depth_crafter_ppl.py")):
        raise SystemExit(f"--depthcrafter {a.depthcrafter}: no depthcrafter/depth_crafter_ppl.py there")
    os.makedirs(a.work, exist_ok=True)
    a.tiny_dir = os.path.join(a.work, "tiny-models")
    py = [sys.executable]
    if not os.path.isdir(os.path.join(a.tiny_dir, "unet")):
        run(py + [os.path.join(HERE, "make_tiny_depthcrafter.py"), "--out", a.tiny_dir, "--vae-layers", str(a.vae_layers)])
    tag = "" if a.attention == "mha" else "-unfused"
    packs = {"float32": os.path.join(a.work, f"pack-fp32{tag}"), "float16": os.path.join(a.work, f"pack-fp16{tag}")}
    for dt, pack in packs.items():
        if dt == "float16" and a.skip_fp16:
            continue
        if not os.path.isfile(os.path.join(pack, "manifest.json")):
            run(py + [os.path.join(HERE, "export_depthcrafter.py"), "--unet", os.path.join(a.tiny_dir, "unet"), "--svd",
                      os.path.join(a.tiny_dir, "svd"), "--out", pack, "--dtype", dt, "--name", f"tiny-depthcrafter-{dt}",
                      "--attention", a.attention,
                      "--description", "tiny random models of the DepthCrafter classes, for the parity check only"])

    W, H = (int(v) for v in a.size.lower().split("x"))
    clip = os.path.join(a.work, f"clip-{a.seed}-{a.frames}-{a.size}")
    if not os.path.isdir(clip):
        run(CLI + ["synth", "--seed", str(a.seed), "--frames", str(a.frames), "--size", a.size, "--out", clip])
    a.frames_dir = os.path.join(clip, "rgb")
    rng = np.random.default_rng(a.seed)
    a.noise_path = os.path.join(a.work, f"noise-{a.seed}-{a.frames}-{a.size}-w{a.window}.npz")
    np.savez(a.noise_path, pixel=rng.standard_normal((a.frames, 3, H, W)).astype(np.float32),
             latent=rng.standard_normal((1, min(a.window, a.frames), 4, H // 8, W // 8)).astype(np.float32))

    segs = segments(a.frames, a.window, a.overlap)
    report = {"frames": a.frames, "size": a.size, "window": a.window, "overlap": a.overlap, "steps": a.steps,
              "attention": a.attention, "vaeLayers": a.vae_layers, "segments": segs, "runs": []}
    print(f"[parity] clip {a.frames} frames {a.size}, window {a.window}, overlap {a.overlap}, {a.steps} steps: "
          f"segments {segs}", flush=True)
    for g in a.guidance:
        ref = reference(a, g, "float32", os.path.join(a.work, f"ref-g{g}.npz"))
        rz = np.load(os.path.join(a.work, f"ref-g{g}.npz"))
        o32 = ours(a, packs["float32"], g, os.path.join(a.work, f"ours-fp32{tag}-g{g}"))
        row = {"guidance": g,
               "latents_max_abs_diff": float(np.abs(o32["latents"] - rz["latents"]).max()),
               "latents_max_abs": float(np.abs(rz["latents"]).max()),
               "depth_max_abs_diff": float(np.abs(o32["depth"] - rz["depth"]).max()),
               "depth_mean_abs_diff": float(np.abs(o32["depth"] - rz["depth"]).mean()),
               "reference": {k: ref[k] for k in ("seconds", "fps", "wall", "peak_rss")},
               "ours_fp32": {k: o32[k] for k in ("seconds", "fps", "wall", "peak_rss", "worker_rss")}}
        if not a.skip_fp16:
            o16 = ours(a, packs["float16"], g, os.path.join(a.work, f"ours-fp16{tag}-g{g}"))
            row["fp16_vs_fp32_depth_max_abs_diff"] = float(np.abs(o16["depth"] - o32["depth"]).max())
            row["fp16_vs_fp32_latents_max_abs_diff"] = float(np.abs(o16["latents"] - o32["latents"]).max())
            row["ours_fp16"] = {k: o16[k] for k in ("seconds", "fps", "wall", "peak_rss", "worker_rss")}
        report["runs"].append(row)
        print(f"[parity] guidance {g}: " + json.dumps({k: v for k, v in row.items() if not isinstance(v, dict)}), flush=True)
        print(f"[parity]   reference {json.dumps(row['reference'])}\n[parity]   ours fp32 {json.dumps(row['ours_fp32'])}", flush=True)
    out = a.out_json or os.path.join(a.work, "parity.json")
    with open(out, "w") as fh:
        json.dump(report, fh, indent=2)
    worst = max(r["depth_max_abs_diff"] for r in report["runs"])
    print(f"[parity] worst fp32 depth max |diff| {worst:.3g} (target <= 1e-3): {'PASS' if worst <= 1e-3 else 'FAIL'}; wrote {out}")
    return 0 if worst <= 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
