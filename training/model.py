"""A small latent video diffusion depth model with exactly the DepthCrafter pack contract.

Our own small architecture (not the SVD/DepthCrafter networks), shaped like them:

* ``ImageEncoder``: a small CNN on the 224x224 CLIP-normalised frame -> one D-dim embedding per
  frame (the stand-in for CLIP's projected pooled token).
* ``VAE``: one shared autoencoder, as in SVD: the same encoder turns RGB frames into the
  condition latents and depth maps (disparity replicated to 3 channels in [-1, 1]) into the
  diffusion targets. Encoder: 3 x (stride-2 conv) to 4 channels at 1/8 resolution, returns the
  latent *mean* (a log-variance head exists for the KL term only). Decoder: a "temporal decoder":
  frames of one call are mixed by Conv3d layers with kernel (3, 1, 1).
* ``UNet``: spatial conv ResBlocks (FiLM from a per-frame embedding = timestep embedding of
  c_noise + added_time_ids embedding + projected image embedding), spatial self-attention at
  1/2 and 1/4 of the latent size, and temporal layers (a (3,1,1) temporal conv and temporal
  self-attention across frames at each spatial location; both residual and zero-initialised, so
  a spatial-only model is the starting point of the temporal stage, like SVD's inflated layers).

The ``Export*`` wrappers at the end give the four ONNX contracts of docs/model-pack.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from sampler import (blend, blend_weights, c_in, c_noise, c_out, c_skip, decode_chunks, effective_window,  # noqa: F401
                     euler_step, guidance, init_noise_sigma, karras_sigmas, noise_frame_index, overlap_init,
                     segment_layout)

SCALING_FACTOR = 0.18215
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_SIZE = 224
LATENT_CH = 4
DOWN = 8


@dataclass
class ModelConfig:
    embed_dim: int = 64  # D, the per-frame image embedding
    img_ch: tuple[int, ...] = (16, 32, 64)
    vae_ch: tuple[int, ...] = (24, 32, 64, 96)
    unet_ch: tuple[int, ...] = (64, 96, 128)
    emb_dim: int = 128  # the UNet's conditioning vector
    heads: int = 4

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "ModelConfig":
        return ModelConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def groups(ch: int) -> int:
    for g in (8, 4, 2, 1):
        if ch % g == 0:
            return g
    return 1


def zero_(m: nn.Module) -> nn.Module:
    for p in m.parameters():
        nn.init.zeros_(p)
    return m


# ---------------------------------------------------------------------------------------------
# image encoder


class ImageEncoder(nn.Module):
    """pixel_values [N,3,224,224] (CLIP-normalised) -> image_embeds [N,D]."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c1, c2, c3 = cfg.img_ch
        self.net = nn.Sequential(
            nn.Conv2d(3, c1, 4, stride=4), nn.SiLU(),  # 56
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.GroupNorm(groups(c2), c2), nn.SiLU(),  # 28
            nn.Conv2d(c2, c3, 3, stride=2, padding=1), nn.GroupNorm(groups(c3), c3), nn.SiLU(),  # 14
            nn.Conv2d(c3, c3, 3, stride=2, padding=1), nn.SiLU(),  # 7
        )
        # global average + a coarse 2x2 layout (which part of the frame is what)
        self.proj = nn.Linear(c3 * 5, cfg.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.net(x)  # [N,c3,7,7]
        g = h.mean(dim=(2, 3))
        top, bottom = h[:, :, :4], h[:, :, 3:]
        quads = torch.cat([top[..., :4].mean((2, 3)), top[..., 3:].mean((2, 3)),
                           bottom[..., :4].mean((2, 3)), bottom[..., 3:].mean((2, 3))], dim=1)
        return self.proj(torch.cat([g, quads], dim=1))


def clip_preprocess(frames: torch.Tensor) -> torch.Tensor:
    """[N,3,H,W] in [-1,1] -> [N,3,224,224] CLIP-normalised, as the engine does it.

    The engine (src/inference/image/clip-preprocess.ts) blurs with sigma = max((in/224-1)/2, 1e-3)
    and then resizes bicubically (align_corners=True). For frames smaller than 224 the blur is
    the identity, so only the bicubic resize is needed here; larger frames get a plain
    antialiased resize (close enough for training)."""
    h, w = frames.shape[-2:]
    if h <= CLIP_SIZE and w <= CLIP_SIZE:
        x = F.interpolate(frames, size=(CLIP_SIZE, CLIP_SIZE), mode="bicubic", align_corners=True)
    else:
        x = F.interpolate(frames, size=(CLIP_SIZE, CLIP_SIZE), mode="bicubic", align_corners=True, antialias=True)
    x = (x + 1) / 2
    mean = torch.tensor(CLIP_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


# ---------------------------------------------------------------------------------------------
# VAE


class ResBlock2d(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.n1 = nn.GroupNorm(groups(cin), cin)
        self.c1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.n2 = nn.GroupNorm(groups(cout), cout)
        self.c2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c1(F.silu(self.n1(x)))
        h = self.c2(F.silu(self.n2(h)))
        return self.skip(x) + h


class TemporalConv(nn.Module):
    """Residual Conv3d with kernel (3,1,1) across the frames of one call; input [T,C,h,w] or [B,T,C,h,w]."""

    def __init__(self, ch: int, zero_init: bool = True) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(groups(ch), ch)
        self.conv = nn.Conv3d(ch, ch, (3, 1, 1), padding=(1, 0, 0))
        if zero_init:
            zero_(self.conv)

    def forward(self, x: torch.Tensor, batch: int = 1) -> torch.Tensor:
        # x: [B*T,C,h,w] with frames of each batch item contiguous
        bt, c, h, w = x.shape
        y = F.silu(self.norm(x))
        y = y.reshape(batch, -1, c, h, w).permute(0, 2, 1, 3, 4)  # [B,C,T,h,w]
        y = self.conv(y).permute(0, 2, 1, 3, 4).reshape(-1, c, h, w)
        return x + y


class VAEEncoder(nn.Module):
    """sample [N,3,H,W] in [-1,1] -> (mean, logvar) [N,4,H/8,W/8] each."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c0, c1, c2, c3 = cfg.vae_ch
        self.inp = nn.Conv2d(3, c0, 3, padding=1)
        self.down = nn.Sequential(
            nn.Conv2d(c0, c1, 3, stride=2, padding=1), nn.SiLU(),  # /2
            nn.Conv2d(c1, c2, 3, stride=2, padding=1),  # /4
            ResBlock2d(c2, c2),
            nn.Conv2d(c2, c3, 3, stride=2, padding=1),  # /8
            ResBlock2d(c3, c3),
            nn.GroupNorm(groups(c3), c3), nn.SiLU(),
        )
        self.out = nn.Conv2d(c3, 2 * LATENT_CH, 3, padding=1)
        # Fixed output gain, set after autoencoder training so that mean * 0.18215 has unit
        # std on the data (the SVD convention: the scaled latent is what the UNet sees).
        self.register_buffer("latent_gain", torch.ones(()))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.out(self.down(F.silu(self.inp(x))))
        mean, logvar = m[:, :LATENT_CH], m[:, LATENT_CH:]
        return mean * self.latent_gain, logvar


class VAEDecoder(nn.Module):
    """Temporal decoder: latent [T,4,h,w] (unscaled) -> sample [T,3,8h,8w]; frames of one call are mixed."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c0, c1, c2, c3 = cfg.vae_ch
        self.register_buffer("latent_gain", torch.ones(()))
        self.inp = nn.Conv2d(LATENT_CH, c3, 3, padding=1)
        self.r0 = ResBlock2d(c3, c3)
        self.t0 = TemporalConv(c3, zero_init=False)
        self.up1 = nn.Conv2d(c3, c2, 3, padding=1)  # /4
        self.r1 = ResBlock2d(c2, c2)
        self.up2 = nn.Conv2d(c2, c1, 3, padding=1)  # /2
        self.r2 = ResBlock2d(c1, c1)
        self.up3 = nn.Conv2d(c1, c0, 3, padding=1)  # /1
        self.norm = nn.GroupNorm(groups(c0), c0)
        self.out = nn.Conv2d(c0, 3, 3, padding=1)
        # the final (3,1,1) Conv3d, like SVD's temporal decoder (time_conv_out)
        self.time_out = nn.Conv3d(3, 3, (3, 1, 1), padding=(1, 0, 0))
        with torch.no_grad():
            self.time_out.weight.zero_()
            self.time_out.weight[:, :, 1] = torch.eye(3).view(3, 3, 1, 1)
            self.time_out.bias.zero_()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.inp(z / self.latent_gain)
        h = self.t0(self.r0(h))
        h = self.r1(self.up1(F.interpolate(h, scale_factor=2.0, mode="nearest")))
        h = self.r2(self.up2(F.interpolate(h, scale_factor=2.0, mode="nearest")))
        h = self.up3(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        x = self.out(F.silu(self.norm(h)))  # [T,3,H,W]
        y = self.time_out(x.permute(1, 0, 2, 3).unsqueeze(0))  # [1,3,T,H,W]
        return y.squeeze(0).permute(1, 0, 2, 3)


class VAE(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.encoder = VAEEncoder(cfg)
        self.decoder = VAEDecoder(cfg)

    def set_latent_gain(self, gain: float) -> None:
        self.encoder.latent_gain.fill_(gain)
        self.decoder.latent_gain.fill_(gain)


# ---------------------------------------------------------------------------------------------
# UNet


def sinusoid(x: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """x [...] -> [..., dim] (cos, sin), like diffusers' flip_sin_to_cos=True."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=x.device) / half)
    a = x.unsqueeze(-1).float() * freqs
    return torch.cat([torch.cos(a), torch.sin(a)], dim=-1)


class FiLMResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb: int) -> None:
        super().__init__()
        self.n1 = nn.GroupNorm(groups(cin), cin)
        self.c1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb, 2 * cout)
        self.n2 = nn.GroupNorm(groups(cout), cout)
        self.c2 = zero_(nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.c1(F.silu(self.n1(x)))
        scale, shift = self.emb(F.silu(e)).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        h = self.n2(h) * (1 + scale) + shift
        return self.skip(x) + self.c2(F.silu(h))


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """q,k,v [B,L,C] -> [B,L,C]; plain matmul/softmax (exports to any opset)."""
    b, n, c = q.shape
    d = c // heads
    q = q.reshape(b, -1, heads, d).transpose(1, 2)
    k = k.reshape(b, -1, heads, d).transpose(1, 2)
    v = v.reshape(b, -1, heads, d).transpose(1, 2)
    w = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(d)), dim=-1)
    return torch.matmul(w, v).transpose(1, 2).reshape(b, -1, c)


class SpatialAttention(nn.Module):
    def __init__(self, ch: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups(ch), ch)
        self.qkv = nn.Linear(ch, 3 * ch)
        self.out = zero_(nn.Linear(ch, ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        t = self.norm(x).flatten(2).transpose(1, 2)  # [N,hw,C]
        q, k, v = self.qkv(t).chunk(3, dim=-1)
        y = self.out(attention(q, k, v, self.heads))
        return x + y.transpose(1, 2).reshape(n, c, h, w)


class TemporalAttention(nn.Module):
    """Self-attention across the frames of each batch item at every spatial location (residual, zero-init)."""

    def __init__(self, ch: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(ch)
        self.qkv = nn.Linear(ch, 3 * ch)
        self.out = zero_(nn.Linear(ch, ch))

    def forward(self, x: torch.Tensor, batch: int = 1) -> torch.Tensor:
        bt, c, h, w = x.shape
        t = x.reshape(batch, -1, c, h * w).permute(0, 3, 1, 2).flatten(0, 1)  # [B*hw,T,C]
        q, k, v = self.qkv(self.norm(t)).chunk(3, dim=-1)
        y = self.out(attention(q, k, v, self.heads))  # [B*hw,T,C]
        y = y.reshape(batch, h * w, -1, c).permute(0, 2, 3, 1).reshape(-1, c, h, w)
        return x + y


class Level(nn.Module):
    def __init__(self, cin: int, cout: int, emb: int, heads: int, spatial_attn: bool) -> None:
        super().__init__()
        self.res = FiLMResBlock(cin, cout, emb)
        self.sattn = SpatialAttention(cout, heads) if spatial_attn else None
        self.tconv = TemporalConv(cout)
        self.tattn = TemporalAttention(cout, heads)

    def forward(self, x: torch.Tensor, e: torch.Tensor, batch: int) -> torch.Tensor:
        x = self.res(x, e)
        if self.sattn is not None:
            x = self.sattn(x)
        x = self.tconv(x, batch)
        return self.tattn(x, batch)


TEMPORAL_KEYS = ("tconv", "tattn")


class UNet(nn.Module):
    """sample [B,T,8,h,w] (ch 0-3: noisy latent * c_in, ch 4-7: unscaled condition latent),
    c_noise [B], image embeds [B,T,D], added_time_ids [B,3] -> v-prediction F [B,T,4,h,w]."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c0, c1, c2 = cfg.unet_ch
        e = cfg.emb_dim
        self.t_mlp = nn.Sequential(nn.Linear(64, e), nn.SiLU(), nn.Linear(e, e))
        self.add_mlp = nn.Sequential(nn.Linear(3 * 32, e), nn.SiLU(), nn.Linear(e, e))
        self.img_mlp = nn.Sequential(nn.Linear(cfg.embed_dim, e), nn.SiLU(), nn.Linear(e, e))
        self.inp = nn.Conv2d(2 * LATENT_CH, c0, 3, padding=1)
        self.d0 = Level(c0, c0, e, cfg.heads, False)  # h
        self.down0 = nn.Conv2d(c0, c1, 3, stride=2, padding=1)
        self.d1 = Level(c1, c1, e, cfg.heads, True)  # h/2
        self.down1 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.mid = Level(c2, c2, e, cfg.heads, True)  # h/4
        self.mid2 = Level(c2, c2, e, cfg.heads, True)
        self.u1 = Level(c2 + c1, c1, e, cfg.heads, True)  # h/2
        self.u0 = Level(c1 + c0, c0, e, cfg.heads, False)  # h
        self.norm = nn.GroupNorm(groups(c0), c0)
        self.out = zero_(nn.Conv2d(c0, LATENT_CH, 3, padding=1))

    def forward(self, sample: torch.Tensor, c_noise: torch.Tensor, img: torch.Tensor, added: torch.Tensor) -> torch.Tensor:
        b, t, _, h, w = sample.shape
        x = sample.reshape(-1, 2 * LATENT_CH, h, w)
        # condition latents arrive unscaled (std ~ 1/0.18215): bring them to unit scale
        x = torch.cat([x[:, :LATENT_CH], x[:, LATENT_CH:] * SCALING_FACTOR], dim=1)
        te = self.t_mlp(sinusoid(c_noise.reshape(-1), 64, max_period=100.0))  # [B,e]
        ae = self.add_mlp(sinusoid(added, 32, max_period=1000.0).reshape(added.shape[0], -1))  # [B,e]
        ie = self.img_mlp(img.reshape(-1, img.shape[-1]))  # [B*T,e]
        e = ie.reshape(b, -1, ie.shape[-1]) + (te + ae).unsqueeze(1)
        e = e.reshape(-1, e.shape[-1])  # [B*T,e]

        h0 = self.d0(self.inp(x), e, b)
        h1 = self.d1(self.down0(h0), e, b)
        m = self.mid2(self.mid(self.down1(h1), e, b), e, b)
        u = F.interpolate(m, scale_factor=2.0, mode="nearest")
        u = self.u1(torch.cat([u, h1], dim=1), e, b)
        u = F.interpolate(u, scale_factor=2.0, mode="nearest")
        u = self.u0(torch.cat([u, h0], dim=1), e, b)
        out = self.out(F.silu(self.norm(u)))
        return out.reshape(b, -1, LATENT_CH, h, w)

    def temporal_parameters(self):
        for n, p in self.named_parameters():
            if any(f".{k}." in n for k in TEMPORAL_KEYS):
                yield p

    def spatial_parameters(self):
        for n, p in self.named_parameters():
            if not any(f".{k}." in n for k in TEMPORAL_KEYS):
                yield p


# ---------------------------------------------------------------------------------------------
# EDM (sigma_data = 1) and the schedule: in sampler.py (torch-free, checked against the engine by
# test/training-sampler.test.ts); re-exported here for train.py and evaluate.py.


@dataclass
class Models:
    cfg: ModelConfig
    image: ImageEncoder
    vae: VAE
    unet: UNet
    added_time_ids: list[float] = field(default_factory=lambda: [7.0, 127.0, 0.02])

    @staticmethod
    def create(cfg: ModelConfig) -> "Models":
        return Models(cfg, ImageEncoder(cfg), VAE(cfg), UNet(cfg))

    def state(self) -> dict:
        return {"cfg": self.cfg.to_dict(), "image": self.image.state_dict(), "vae": self.vae.state_dict(),
                "unet": self.unet.state_dict()}

    @staticmethod
    def from_state(st: dict) -> "Models":
        m = Models.create(ModelConfig.from_dict(st["cfg"]))
        m.image.load_state_dict(st["image"])
        m.vae.load_state_dict(st["vae"])
        m.unet.load_state_dict(st["unet"])
        return m


@torch.no_grad()
def sample_video(m: Models, frames: torch.Tensor, steps: int = 5, window: int = 16, overlap: int = 4,
                 decode_chunk: int = 8, noise_aug: float = 0.02, generator: torch.Generator | None = None,
                 guidance_scale: float = 1.0) -> torch.Tensor:
    """The engine's algorithm in PyTorch (src/inference/engine/depth-session.ts, spec sections 2-5):
    frames [N,3,H,W] in [-1,1] -> raw disparity [N,H,W] (mean over RGB of clamp((x+1)/2)), not
    min-max normalised. Segments of `window` frames with `overlap`, shared rolled noise, overlap
    initialised from the previous result + sigma_max noise, linspace blending, chunked decode.
    All the arithmetic between model calls is sampler.py's."""
    n = frames.shape[0]
    emb = m.image(clip_preprocess(frames))  # clean frames
    aug = frames + noise_aug * torch.randn(frames.shape, generator=generator)
    cond = m.vae.encoder(aug)[0]  # unscaled mean
    sig = karras_sigmas(steps)
    init_sigma = init_noise_sigma(sig[0])
    segments = segment_layout(n, window, overlap)
    window, overlap = effective_window(n, window, overlap)
    _, _, hh, ww = cond.shape
    block = torch.randn((window, LATENT_CH, hh, ww), generator=generator) * init_sigma
    out: list[torch.Tensor] = []
    added = torch.tensor([m.added_time_ids])
    for k, (start, end) in enumerate(segments):
        length = end - start
        ov = 0 if k == 0 else overlap
        x = block[[noise_frame_index(k, i, window, overlap) for i in range(length)]].clone()
        if ov:
            x[:ov] = overlap_init(torch.stack(out[start:start + ov]), x[:ov], init_sigma, sig[0])
        c = cond[start:end]
        e = emb[start:end].unsqueeze(0)
        for i in range(steps):
            s = sig[i]
            inp = torch.cat([x * c_in(s), c], dim=1).unsqueeze(0)
            t = torch.tensor([c_noise(s)])
            f = m.unet(inp, t, e, added)[0]
            if guidance_scale > 1:  # the second, unconditioned call: zero condition latents and embeddings
                uncond = m.unet(torch.cat([x * c_in(s), torch.zeros_like(c)], dim=1).unsqueeze(0), t,
                                torch.zeros_like(e), added)[0]
                f = guidance(f, uncond, guidance_scale)
            x = euler_step(x, f, s, sig[i + 1])
        weights = blend_weights(ov)
        for i in range(length):
            if i < ov:
                out[start + i] = blend(out[start + i], x[i], weights[i])
            else:
                out.append(x[i])
    lat = torch.stack(out) / SCALING_FACTOR
    depth = []
    for s0, s1 in decode_chunks(n, decode_chunk):
        y = m.vae.decoder(lat[s0:s1])
        depth.append(((y + 1) / 2).clamp(0, 1).mean(dim=1))
    return torch.cat(depth)


# ---------------------------------------------------------------------------------------------
# ONNX export wrappers (the four contracts of docs/model-pack.md)


class ExportImageEncoder(nn.Module):
    def __init__(self, m: Models) -> None:
        super().__init__()
        self.enc = m.image

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.enc(pixel_values)


class ExportVAEEncoder(nn.Module):
    def __init__(self, m: Models) -> None:
        super().__init__()
        self.enc = m.vae.encoder

    def forward(self, sample: torch.Tensor) -> torch.Tensor:
        return self.enc(sample)[0]


class ExportUNet(nn.Module):
    def __init__(self, m: Models) -> None:
        super().__init__()
        self.unet = m.unet

    def forward(self, sample, timestep, encoder_hidden_states, added_time_ids):
        return self.unet(sample, timestep, encoder_hidden_states, added_time_ids)


class ExportVAEDecoder(nn.Module):
    def __init__(self, m: Models) -> None:
        super().__init__()
        self.dec = m.vae.decoder

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.dec(latent)
