#!/usr/bin/env python3
"""Export DepthCrafter weights (or tiny models of the same classes) to a DepthCrafter Live model pack.

Inputs are local folders, in the layout of the usual downloads (nothing is downloaded here):

    --unet DIR   the DepthCrafter UNet (tencent/DepthCrafter: config.json + diffusion_pytorch_model*.safetensors)
    --svd DIR    Stable Video Diffusion img2vid-xt: vae/, image_encoder/, feature_extractor/, scheduler/

Output (docs/model-pack.md): manifest.json, image_encoder.onnx, vae_encoder.onnx (always float32, the latent
mean), unet.onnx (+ unet.onnx.data, external data), vae_decoder.onnx (temporal decoder). Frame, height and width
axes are dynamic. Every file is checked with ONNX Runtime against PyTorch on random inputs, at the traced shape
and at another one (so a frozen dynamic axis is caught), before the manifest is written.
Attention is exported fused by default (--attention mha: one com.microsoft MultiHeadAttention node per attention of
the UNet, the VAE and the image encoder); --attention unfused keeps the MatMul-Softmax-MatMul form of older packs.

    python tools/export_depthcrafter.py --unet ~/weights/DepthCrafter --svd ~/weights/svd-xt --out models/depthcrafter
    python tools/export_depthcrafter.py ... --dtype float32        # fp32 instead of the reference's fp16
    python tools/export_depthcrafter.py ... --variant fp16         # load the *.fp16.safetensors files where a folder has them

Requirements: tools/requirements-export.txt. See README "Real DepthCrafter weights".
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import torch
from torch import nn

OPSET = 17
ATTENTION_MODES = ("mha", "unfused")
FILES = {"imageEncoder": "image_encoder.onnx", "vaeEncoder": "vae_encoder.onnx", "unet": "unet.onnx", "vaeDecoder": "vae_decoder.onnx"}
ADDED_TIME_IDS = [7.0, 127.0, 0.02]  # fps, motion bucket, noise aug: DepthCrafter passes 7, not fps - 1


# ---------------------------------------------------------------------------------------------
# export wrappers: one module per ONNX file, with the pack's input/output names


class ImageEncoder(nn.Module):
    """pixel_values [N,3,224,224] (CLIP-normalised) -> image_embeds [N,D]: the projected pooled token."""

    def __init__(self, clip) -> None:
        super().__init__()
        self.clip = clip

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.clip(pixel_values=pixel_values).image_embeds


class VaeEncoder(nn.Module):
    """sample [N,3,H,W] in [-1,1] -> latent_mean [N,C,h,w]: the mode of the latent distribution, unscaled."""

    def __init__(self, vae) -> None:
        super().__init__()
        self.vae = vae
        self.channels = vae.config.latent_channels

    def forward(self, sample: torch.Tensor) -> torch.Tensor:
        moments = self.vae.quant_conv(self.vae.encoder(sample))
        return moments[:, : self.channels]  # mean first, log-variance second


class VaeDecoder(nn.Module):
    """latent [T,C,h,w] (already divided by the scaling factor) -> sample [T,3,H,W]; frames of one call are mixed."""

    def __init__(self, vae) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latent, num_frames=latent.shape[0]).sample


class PerFrameConditionedUNet(nn.Module):
    """DepthCrafter's UNet call: one image embedding per frame (stock SVD takes one per clip and repeats it).

    sample [B,T,8,h,w] = [x * c_in, condition latents], timestep [1] = c_noise, encoder_hidden_states [B,T,D],
    added_time_ids [B,3] -> v-prediction output [B,T,4,h,w]. Spec section 3, "UNet I/O".
    """

    def __init__(self, unet) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states, added_time_ids):
        u = self.unet
        batch, frames = sample.shape[0], sample.shape[1]
        dtype = u.conv_in.weight.dtype
        # clip-level embedding: noise level + added ids, shared by every frame of the clip
        t_emb = u.time_proj(timestep.reshape(-1).expand(batch)).to(dtype)
        emb = u.time_embedding(t_emb)
        ids = u.add_time_proj(added_time_ids.flatten()).reshape(batch, -1).to(emb.dtype)
        emb = emb + u.add_embedding(ids)
        # per frame: expand + reshape instead of repeat_interleave (same order, exports with a dynamic T)
        emb = emb[:, None].expand(batch, frames, emb.shape[-1]).reshape(batch * frames, emb.shape[-1])
        context = encoder_hidden_states.reshape(batch * frames, 1, encoder_hidden_states.shape[-1])
        h = u.conv_in(sample.flatten(0, 1).to(dtype))
        indicator = torch.zeros(batch, frames, dtype=h.dtype, device=h.device)  # video, not image-only

        skips = [h]
        for block in u.down_blocks:
            kw = {"encoder_hidden_states": context} if getattr(block, "has_cross_attention", False) else {}
            h, res = block(hidden_states=h, temb=emb, image_only_indicator=indicator, **kw)
            skips.extend(res)
        h = u.mid_block(hidden_states=h, temb=emb, encoder_hidden_states=context, image_only_indicator=indicator)
        for block in u.up_blocks:
            n = len(block.resnets)
            res, skips = tuple(skips[-n:]), skips[:-n]
            kw = {"encoder_hidden_states": context} if getattr(block, "has_cross_attention", False) else {}
            h = block(hidden_states=h, res_hidden_states_tuple=res, temb=emb, image_only_indicator=indicator, **kw)
        h = u.conv_out(u.conv_act(u.conv_norm_out(h)))
        return h.reshape(batch, frames, *h.shape[1:])


# ---------------------------------------------------------------------------------------------
# fused attention: every attention of the UNet (spatial, temporal, cross), of the VAE (mid-block) and of the image
# encoder becomes one com.microsoft::MultiHeadAttention node instead of MatMul-Softmax-MatMul. ONNX Runtime has
# kernels for it on CPU, CUDA (flash / memory-efficient attention), ROCm and WebGPU (CPU and WebGPU verified with
# onnxruntime 1.30: docs/gpu.md); the opset-23 Attention op runs on CPU but falls back to CPU under the WebGPU provider
# of onnxruntime-node 1.30, so it is not used. In eager PyTorch the same call is torch's scaled_dot_product_attention, so the PyTorch side of every
# check is unchanged.


def _heads_sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """q [B,S,H*d], k [B,L,H*d], v [B,L,H*dv] -> [B,S,H*dv]: softmax(q k^T / sqrt(d)) v per head."""
    b, s, _ = q.shape
    split = lambda t: t.reshape(b, t.shape[1], heads, t.shape[2] // heads).transpose(1, 2)
    out = torch.nn.functional.scaled_dot_product_attention(split(q), split(k), split(v), dropout_p=0.0, is_causal=False)
    return out.transpose(1, 2).reshape(b, s, -1)


class OrtMultiHeadAttention(torch.autograd.Function):
    """Eager: _heads_sdpa. Traced by the TorchScript exporter: a single MultiHeadAttention node (domain com.microsoft;
    query [B,S,hidden], key/value [B,L,hidden], attribute num_heads, default scale 1/sqrt(head size))."""

    @staticmethod
    def forward(ctx, q, k, v, heads: int):  # noqa: D401 (torch.autograd.Function API)
        return _heads_sdpa(q, k, v, heads)

    @staticmethod
    def symbolic(g, q, k, v, heads: int):
        return g.op("com.microsoft::MultiHeadAttention", q, k, v, num_heads_i=int(heads))


def mha(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    if torch.onnx.is_in_onnx_export():
        return OrtMultiHeadAttention.apply(q, k, v, heads)
    return _heads_sdpa(q, k, v, heads)


class FusedAttnProcessor:
    """A diffusers attention processor with the arithmetic of the default one (AttnProcessor2_0: optional spatial and
    group norm, q/k/v projections, attention with scale 1/sqrt(head dim), output projection, residual, rescale) whose
    attention core is `mha`. Anything it does not cover (masks, q/k norms) goes to the processor it replaced."""

    def __init__(self, fallback) -> None:
        self.fallback = fallback

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        if attention_mask is not None or getattr(attn, "norm_q", None) is not None or getattr(attn, "norm_k", None) is not None:
            return self.fallback(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        image = hidden_states.ndim == 4
        if image:  # [B,C,H,W] -> [B,HW,C] (the VAE's mid-block attention)
            b, c, hh, ww = hidden_states.shape
            hidden_states = hidden_states.reshape(b, c, hh * ww).transpose(1, 2)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        context = hidden_states if encoder_hidden_states is None else (
            attn.norm_encoder_hidden_states(encoder_hidden_states) if attn.norm_cross else encoder_hidden_states)
        q, k, v = attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context)
        out = mha(q, k, v, attn.heads).to(q.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if image:
            out = out.transpose(1, 2).reshape(b, c, hh, ww)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def _clip_fused_forward(self, hidden_states, attention_mask=None, **kwargs):
    """transformers' CLIPAttention.forward (vision: no mask) with `mha` as its attention core."""
    if attention_mask is not None:
        return self._unfused_forward(hidden_states, attention_mask, **kwargs)
    out = mha(self.q_proj(hidden_states), self.k_proj(hidden_states), self.v_proj(hidden_states), self.num_heads)
    return self.out_proj(out), None


class fused_attention:
    """Context manager: `mha` attention in every diffusers Attention and transformers CLIPAttention of `module`
    while it is exported; the original processors/forwards are put back afterwards."""

    def __init__(self, module: nn.Module, enabled: bool = True) -> None:
        self.module, self.enabled, self.undo = module, enabled, []

    def __enter__(self):
        if not self.enabled:
            return self
        from diffusers.models.attention_processor import Attention
        from transformers.models.clip.modeling_clip import CLIPAttention
        for m in self.module.modules():
            if isinstance(m, Attention):
                old = m.processor
                m.processor = FusedAttnProcessor(old)
                self.undo.append(lambda m=m, old=old: setattr(m, "processor", old))
            elif isinstance(m, CLIPAttention):
                m._unfused_forward = m.forward
                m.forward = _clip_fused_forward.__get__(m)
                self.undo.append(lambda m=m: (delattr(m, "forward"), delattr(m, "_unfused_forward")))
        return self

    def __exit__(self, *exc) -> None:
        for f in reversed(self.undo):
            f()
        self.undo.clear()


def attention_ops(path: str) -> dict:
    """Node counts of an exported file: all nodes, Softmax, MultiHeadAttention, and unfused attention patterns
    (a Softmax fed by a MatMul through at most a few Mul/Div/Add/Cast nodes and feeding a MatMul)."""
    import onnx
    g = onnx.load(path, load_external_data=False).graph
    producer = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    passthrough = {"Mul", "Div", "Add", "Cast", "Where"}

    def fed_by_matmul(name: str, depth: int = 4) -> bool:
        n = producer.get(name)
        if n is None or depth == 0:
            return False
        return n.op_type == "MatMul" or (n.op_type in passthrough and any(fed_by_matmul(i, depth - 1) for i in n.input))

    def feeds_matmul(name: str, depth: int = 3) -> bool:
        return depth > 0 and any(c.op_type == "MatMul" or (c.op_type in passthrough and feeds_matmul(c.output[0], depth - 1))
                                 for c in consumers.get(name, []))

    softmax = [n for n in g.node if n.op_type == "Softmax"]
    return {"nodes": len(g.node), "Softmax": len(softmax),
            "MultiHeadAttention": sum(n.op_type == "MultiHeadAttention" for n in g.node),
            "unfusedAttention": sum(fed_by_matmul(n.input[0]) and feeds_matmul(n.output[0]) for n in softmax)}


# ---------------------------------------------------------------------------------------------
# loading


def folder_variant(folder: str, variant: str | None) -> dict:
    """`variant` for from_pretrained where `folder` has weight files of that variant (model.fp16.safetensors,
    *.fp16-00001-of-00002.safetensors, *.index.fp16.json), else none: tencent/DepthCrafter ships a single
    (fp16) file without a variant name while SVD-xt has fp16 variants, and the reference loads them that way."""
    if not variant or not os.path.isdir(folder):
        return {}
    tags = (f".{variant}.safetensors", f".{variant}.json")
    if any(n.endswith(tags) or f".{variant}-" in n for n in os.listdir(folder)):
        return {"variant": variant}
    print(f"[export] {folder}: no {variant} weight files, loading the plain ones", flush=True)
    return {}


def load_models(unet_dir: str, svd_dir: str, variant: str | None, dtype: torch.dtype):
    from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
    from transformers import CLIPVisionModelWithProjection

    for label, path in (("--unet", unet_dir), ("--svd", svd_dir)):
        if not os.path.isdir(path):
            raise SystemExit(f"{label} {path}: not a folder")
    for sub in ("vae", "image_encoder", "feature_extractor", "scheduler"):
        if not os.path.isdir(os.path.join(svd_dir, sub)):
            raise SystemExit(f"--svd {svd_dir}: missing {sub}/ (expected the stable-video-diffusion-img2vid-xt layout)")
    # loaded straight in the export dtype: a 3 GB fp16 UNet is not widened to 6 GB first
    unet = UNetSpatioTemporalConditionModel.from_pretrained(unet_dir, torch_dtype=dtype, **folder_variant(unet_dir, variant))
    if unet.config.in_channels != 8:
        raise SystemExit(f"--unet {unet_dir}: in_channels is {unet.config.in_channels}, DepthCrafter's UNet has 8")
    vae = AutoencoderKLTemporalDecoder.from_pretrained(svd_dir, subfolder="vae", torch_dtype=torch.float32,
                                                       **folder_variant(os.path.join(svd_dir, "vae"), variant))
    clip_dir = os.path.join(svd_dir, "image_encoder")
    clip = CLIPVisionModelWithProjection.from_pretrained(clip_dir, dtype=dtype, **folder_variant(clip_dir, variant))
    with open(os.path.join(svd_dir, "feature_extractor", "preprocessor_config.json")) as fh:
        proc = json.load(fh)
    with open(os.path.join(svd_dir, "scheduler", "scheduler_config.json")) as fh:
        sched = json.load(fh)
    for m in (unet, vae, clip):
        m.eval()
    return unet, vae, clip, proc, sched


# ---------------------------------------------------------------------------------------------
# export + check


def export_onnx(module: nn.Module, args: tuple, path: str, inputs: list[str], outputs: list[str], axes: dict,
                external: bool, attention: str = "mha") -> None:
    with tempfile.TemporaryDirectory(dir=os.path.dirname(path)) as tmp:
        raw = os.path.join(tmp, "model.onnx")
        with torch.no_grad(), fused_attention(module, attention == "mha"):
            torch.onnx.export(module, args, raw, input_names=inputs, output_names=outputs, dynamic_axes=axes,
                              opset_version=OPSET, dynamo=False, do_constant_folding=True,
                              custom_opsets={"com.microsoft": 1} if attention == "mha" else None)
        import onnx
        model = onnx.load(raw)  # pulls in any external tensors the exporter wrote next to it
        for f in (path, path + ".data"):
            if os.path.exists(f):
                os.remove(f)
        if external:
            onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=os.path.basename(path) + ".data", size_threshold=1024)
        else:
            onnx.save_model(model, path)
        onnx.checker.check_model(path)


def compare(module: nn.Module, path: str, feeds: dict[str, np.ndarray], dtype: torch.dtype, device: str) -> dict:
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(None, feeds)[0].astype(np.float32)
    with torch.no_grad():
        ref = module(*[torch.from_numpy(v).to(device) for v in feeds.values()]).float().cpu().numpy()
    if got.shape != ref.shape:
        raise SystemExit(f"{path}: ONNX Runtime output shape {got.shape} != PyTorch {ref.shape} for inputs "
                         f"{ {k: v.shape for k, v in feeds.items()} } (a dynamic axis was frozen?)")
    diff = float(np.abs(got - ref).max())
    scale = float(np.abs(ref).max()) or 1.0
    return {"shape": list(ref.shape), "max_abs_diff": diff, "max_abs_ref": scale, "rel": diff / scale}


def check_wrapper_against_stock(wrapper: PerFrameConditionedUNet, feeds: dict, device: str) -> dict:
    """With the same embedding on every frame, the per-frame forward must equal the stock SVD forward
    (which takes one embedding per clip and repeats it): a check of the wrapper that needs no DepthCrafter code."""
    f = {k: torch.from_numpy(v).to(device) for k, v in feeds.items()}
    one = f["encoder_hidden_states"][:, :1]
    with torch.no_grad():
        ours = wrapper(f["sample"], f["timestep"], one.expand_as(f["encoder_hidden_states"]), f["added_time_ids"]).float()
        stock = wrapper.unet(f["sample"], f["timestep"], one, f["added_time_ids"], return_dict=False)[0].float()
    diff = float((ours - stock).abs().max())
    scale = float(stock.abs().max()) or 1.0
    tol = 1e-2 if f["sample"].dtype == torch.float16 else 1e-5
    if diff / scale > tol:
        raise SystemExit(f"per-frame UNet wrapper differs from the stock forward by {diff:.3g} (scale {scale:.3g})")
    return {"max_abs_diff": diff, "max_abs_ref": scale}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--unet", required=True, help="folder of the DepthCrafter UNet (config.json + safetensors)")
    ap.add_argument("--svd", required=True, help="folder of stable-video-diffusion-img2vid-xt (vae/, image_encoder/, ...)")
    ap.add_argument("--out", required=True, help="pack folder to write")
    ap.add_argument("--dtype", choices=["float16", "float32"], default="float16",
                    help="image encoder, UNet and VAE decoder element type (the VAE encoder is always float32)")
    ap.add_argument("--variant", default=None, help="weights variant to load, e.g. fp16 (per folder: where a folder has no "
                    "files of that variant its plain weights are loaded)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="where to trace (fp16 tracing is faster on cuda)")
    ap.add_argument("--name", default="depthcrafter")
    ap.add_argument("--version", default="1.0.0")
    ap.add_argument("--max-window", type=int, default=110, help="manifest maxWindow: the largest T the target GPU holds")
    ap.add_argument("--licence", default="DepthCrafter weights (Tencent): research and education use only, see its LICENSE; "
                    "SVD-xt VAE and image encoder (Stability AI): Stability AI Community License")
    ap.add_argument("--description", default=None)
    ap.add_argument("--source", action="append", default=[], help="provenance line for the manifest (repeatable)")
    ap.add_argument("--training-domain", choices=["real", "synthetic"], default=None,
                    help="manifest trainingDomain: what the weights were trained on (the real DepthCrafter: real)")
    ap.add_argument("--trace-size", default="64x128", help="HxW of the traced/validated inputs (multiples of 64: the real UNet halves the latents 3 times)")
    ap.add_argument("--external-data", choices=["unet", "all", "none"], default="unet",
                    help="which files store weights as external data (the real UNet must: 3 GB > protobuf's 2 GB)")
    ap.add_argument("--attention", choices=ATTENTION_MODES, default="mha",
                    help="mha (default): each attention is one com.microsoft MultiHeadAttention node, which ONNX Runtime "
                    "runs with its own attention kernels (CPU, CUDA flash / memory-efficient attention, WebGPU): on the "
                    "CPU the real UNet's call needs 40 %% of the memory of the unfused graph; unfused: the plain MatMul-Softmax-MatMul graph of older packs")
    ap.add_argument("--no-validate", action="store_true")
    a = ap.parse_args()

    t0 = time.time()
    dt = torch.float16 if a.dtype == "float16" else torch.float32
    unet, vae, clip, proc, sched = load_models(a.unet, a.svd, a.variant, dt)
    npdt = np.float16 if a.dtype == "float16" else np.float32
    dev = a.device
    C = vae.config.latent_channels
    down = 2 ** (len(vae.config.block_out_channels) - 1)
    D = clip.config.projection_dim
    size = clip.config.image_size
    H, W = (int(v) for v in a.trace_size.lower().split("x"))
    h, w = H // down, W // down
    if H % 64 or W % 64:
        raise SystemExit(f"--trace-size {a.trace_size}: height and width must be multiples of 64")
    H2, W2 = H + 64, (W - 64 if W > 64 else W + 64)  # the second validation shape: other T, H and W
    h2, w2 = H2 // down, W2 // down
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(0)
    ext = {"unet"} if a.external_data == "unet" else set(FILES) if a.external_data == "all" else set()

    enc = VaeEncoder(vae.to(dev, torch.float32))
    specs = []  # (key, module, dtype, inputs, outputs, axes, feeds at trace shape, feeds at another shape)
    specs.append(("vaeEncoder", enc, torch.float32, ["sample"], ["latent_mean"],
                  {"sample": {0: "N", 2: "H", 3: "W"}, "latent_mean": {0: "N", 2: "h", 3: "w"}},
                  {"sample": rng.uniform(-1, 1, (2, 3, H, W)).astype(np.float32)},
                  {"sample": rng.uniform(-1, 1, (3, 3, H2, W2)).astype(np.float32)}))
    # the decoder is exported from its own copy so the encoder stays float32
    dec_vae = type(vae).from_config(vae.config)
    dec_vae.load_state_dict(vae.state_dict())
    dec = VaeDecoder(dec_vae.eval().to(dev, dt))
    specs.append(("vaeDecoder", dec, dt, ["latent"], ["sample"],
                  {"latent": {0: "T", 2: "h", 3: "w"}, "sample": {0: "T", 2: "H", 3: "W"}},
                  {"latent": rng.standard_normal((3, C, h, w)).astype(npdt)},
                  {"latent": rng.standard_normal((5, C, h2, w2)).astype(npdt)}))
    img = ImageEncoder(clip.to(dev, dt))
    specs.append(("imageEncoder", img, dt, ["pixel_values"], ["image_embeds"],
                  {"pixel_values": {0: "N"}, "image_embeds": {0: "N"}},
                  {"pixel_values": rng.standard_normal((2, 3, size, size)).astype(npdt)},
                  {"pixel_values": rng.standard_normal((5, 3, size, size)).astype(npdt)}))
    un = PerFrameConditionedUNet(unet.to(dev, dt))

    def unet_feeds(T: int, hh: int, ww: int) -> dict:
        return {"sample": rng.standard_normal((1, T, 2 * C, hh, ww)).astype(npdt),
                "timestep": np.array([0.25 * np.log(15.58997)], npdt),
                "encoder_hidden_states": rng.standard_normal((1, T, D)).astype(npdt),
                "added_time_ids": np.array([ADDED_TIME_IDS], npdt)}

    specs.append(("unet", un, dt, ["sample", "timestep", "encoder_hidden_states", "added_time_ids"], ["noise_pred"],
                  {"sample": {1: "T", 3: "h", 4: "w"}, "encoder_hidden_states": {1: "T"}, "noise_pred": {1: "T", 3: "h", 4: "w"}},
                  unet_feeds(3, h, w), unet_feeds(5, h2, w2)))

    report = {}
    if not a.no_validate:
        report["unetWrapper"] = check_wrapper_against_stock(un, unet_feeds(3, h, w), dev)
        print(f"[export] per-frame UNet wrapper vs the stock forward (equal embeddings): {json.dumps(report['unetWrapper'])}", flush=True)
    for key, module, _, inputs, outputs, axes, feeds, feeds2 in specs:
        path = os.path.join(a.out, FILES[key])
        t1 = time.time()
        args = tuple(torch.from_numpy(v).to(dev) for v in feeds.values())
        export_onnx(module, args, path, inputs, outputs, axes, key in ext, a.attention)
        row = {"export_seconds": round(time.time() - t1, 1),
               "bytes": os.path.getsize(path) + (os.path.getsize(path + ".data") if os.path.exists(path + ".data") else 0),
               "attention": a.attention, "ops": attention_ops(path)}
        if a.attention == "mha" and row["ops"]["unfusedAttention"]:
            raise SystemExit(f"{path}: {row['ops']['unfusedAttention']} attention(s) left unfused (MatMul-Softmax-MatMul): {row['ops']}")
        if not a.no_validate:
            row["traced_shape"] = compare(module, path, feeds, dt, dev)
            row["other_shape"] = compare(module, path, feeds2, dt, dev)
            tol = 2e-2 if (a.dtype == "float16" and key != "vaeEncoder") else 1e-4
            worst = max(row["traced_shape"]["rel"], row["other_shape"]["rel"])
            if worst > tol:
                raise SystemExit(f"{path}: ONNX Runtime differs from PyTorch by {worst:.3g} of the output scale (tolerance {tol})")
        report[key] = row
        print(f"[export] {FILES[key]}: {json.dumps(row)}", flush=True)

    manifest = {
        "format": "depthcrafter-pack",
        "formatVersion": 1,
        "name": a.name,
        "version": a.version,
        "description": a.description or (
            f"DepthCrafter exported by tools/export_depthcrafter.py from local weights (UNet: {os.path.basename(os.path.abspath(a.unet))}, "
            f"VAE and image encoder: {os.path.basename(os.path.abspath(a.svd))}); {a.dtype} (VAE encoder float32), opset {OPSET}, "
            f"{'fused attention (com.microsoft MultiHeadAttention)' if a.attention == 'mha' else 'unfused attention'}."),
        "licence": a.licence,
        "latentChannels": C,
        "vaeScalingFactor": float(vae.config.scaling_factor),
        "spatialDownsample": down,
        "imageEncoder": {"size": size, "mean": [float(v) for v in proc["image_mean"]], "std": [float(v) for v in proc["image_std"]]},
        "embeddingDim": D,
        "sigmaMin": float(sched.get("sigma_min", 0.002)),
        "sigmaMax": float(sched.get("sigma_max", 700.0)),
        "defaults": {"steps": 5, "guidance": 1.0, "window": min(110, a.max_window), "overlap": min(25, a.max_window - 1),
                     "maxRes": 1024, "noiseAugStrength": 0.02, "decodeChunk": 8},
        "maxWindow": a.max_window,
        "dtype": a.dtype,
        "files": FILES,
        "addedTimeIds": ADDED_TIME_IDS,
        "notes": f"exported in {time.time() - t0:.0f} s; ONNX Runtime vs PyTorch: "
                 + "; ".join(f"{k} {v['other_shape']['rel']:.2e}" for k, v in report.items() if "other_shape" in v),
        "sources": [os.path.abspath(a.unet), os.path.abspath(a.svd)] + a.source,
    }
    if a.training_domain:
        manifest["trainingDomain"] = a.training_domain
    with open(os.path.join(a.out, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=2)
    with open(os.path.join(a.out, "export-report.json"), "w") as fh:
        json.dump(report, fh, indent=2)
    print(f"[export] wrote {a.out} in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
