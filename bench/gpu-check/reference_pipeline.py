#!/usr/bin/env python3
"""The reference DepthCrafter pipeline in PyTorch, for bench/gpu-check.sh: the diffusers/transformers networks of a
model folder (tools/make_tiny_depthcrafter.py layout: unet/, svd/vae, svd/image_encoder, svd/feature_extractor,
svd/scheduler) run the way the reference runs them (../shared/reference/depthcrafter-inference-spec.md, sections 1-5;
written from the spec, not from the DepthCrafter code): per-frame CLIP embeddings of the clean frames (antialiased
resize to 224, CLIP mean/std, chunks of 8), VAE latent means of the noise-augmented frames in float32 (chunks of 8,
unscaled), Euler v-prediction over Karras sigmas with c_in/c_skip/c_out/c_noise, one noise block rolled by the overlap
per window, overlap re-noised from the previous window's result, linear latent blending, then temporal decoding in
chunks of 8 and the mean-of-RGB, whole-video min-max depth. The UNet call is DepthCrafter's (one image embedding per
frame): PerFrameConditionedUNet from tools/export_depthcrafter.py, checked there against the stock forward.

    python bench/gpu-check/reference_pipeline.py --models DIR --frames FRAMES_DIR --window 110 --overlap 25 --steps 5 \
        --device cuda --dtype float16 --out ref.npz --json
    ... --noise noise.npz        # arrays pixel [N,3,H,W] and latent [1,W,4,h,w] (as `infer --noise`): same noise as ours

Prints one JSON line: frames, size, seconds per stage (imageEncoder, vaeEncoder, unet, vaeDecoder, total, load) and
peak memory (torch.cuda.max_memory_allocated on CUDA, else the process's peak RSS).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))

ADDED_TIME_IDS = [7.0, 127.0, 0.02]
CHUNK = 8


def karras_sigmas(n: int, smin: float, smax: float, rho: float = 7.0) -> list[float]:
    ramp = np.linspace(0, 1, n) if n > 1 else np.zeros(1)
    lo, hi = smin ** (1 / rho), smax ** (1 / rho)
    sig = (hi + ramp * (lo - hi)) ** rho
    return [float(np.float32(s)) for s in sig] + [0.0]


def segments(n: int, w: int, o: int) -> list[tuple[int, int]]:
    if n <= w:
        return [(0, n)]
    out, s = [], 0
    while s < n - o:
        out.append((s, min(s + w, n)))
        s += w - o
    return out


def load_frames(folder: str) -> np.ndarray:
    from PIL import Image
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith((".png", ".jpg", ".jpeg")))
    return np.stack([np.asarray(Image.open(os.path.join(folder, n)).convert("RGB")) for n in names])


class Timer:
    def __init__(self, device: str) -> None:
        self.device, self.seconds = device, {}

    def __call__(self, key: str):
        timer = self

        class _T:
            def __enter__(self):
                if timer.device.startswith("cuda"):
                    torch.cuda.synchronize()
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                if timer.device.startswith("cuda"):
                    torch.cuda.synchronize()
                timer.seconds[key] = timer.seconds.get(key, 0.0) + time.perf_counter() - self.t0

        return _T()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--models", required=True)
    ap.add_argument("--frames", required=True, help="folder of PNG/JPEG frames at the processing size (multiples of 64)")
    ap.add_argument("--window", type=int, default=110)
    ap.add_argument("--overlap", type=int, default=25)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--guidance", type=float, default=1.0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", choices=["float16", "float32"], default=None, help="UNet, image encoder, VAE decoder (default: float16 on cuda, float32 on cpu)")
    ap.add_argument("--noise", default=None)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default=None, help="write depth [N,H,W] (and the stitched latents) to this .npz")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
    from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import _resize_with_antialiasing
    from transformers import CLIPVisionModelWithProjection
    from export_depthcrafter import PerFrameConditionedUNet

    if a.threads:
        torch.set_num_threads(a.threads)
    dev = a.device
    dt = getattr(torch, a.dtype or ("float16" if dev.startswith("cuda") else "float32"))
    svd = os.path.join(a.models, "svd")
    timer = Timer(dev)
    if dev.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    with timer("load"):
        unet = PerFrameConditionedUNet(UNetSpatioTemporalConditionModel.from_pretrained(os.path.join(a.models, "unet"), torch_dtype=dt).to(dev).eval())
        vae = AutoencoderKLTemporalDecoder.from_pretrained(os.path.join(svd, "vae"), torch_dtype=torch.float32).to(dev).eval()
        clip = CLIPVisionModelWithProjection.from_pretrained(os.path.join(svd, "image_encoder"), dtype=dt).to(dev).eval()
        proc = json.load(open(os.path.join(svd, "feature_extractor", "preprocessor_config.json")))
        sched = json.load(open(os.path.join(svd, "scheduler", "scheduler_config.json")))
    mean = torch.tensor(proc["image_mean"], device=dev).view(1, 3, 1, 1)
    std = torch.tensor(proc["image_std"], device=dev).view(1, 3, 1, 1)
    scaling = float(vae.config.scaling_factor)
    sig = karras_sigmas(a.steps, float(sched.get("sigma_min", 0.002)), float(sched.get("sigma_max", 700.0)))
    init_sigma = float(np.sqrt(sig[0] ** 2 + 1))

    rgb = load_frames(a.frames)
    n, H, W = rgb.shape[0], rgb.shape[1], rgb.shape[2]
    video = torch.from_numpy(rgb).to(dev).permute(0, 3, 1, 2).float() / 255.0 * 2 - 1  # [N,3,H,W] in [-1,1]
    gen = torch.Generator(device="cpu").manual_seed(a.seed)
    h, w = H // 8, W // 8
    win = min(a.window, n)
    if a.noise:
        z = np.load(a.noise)
        pixel_noise = torch.from_numpy(z["pixel"][:n]).to(dev)
        latent_noise = torch.from_numpy(z["latent"][:, :win]).to(dev)
    else:
        pixel_noise = torch.randn((n, 3, H, W), generator=gen).to(dev)
        latent_noise = torch.randn((1, win, 4, h, w), generator=gen).to(dev)

    with torch.inference_mode():
        # 2a: per-frame image embeddings of the clean frames
        emb = []
        with timer("imageEncoder"):
            for i in range(0, n, CHUNK):
                x = _resize_with_antialiasing(video[i:i + CHUNK].float(), (224, 224))
                x = ((x + 1) / 2 - mean) / std
                emb.append(clip(pixel_values=x.to(dt)).image_embeds)
            E = torch.cat(emb)[None]  # [1,N,D]
        # 2b: VAE latent means of the noise-augmented frames, float32, unscaled
        lat = []
        with timer("vaeEncoder"):
            aug = video + 0.02 * pixel_noise
            for i in range(0, n, CHUNK):
                lat.append(vae.encode(aug[i:i + CHUNK]).latent_dist.mode())
            C = torch.cat(lat)[None].to(dt)  # [1,N,4,h,w]
        ids = torch.tensor([ADDED_TIME_IDS], device=dev, dtype=dt)
        # 3-4: windows
        Z = latent_noise.float() * init_sigma
        stitched = None
        O = a.overlap if n > a.window else 0
        with timer("unet"):
            for k, (s0, s1) in enumerate(segments(n, a.window, a.overlap)):
                L = s1 - s0
                Zk = torch.roll(Z, shifts=k * O, dims=1)[:, :L]
                x = Zk.clone()
                if k > 0:
                    x[:, :O] = stitched[None, -O:] + (Zk[:, :O] / init_sigma) * sig[0]
                cond, e = C[:, s0:s1], E[:, s0:s1]
                for i in range(a.steps):
                    s, s_next = sig[i], sig[i + 1]
                    c_in, c_skip, c_out = 1 / np.sqrt(s * s + 1), 1 / (s * s + 1), -s / np.sqrt(s * s + 1)
                    t = torch.tensor([0.25 * np.log(s)], device=dev, dtype=dt)
                    F = unet(torch.cat([(x * c_in).to(dt), cond], dim=2), t, e, ids).float()
                    if a.guidance > 1:
                        Fu = unet(torch.cat([(x * c_in).to(dt), torch.zeros_like(cond)], dim=2), t, torch.zeros_like(e), ids).float()
                        F = Fu + a.guidance * (F - Fu)
                    D = c_skip * x + c_out * F
                    x = D if s_next == 0 else x + (s_next - s) * (x - D) / s
                    x = x.to(dt).float()  # the latents are stored in the UNet's dtype after each step
                cur = x[0]
                if stitched is None:
                    stitched = cur
                else:
                    wts = torch.linspace(0, 1, O, device=dev).view(O, 1, 1, 1)
                    blend = wts * cur[:O] + (1 - wts) * stitched[-O:]
                    stitched = torch.cat([stitched[:-O], blend, cur[O:]])
        # 5: temporal decode in chunks of 8, then depth
        out = []
        with timer("vaeDecoder"):
            dec = vae.to(dt)
            for i in range(0, n, CHUNK):
                zc = (stitched[i:i + CHUNK] / scaling).to(dt)
                out.append(dec.decode(zc, num_frames=zc.shape[0]).sample.float())
            frames = torch.cat(out)
    d = (frames * 0.5 + 0.5).clamp(0, 1).mean(1)
    d = ((d - d.min()) / (d.max() - d.min())).cpu().numpy().astype(np.float32)
    if a.out:
        np.savez(a.out, depth=d, latents=stitched.float().cpu().numpy())
    stages = ("imageEncoder", "vaeEncoder", "unet", "vaeDecoder")
    res = {"frames": n, "height": H, "width": W, "window": a.window, "overlap": a.overlap, "steps": a.steps,
           "device": dev, "dtype": str(dt).replace("torch.", ""), "seconds": {k: round(timer.seconds.get(k, 0.0), 3) for k in (*stages, "load")},
           "peakRssBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    res["seconds"]["total"] = round(sum(timer.seconds.get(k, 0.0) for k in stages), 3)
    res["msPerFrame"] = {k: round(1000 * v / n, 2) for k, v in res["seconds"].items() if k != "load"}
    if dev.startswith("cuda"):
        res["peakGpuAllocatedBytes"] = torch.cuda.max_memory_allocated()
    print(json.dumps(res) if a.json else json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
