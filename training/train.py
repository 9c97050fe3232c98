#!/usr/bin/env python3
"""Train the small synthetic-scene depth model in stages (see docs/training.md).

Stages, in the spirit of DepthCrafter (SVD-style latent video diffusion, EDM v-prediction):

  ae        one shared autoencoder (VAE): RGB frames (the condition) and disparity maps
            replicated to 3 channels in [-1, 1] (the target; the decoder output's channel mean
            is the depth) are both reconstructed; the decoder is temporal (frames of a chunk of
            1-8 consecutive frames mixed by (3,1,1) convs). Afterwards the latent gain is fixed so
            that depth latents * 0.18215 have unit RMS (EDM sigma_data = 1).
  latents   caches, for every training frame, the VAE mean of the RGB frame + 0.02 pixel noise
            (unscaled condition latent) and 0.18215 * VAE mean of the depth map (the target).
  spatial   denoiser at T = 1 (temporal layers frozen at their zero init) + image encoder.
  temporal  all of the denoiser (+ image encoder) on clips of T = 2..16 consecutive frames.

Denoiser objective: x = x0 + sigma * n, F = UNet([x * c_in, cond], c_noise, E, added_time_ids),
D = c_skip x + c_out F; loss = lambda(sigma) |D - x0|^2 with lambda = 1/c_out^2, i.e.
|F - (x0 - c_skip x)/c_out|^2. Sigma mixes a log-normal, the exact Karras grids the engine
samples (1-5 steps, always including sigma_max = 700) and log-uniform high noise, so that
few-step sampling from sigma_max works.

Every stage has a wall-clock budget (--ae-minutes, ...), writes a checkpoint every
--ckpt-minutes, and logs the loss (runs/<name>/log.jsonl). With --resume a run continues from
its last checkpoint (completed stages are skipped). The held-out quick metric runs the engine's
sampler (model.sample_video: 5 steps, window 16, overlap 4) on the val clips and scores
AbsRel/delta1 after one scale+shift per sequence in disparity (docs/evaluation.md protocol).

Usage (from training/):
    ../.venv-train/bin/python train.py --name short --ae-minutes 5 --spatial-minutes 7 --temporal-minutes 8
    # continue one stage of a finished run in a new run folder (same cached latents):
    ../.venv-train/bin/python train.py --name short-t2 --init runs/short/final.pt --stages temporal \
        --latents runs/short --temporal-minutes 9
    # phase 3 (pack 0.2.0): longer windows, low-sigma share, frame-difference loss, EMA of the weights
    ../.venv-train/bin/python train.py --name short-t3 --init runs/short-t2/final.pt --stages temporal \
        --latents runs/short --temporal-minutes 22 --lr-temporal 1.5e-4 --min-t 8 --max-t 24 \
        --low-sigma-frac 0.4 --diff-weight 1.0 --ema 0.998 --eval-minutes 100
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from model import (SCALING_FACTOR, Models, ModelConfig, c_in, c_noise, c_out, c_skip, clip_preprocess,
                   karras_sigmas, sample_video)

HERE = os.path.dirname(os.path.abspath(__file__))
STAGES = ["ae", "latents", "spatial", "temporal"]
GRIDS = sorted({s for n in range(1, 6) for s in karras_sigmas(n)[:-1]})  # every sigma the engine uses at 1-5 steps
SIGMA_MIN, SIGMA_MAX = 0.002, 700.0


# ---------------------------------------------------------------------------------------------
# data


class Data:
    def __init__(self, folder: str) -> None:
        self.rgb = np.load(os.path.join(folder, "rgb.npy"), mmap_mode="r")  # [C,F,H,W,3] uint8
        self.disp = np.load(os.path.join(folder, "disp.npy"), mmap_mode="r")  # [C,F,H,W] f16
        self.depth = np.load(os.path.join(folder, "depth.npy"), mmap_mode="r")  # [C,F,H,W] f16 metres
        self.clips, self.frames, self.h, self.w = self.disp.shape

    def rgb_t(self, c: int, f0: int, n: int) -> torch.Tensor:
        """[n,3,H,W] in [-1,1]."""
        a = np.asarray(self.rgb[c, f0:f0 + n], dtype=np.float32)
        return torch.from_numpy(a).permute(0, 3, 1, 2) / 127.5 - 1.0

    def disp_t(self, c: int, f0: int, n: int) -> torch.Tensor:
        """[n,3,H,W] in [-1,1] (disparity replicated to 3 channels)."""
        a = torch.from_numpy(np.asarray(self.disp[c, f0:f0 + n], dtype=np.float32))
        return (a * 2 - 1).unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


# ---------------------------------------------------------------------------------------------
# metrics (docs/evaluation.md protocol, one sequence)


def seq_metrics(pred: np.ndarray, gt: np.ndarray, max_depth: float = 80.0, eps: float = 1e-3) -> dict:
    """pred: raw disparity [N,H,W] (any affine scale); gt: metric depth [N,H,W], 0 = invalid."""
    p = pred.astype(np.float64)
    p = (p - p.min()) / max(p.max() - p.min(), 1e-12)  # the engine's min-max (affine, no effect on the fit)
    p = np.maximum(p, eps)
    g = gt.astype(np.float64)
    valid = (g > eps) & (g < max_depth)
    x, y = p[valid], 1.0 / g[valid]
    xm, ym = x.mean(), y.mean()
    vx = ((x - xm) ** 2).sum()
    s = ((x - xm) * (y - ym)).sum() / vx if vx > 0 else 0.0
    b = ym - s * xm
    a = np.maximum(s * p + b, eps)
    d = np.clip(1.0 / a, eps, max_depth)
    absrel, delta1 = [], []
    for t in range(p.shape[0]):
        v = valid[t]
        if not v.any():
            continue
        dt, gt_ = d[t][v], g[t][v]
        absrel.append(np.mean(np.abs(dt - gt_) / gt_))
        delta1.append(np.mean(np.maximum(dt / gt_, gt_ / dt) < 1.25))
    # temporal: mean |(A_t - A_{t-1}) - (1/G_t - 1/G_{t-1})| over pixels valid in both frames
    temporal = []
    for t in range(1, p.shape[0]):
        v = valid[t] & valid[t - 1]
        if v.any():
            temporal.append(np.mean(np.abs((a[t][v] - a[t - 1][v]) - (1 / g[t][v] - 1 / g[t - 1][v]))))
    return {"absrel": float(np.mean(absrel)), "delta1": float(np.mean(delta1)),
            "temporal": float(np.mean(temporal)) if temporal else float("nan")}


def mean_metrics(rows: list[dict]) -> dict:
    return {k: round(float(np.mean([r[k] for r in rows])), 5) for k in rows[0]}


@torch.no_grad()
def quick_eval(m: Models, val: Data, mode: str, steps: int = 5, window: int = 16, overlap: int = 4) -> dict:
    """mode 'sample': the full sampler; 'ceiling': depth -> VAE -> decode (chunks of 8)."""
    for mod in (m.image, m.vae, m.unet):
        mod.eval()
    rows = []
    g = torch.Generator().manual_seed(42)
    for c in range(val.clips):
        gt = np.asarray(val.depth[c], dtype=np.float32)
        if mode == "sample":
            pred = sample_video(m, val.rgb_t(c, 0, val.frames), steps=steps, window=window, overlap=overlap, generator=g)
        else:
            z = m.vae.encoder(val.disp_t(c, 0, val.frames))[0]
            pred = torch.cat([((m.vae.decoder(z[i:i + 8]) + 1) / 2).clamp(0, 1).mean(1) for i in range(0, z.shape[0], 8)])
        rows.append(seq_metrics(pred.numpy(), gt))
    for mod in (m.image, m.vae, m.unet):
        mod.train()
    return mean_metrics(rows)


# ---------------------------------------------------------------------------------------------
# run state


class Run:
    def __init__(self, args) -> None:
        self.args = args
        self.dir = os.path.join(HERE, "runs", args.name)
        os.makedirs(self.dir, exist_ok=True)
        self.ckpt_path = os.path.join(self.dir, "ckpt.pt")
        self.log_path = os.path.join(self.dir, "log.jsonl")
        self.state: dict = {"stage": STAGES[0], "step": 0, "elapsed": 0.0, "done": [], "gain": 1.0}
        self.models: Models | None = None
        self.opt_state = None
        self.ema_state: list[dict] | None = None  # [unet, image] EMA state dicts of the temporal stage

    def log(self, **row) -> None:
        row = {"t": round(time.time(), 1), **row}
        with open(self.log_path, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)

    def save(self, opt: torch.optim.Optimizer | None) -> None:
        tmp = self.ckpt_path + ".tmp"
        torch.save({"models": self.models.state(), "state": self.state,
                    "opt": opt.state_dict() if opt is not None else None, "ema": self.ema_state,
                    "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "py": random.getstate()}}, tmp)
        os.replace(tmp, self.ckpt_path)

    def load(self) -> bool:
        if not os.path.exists(self.ckpt_path):
            return False
        ck = torch.load(self.ckpt_path, weights_only=False)
        self.models = Models.from_state(ck["models"])
        self.state = ck["state"]
        self.opt_state = ck["opt"]
        self.ema_state = ck.get("ema")
        torch.set_rng_state(ck["rng"]["torch"])
        np.random.set_state(ck["rng"]["numpy"])
        random.setstate(ck["rng"]["py"])
        return True


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# stage loops


def timed_loop(run: Run, stage: str, minutes: float, opt, step_fn, eval_fn=None) -> None:
    """Runs step_fn until the stage's budget is spent (wall-clock minutes, or a fixed step count when
    --<stage>-steps is given, which makes a run repeatable step for step), with checkpoints and logs."""
    st = run.state
    max_steps = getattr(run.args, f"{stage}_steps", 0) or 0
    budget = float("inf") if max_steps > 0 else minutes * 60.0
    t_last_ckpt = t_last_eval = time.time()
    t_start = time.time() - st["elapsed"]
    losses: list[float] = []
    while st["elapsed"] < budget and (max_steps <= 0 or st["step"] < max_steps):
        loss = step_fn(st["step"])
        losses.append(loss)
        st["step"] += 1
        st["elapsed"] = time.time() - t_start
        if st["step"] % run.args.log_every == 0:
            run.log(stage=stage, step=st["step"], elapsed=round(st["elapsed"], 1), loss=round(float(np.mean(losses)), 5))
            losses = []
        if time.time() - t_last_ckpt > run.args.ckpt_minutes * 60:
            run.save(opt)
            t_last_ckpt = time.time()
        if eval_fn and time.time() - t_last_eval > run.args.eval_minutes * 60:
            t0 = time.time()
            run.log(stage=stage, step=st["step"], eval=eval_fn())
            t_start += time.time() - t0  # evaluation time does not count against the budget
            t_last_eval = time.time()
    if losses:
        run.log(stage=stage, step=st["step"], elapsed=round(st["elapsed"], 1), loss=round(float(np.mean(losses)), 5))


def stage_ae(run: Run, data: Data, val: Data) -> None:
    m = run.models
    params = list(m.vae.parameters())
    opt = torch.optim.AdamW(params, lr=run.args.lr_ae, weight_decay=0.0)
    if run.opt_state:
        opt.load_state_dict(run.opt_state)
    crop = run.args.ae_crop

    def step(i: int) -> float:
        loss_total = 0.0
        opt.zero_grad(set_to_none=True)
        for _ in range(2):  # two clips, each decoded as one chunk of 1-8 consecutive frames
            n = random.randint(1, 8)
            c = random.randrange(data.clips)
            f0 = random.randrange(data.frames - n + 1)
            y0, x0 = random.randrange(data.h - crop + 1), random.randrange(data.w - crop + 1)
            rgb = data.rgb_t(c, f0, n)[..., y0:y0 + crop, x0:x0 + crop]
            dep = data.disp_t(c, f0, n)[..., y0:y0 + crop, x0:x0 + crop]
            if random.random() < 0.5:
                rgb, dep = rgb.flip(-1), dep.flip(-1)
            loss = 0.0
            for x, wgt in ((rgb, 1.0), (dep, 2.0)):
                z = m.vae.encoder(x)[0]
                # decoder robustness: the diffusion model's latents are never exact
                zn = z + 0.05 * z.detach().std() * torch.randn_like(z)
                y = m.vae.decoder(zn)
                loss = loss + wgt * (F.l1_loss(y, x) + F.mse_loss(y, x)) + 1e-4 * (z * SCALING_FACTOR).pow(2).mean()
            (loss / 2).backward()
            loss_total += float(loss.detach()) / 2
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss_total

    timed_loop(run, "ae", run.args.ae_minutes, opt, step, lambda: {"ceiling": quick_eval(m, val, "ceiling")})

    # fix the latent gain: depth latents * 0.18215 get unit RMS (EDM sigma_data = 1)
    with torch.no_grad():
        m.vae.eval()
        zs = []
        for c in range(0, data.clips, max(1, data.clips // 32)):
            zs.append(m.vae.encoder(data.disp_t(c, 0, data.frames)[::4])[0])
        rms = float(torch.cat(zs).pow(2).mean().sqrt())
        gain = 1.0 / (SCALING_FACTOR * rms) * float(m.vae.encoder.latent_gain)
        m.vae.set_latent_gain(gain)
        m.vae.train()
    run.state["gain"] = gain
    run.log(stage="ae", latent_rms_before=round(rms, 4), latent_gain=round(gain, 4),
            ceiling=quick_eval(m, val, "ceiling"))


def stage_latents(run: Run, data: Data) -> None:
    m = run.models
    m.vae.eval()
    cond = np.zeros((data.clips, data.frames, 4, data.h // 8, data.w // 8), np.float16)
    target = np.zeros_like(cond)
    t0 = time.time()
    g = torch.Generator().manual_seed(run.args.seed + 1)
    with torch.no_grad():
        for c in range(data.clips):
            rgb = data.rgb_t(c, 0, data.frames)
            rgb = rgb + 0.02 * torch.randn(rgb.shape, generator=g)  # the engine's noise augmentation
            cond[c] = m.vae.encoder(rgb)[0].numpy()
            target[c] = (m.vae.encoder(data.disp_t(c, 0, data.frames))[0] * SCALING_FACTOR).numpy()
    np.save(os.path.join(run.dir, "cond.npy"), cond)
    np.save(os.path.join(run.dir, "target.npy"), target)
    m.vae.train()
    run.log(stage="latents", seconds=round(time.time() - t0, 1), cond_rms=round(float(np.sqrt((cond.astype(np.float32) ** 2).mean())), 4),
            target_rms=round(float(np.sqrt((target.astype(np.float32) ** 2).mean())), 4))


LOW_GRID = [s for s in GRIDS if s < 3.0]  # the last Euler steps of the 5-step grid, where per-frame noise enters


def sample_sigmas(n: int, low_frac: float = 0.0) -> torch.Tensor:
    """low_frac > 0 (phase 3): that share of clips gets a low sigma (half the engine's low grid
    values, half log-uniform in [0.002, 3]); the rest follows the original mix."""
    out = []
    for _ in range(n):
        if low_frac > 0 and random.random() < low_frac:
            s = random.choice(LOW_GRID) if random.random() < 0.5 else math.exp(random.uniform(math.log(SIGMA_MIN), math.log(3.0)))
            out.append(min(max(s, SIGMA_MIN), SIGMA_MAX))
            continue
        r = random.random()
        if r < 0.35:  # log-normal (EDM/SVD-like), wide
            s = math.exp(random.gauss(0.7, 1.6))
        elif r < 0.7:  # the exact sigmas the engine samples at 1-5 steps
            s = random.choice(GRIDS)
        else:  # high noise, up to sigma_max
            s = math.exp(random.uniform(math.log(20.0), math.log(SIGMA_MAX)))
        out.append(min(max(s, SIGMA_MIN), SIGMA_MAX))
    return torch.tensor(out, dtype=torch.float32)


def denoiser_loss(m: Models, data: Data, cond: np.ndarray, target: np.ndarray, batch: int, frames: int,
                  low_frac: float = 0.0, diff_weight: float = 0.0, pair_weight: float = 0.0) -> torch.Tensor:
    """One batch of `batch` clips x `frames` consecutive frames; one sigma per clip.
    diff_weight > 0 adds a temporal-consistency term: the frame-to-frame differences of F against
    those of the target F*. With one sigma per clip, c_skip/c_out are constant over a clip's frames,
    so this is lambda(sigma) |(D_t+1 - D_t) - (x0_t+1 - x0_t)|^2 on the predicted x0 D.
    pair_weight > 0 (phase 5) draws every clip twice with the same sigma and different noise and adds
    lambda(sigma) |D_a - D_b|^2 = |(F_a - F_b) - (F*_a - F*_b)|^2: twice the noise-driven variance of
    the prediction. The engine gives every frame of a window its own noise, so that variance is
    frame-to-frame flicker; where x0 is identifiable (low sigma) the term agrees with the main loss."""
    idx = []
    for _ in range(batch // 2 if pair_weight > 0 else batch):
        c = random.randrange(data.clips)
        f0 = random.randrange(data.frames - frames + 1)
        idx.append((c, f0))
    n = len(idx)  # distinct clips; with pairs, sample i + n is the pair of sample i (same frames, embeddings, sigma)
    x0 = torch.stack([torch.from_numpy(target[c, f0:f0 + frames].astype(np.float32)) for c, f0 in idx])  # [n,T,4,h,w]
    cd = torch.stack([torch.from_numpy(cond[c, f0:f0 + frames].astype(np.float32)) for c, f0 in idx])
    rgb = torch.cat([data.rgb_t(c, f0, frames) for c, f0 in idx])  # [n*T,3,H,W]
    emb = m.image(clip_preprocess(rgb)).reshape(n, frames, -1)
    sigma = sample_sigmas(batch, low_frac)[:n]  # draws `batch` sigmas either way, as the committed runs did
    if pair_weight > 0:
        x0, cd, emb, sigma = (torch.cat([t, t]) for t in (x0, cd, emb, sigma))
    sigma = sigma.view(batch, 1, 1, 1, 1)
    x = x0 + sigma * torch.randn_like(x0)
    inp = torch.cat([x * c_in(sigma), cd], dim=2)
    added = torch.tensor([m.added_time_ids] * batch)
    f = m.unet(inp, c_noise(sigma.view(batch)), emb, added)
    target_f = (x0 - c_skip(sigma) * x) / c_out(sigma)
    loss = F.mse_loss(f, target_f)
    if diff_weight > 0 and frames > 1:
        loss = loss + diff_weight * F.mse_loss(f[:, 1:] - f[:, :-1], target_f[:, 1:] - target_f[:, :-1])
    if pair_weight > 0:
        h = batch // 2
        loss = loss + pair_weight * F.mse_loss(f[:h] - f[h:], target_f[:h] - target_f[h:])
    return loss


def stage_denoiser(run: Run, data: Data, val: Data, temporal: bool) -> None:
    m = run.models
    stage = "temporal" if temporal else "spatial"
    for p in m.unet.temporal_parameters():
        p.requires_grad_(temporal)
    params = [p for p in list(m.unet.parameters()) + list(m.image.parameters()) if p.requires_grad]
    lr = run.args.lr_temporal if temporal else run.args.lr_spatial
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    if run.opt_state:
        opt.load_state_dict(run.opt_state)
    lat_dir = run.args.latents or run.dir
    cond = np.load(os.path.join(lat_dir, "cond.npy"))
    target = np.load(os.path.join(lat_dir, "target.npy"))
    frames_per_step = run.args.frames_per_step
    warmup = 50
    a = run.args
    ema = None
    if temporal and a.ema > 0:  # EMA of the denoiser + image encoder; the final weights are the EMA
        ema_mods = (m.unet, m.image)
        ema = run.ema_state or [{k: v.detach().clone() for k, v in mod.state_dict().items()} for mod in ema_mods]
        run.ema_state = ema  # saved with every checkpoint, so snapshots can be exported as the EMA

    def step(i: int) -> float:
        for gp in opt.param_groups:
            gp["lr"] = lr * min(1.0, (i + 1) / warmup)
        if temporal:
            t = random.randint(min(a.min_t, data.frames), min(a.max_t, data.frames))
            b = max(1, frames_per_step // t)
            if a.pair_weight > 0:
                b = max(2, b - b % 2)
        else:
            t, b = 1, frames_per_step
        opt.zero_grad(set_to_none=True)
        loss = denoiser_loss(m, data, cond, target, b, t, a.low_sigma_frac if temporal else 0.0,
                             a.diff_weight if temporal else 0.0, a.pair_weight if temporal else 0.0)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if ema is not None:
            with torch.no_grad():
                for mod, sd in zip(ema_mods, ema):
                    for k, v in mod.state_dict().items():
                        if v.dtype.is_floating_point:
                            sd[k].mul_(a.ema).add_(v.detach(), alpha=1 - a.ema)
                        else:
                            sd[k].copy_(v)
        return float(loss)

    timed_loop(run, stage, run.args.temporal_minutes if temporal else run.args.spatial_minutes, opt, step,
               lambda: {"sample5": quick_eval(m, val, "sample")})
    if ema is not None:
        run.log(stage=stage, step=run.state["step"], raw_final_eval={"sample5": quick_eval(m, val, "sample")})
        for mod, sd in zip(ema_mods, ema):
            mod.load_state_dict(sd)
        run.log(stage=stage, event=f"EMA weights ({a.ema}) loaded for the final weights")
    for p in m.unet.parameters():
        p.requires_grad_(True)
    run.log(stage=stage, step=run.state["step"], final_eval={"sample5": quick_eval(m, val, "sample")})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", default="short")
    ap.add_argument("--data", default=os.path.join(HERE, "data", "train"))
    ap.add_argument("--val", default=os.path.join(HERE, "data", "val"))
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--resume", action="store_true", help="continue from runs/<name>/ckpt.pt")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ae-minutes", type=float, default=4.0)
    ap.add_argument("--spatial-minutes", type=float, default=6.0)
    ap.add_argument("--temporal-minutes", type=float, default=7.0)
    ap.add_argument("--ae-steps", type=int, default=0, help="fixed step count instead of --ae-minutes")
    ap.add_argument("--spatial-steps", type=int, default=0, help="fixed step count instead of --spatial-minutes")
    ap.add_argument("--temporal-steps", type=int, default=0, help="fixed step count instead of --temporal-minutes")
    ap.add_argument("--ckpt-minutes", type=float, default=3.0)
    ap.add_argument("--eval-minutes", type=float, default=5.0)
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--lr-ae", type=float, default=1e-3)
    ap.add_argument("--lr-spatial", type=float, default=4e-4)
    ap.add_argument("--lr-temporal", type=float, default=2e-4)
    ap.add_argument("--ae-crop", type=int, default=64)
    ap.add_argument("--frames-per-step", type=int, default=16)
    ap.add_argument("--max-t", type=int, default=16)
    ap.add_argument("--min-t", type=int, default=2, help="temporal stage: shortest window")
    ap.add_argument("--low-sigma-frac", type=float, default=0.0, help="temporal stage: share of clips at low sigma (<= 3)")
    ap.add_argument("--diff-weight", type=float, default=0.0, help="temporal stage: weight of the frame-difference loss")
    ap.add_argument("--pair-weight", type=float, default=0.0, help="temporal stage: weight of the noise-pair variance term")
    ap.add_argument("--ema", type=float, default=0.0, help="temporal stage: EMA decay of the final weights (0 = off)")
    ap.add_argument("--init", default=None, help="start a new run from these weights (a final.pt or ckpt.pt)")
    ap.add_argument("--stages", default=",".join(STAGES), help="stages to run, e.g. 'temporal' to continue one")
    ap.add_argument("--latents", default=None, help="folder with cond.npy/target.npy (default: this run's folder)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    run = Run(args)
    if args.resume and run.load():
        print(f"[train] resumed {run.ckpt_path}: stage {run.state['stage']}, step {run.state['step']}, "
              f"{run.state['elapsed']:.0f}s done", flush=True)
    else:
        if os.path.exists(run.log_path):
            os.remove(run.log_path)
        seed_all(args.seed)
        run.models = Models.create(ModelConfig())
        if args.init:
            st = torch.load(args.init, weights_only=False)
            run.models = Models.from_state(st["models"] if "models" in st else st)
        run.state["done"] = [s for s in STAGES if s not in args.stages.split(",")]
        run.log(event="start", args=vars(args), params={k: sum(p.numel() for p in mod.parameters()) for k, mod in
                                                         (("image", run.models.image), ("vae", run.models.vae), ("unet", run.models.unet))})
    data, val = Data(args.data), Data(args.val)
    t_run = time.time()
    for stage in STAGES:
        if stage in run.state["done"]:
            continue
        if run.state["stage"] != stage:
            run.state.update(stage=stage, step=0, elapsed=0.0)
            run.opt_state = None
        t0 = time.time()
        if stage == "ae":
            stage_ae(run, data, val)
        elif stage == "latents":
            stage_latents(run, data)
        else:
            stage_denoiser(run, data, val, temporal=stage == "temporal")
        run.state["done"].append(stage)
        run.opt_state = None
        run.save(None)
        run.log(stage=stage, event="stage done", wall_seconds=round(time.time() - t0, 1))
    torch.save(run.models.state(), os.path.join(run.dir, "final.pt"))
    run.log(event="done", wall_seconds=round(time.time() - t_run, 1), final=os.path.join(run.dir, "final.pt"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
