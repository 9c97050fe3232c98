#!/usr/bin/env python3
"""Weights and activation memory of the real DepthCrafter networks at a given resolution and window, from the
graphs' shapes: the networks are built with the real configurations on PyTorch's `meta` device (no weights are
allocated, nothing is computed, nothing is downloaded) and one forward pass records every tensor's shape.

For each network it reports: parameters and weight bytes; the bytes of the largest single activation; the
UNet's skip connections (alive through the whole call); and the largest attention score matrix
(batch x heads x queries x keys), which is what an unfused attention materialises (fused/flash attention does not).

    python tools/estimate_depthcrafter_memory.py --size 576x1024 --window 110
    python tools/estimate_depthcrafter_memory.py --size 256x512 --window 110 --json

These are estimates. Measured counterparts: tools/measure_unet_memory.py (one UNet call with ONNX Runtime on the CPU,
fused vs unfused attention; docs/depthcrafter-export.md) and bench/gpu-check.sh (peak GPU memory, on a GPU).

The configurations are those of tencent/DepthCrafter (the class defaults of UNetSpatioTemporalConditionModel)
and of stable-video-diffusion-img2vid-xt (VAE: 128/256/512/512 channels, 2 layers per block; image encoder:
ViT-H/14, 32 layers, width 1280, projection 1024). Pass --unet-config/--vae-config to use a download's config.json.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

GiB = 1024 ** 3


def build(unet_config: str | None, vae_config: str | None):
    from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
    from diffusers.models.attention_processor import Attention
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    with torch.device("meta"):
        unet = (UNetSpatioTemporalConditionModel.from_config(json.load(open(unet_config))) if unet_config
                else UNetSpatioTemporalConditionModel(in_channels=8))
        vae = (AutoencoderKLTemporalDecoder.from_config(json.load(open(vae_config))) if vae_config
               else AutoencoderKLTemporalDecoder(down_block_types=("DownEncoderBlock2D",) * 4,
                                                 block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4))
        clip = CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                                                              num_attention_heads=16, image_size=224, patch_size=14,
                                                              projection_dim=1024, hidden_act="gelu"))
    # a few parameters are made with the legacy torch.Tensor([...]) constructor, which ignores the device context
    return unet.to("meta"), vae.to("meta"), clip.to("meta"), Attention


class Recorder:
    def __init__(self, model, attention_cls, bytes_per: int) -> None:
        self.max_act = 0
        self.max_scores = 0
        self.b = bytes_per
        self.handles = []
        for mod in model.modules():
            if isinstance(mod, attention_cls):
                self.handles.append(mod.register_forward_pre_hook(self.on_attention, with_kwargs=True))
            if not list(mod.children()):
                self.handles.append(mod.register_forward_hook(self.on_output))

    def on_output(self, mod, inp, out) -> None:
        if isinstance(out, torch.Tensor):
            self.max_act = max(self.max_act, out.numel() * self.b)

    def on_attention(self, mod, args, kwargs) -> None:
        hs = kwargs.get("hidden_states", args[0] if args else None)
        ctx = kwargs.get("encoder_hidden_states")
        if hs is None:
            return
        if hs.dim() == 4:  # [B,C,H,W] (VAE mid-block attention)
            batch, q = hs.shape[0], hs.shape[2] * hs.shape[3]
        else:
            batch, q = hs.shape[0], hs.shape[1]
        k = ctx.shape[1] if ctx is not None else q
        self.max_scores = max(self.max_scores, batch * mod.heads * q * k * self.b)

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def estimate(size: str, window: int, decode_chunk: int, dtype_bytes: int, unet_config=None, vae_config=None) -> dict:
    H, W = (int(v) for v in size.lower().split("x"))
    h, w = H // 8, W // 8
    unet, vae, clip, attention_cls = build(unet_config, vae_config)
    out = {"size": f"{H}x{W}", "window": window, "decodeChunk": decode_chunk, "bytesPerElement": dtype_bytes}
    meta = {"device": "meta", "dtype": torch.float32}

    # UNet, one call over the whole window
    rec = Recorder(unet, attention_cls, dtype_bytes)
    skips = []
    hooks = [blk.register_forward_hook(lambda m, i, o: skips.append(sum(t.numel() for t in o[1]) * dtype_bytes)) for blk in unet.down_blocks]
    with torch.no_grad(), torch.device("meta"):  # new tensors made inside forward land on meta too
        unet(torch.zeros(1, window, 8, h, w, **meta), torch.zeros(1, **meta), torch.zeros(1, 1, 1024, **meta),
             torch.zeros(1, 3, **meta))
    # (the stock forward with one embedding per clip has the same activation shapes as the per-frame one)
    for hk in hooks:
        hk.remove()
    rec.close()
    out["unet"] = {"params": params(unet), "weightsGiB": params(unet) * dtype_bytes / GiB, "largestActivationGiB": rec.max_act / GiB,
                   "skipConnectionsGiB": (sum(skips) + window * 320 * h * w * dtype_bytes) / GiB,
                   "largestAttentionScoresGiB": rec.max_scores / GiB}

    # VAE decoder: one chunk of frames at full resolution
    rec = Recorder(vae.decoder, attention_cls, dtype_bytes)
    with torch.no_grad(), torch.device("meta"):  # new tensors made inside forward land on meta too
        vae.decode(torch.zeros(decode_chunk, 4, h, w, **meta), num_frames=decode_chunk)
    rec.close()
    dec_params = params(vae.decoder)
    out["vaeDecoder"] = {"params": dec_params, "weightsGiB": dec_params * dtype_bytes / GiB, "largestActivationGiB": rec.max_act / GiB,
                         "largestAttentionScoresGiB": rec.max_scores / GiB}

    # VAE encoder: float32 always, per frame (the engine encodes one frame at a time)
    rec = Recorder(vae.encoder, attention_cls, 4)
    with torch.no_grad(), torch.device("meta"):  # new tensors made inside forward land on meta too
        vae.quant_conv(vae.encoder(torch.zeros(1, 3, H, W, **meta)))
    rec.close()
    enc_params = params(vae.encoder) + params(vae.quant_conv)
    out["vaeEncoder"] = {"params": enc_params, "weightsGiB": enc_params * 4 / GiB, "largestActivationGiB": rec.max_act / GiB,
                         "largestAttentionScoresGiB": rec.max_scores / GiB}
    out["imageEncoder"] = {"params": params(clip), "weightsGiB": params(clip) * dtype_bytes / GiB}
    total_w = sum(out[k]["weightsGiB"] for k in ("unet", "vaeDecoder", "vaeEncoder", "imageEncoder"))
    u = out["unet"]
    # the UNet call dominates: weights of all four (one process holds them) + skips + a few live activations
    fused = total_w + u["skipConnectionsGiB"] + 4 * u["largestActivationGiB"]
    out["estimateGiB"] = {"weightsAll": total_w, "unetCallFusedAttention": fused,
                          "unetCallUnfusedAttention": fused + u["largestAttentionScoresGiB"]}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--size", action="append", default=None, help="HxW (repeatable); default 576x1024 and 256x512")
    ap.add_argument("--window", type=int, action="append", default=None, help="frames per UNet call (repeatable); default 110")
    ap.add_argument("--decode-chunk", type=int, default=8)
    ap.add_argument("--dtype-bytes", type=int, default=2, help="2 for the fp16 export, 4 for fp32")
    ap.add_argument("--unet-config", default=None)
    ap.add_argument("--vae-config", default=None)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = [estimate(s, wnd, a.decode_chunk, a.dtype_bytes, a.unet_config, a.vae_config)
            for s in (a.size or ["576x1024", "256x512"]) for wnd in (a.window or [110])]
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    print("| size | window | UNet weights | all weights | UNet largest activation | UNet skips | largest attention scores (unfused) "
          "| VAE decoder (8 frames) largest activation / attention scores | estimate, fused attention | estimate, unfused |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        u, d, e = r["unet"], r["vaeDecoder"], r["estimateGiB"]
        print(f"| {r['size']} | {r['window']} | {u['weightsGiB']:.2f} GiB ({u['params'] / 1e9:.2f} B) | {e['weightsAll']:.2f} GiB "
              f"| {u['largestActivationGiB']:.2f} GiB | {u['skipConnectionsGiB']:.2f} GiB | {u['largestAttentionScoresGiB']:.1f} GiB "
              f"| {d['largestActivationGiB']:.2f} / {d['largestAttentionScoresGiB']:.2f} GiB | {e['unetCallFusedAttention']:.1f} GiB "
              f"| {e['unetCallUnfusedAttention']:.1f} GiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
