#!/usr/bin/env python3
"""Write tiny, seeded, randomly initialised models of the classes the real DepthCrafter uses, in the
folder layout of the real downloads, so the export tool and the parity check can run anywhere.

    OUT/unet/                 UNetSpatioTemporalConditionModel, 8 input channels (like tencent/DepthCrafter)
    OUT/svd/model_index.json  like stabilityai/stable-video-diffusion-img2vid-xt:
    OUT/svd/vae/              AutoencoderKLTemporalDecoder, four blocks (latents at 1/8)
    OUT/svd/image_encoder/    CLIPVisionModelWithProjection (224x224 input)
    OUT/svd/feature_extractor/ CLIPImageProcessor (CLIP mean/std)
    OUT/svd/scheduler/        EulerDiscreteScheduler with the SVD-xt settings (spec section 3)

These are built from the diffusers/transformers code where the check runs and are never committed.
The random weights are scaled up a little (--gain) so that the networks' outputs are not all ~0 and
a parity check compares numbers that actually vary.

Usage: python tools/make_tiny_depthcrafter.py --out .tmp/tiny-dc [--seed 0] [--embed-dim 32] [--vae-layers 2]
       python tools/make_tiny_depthcrafter.py --out .tmp/real-arch --real-size     # the real architecture, random
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch


def tiny_unet(embed_dim: int):
    from diffusers import UNetSpatioTemporalConditionModel

    return UNetSpatioTemporalConditionModel(
        sample_size=16,
        in_channels=8,
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        block_out_channels=(32, 64, 64),
        addition_time_embed_dim=16,
        projection_class_embeddings_input_dim=3 * 16,
        layers_per_block=1,
        cross_attention_dim=embed_dim,
        num_attention_heads=(2, 4, 4),
        num_frames=16,
    )


def build(out: str, seed: int, embed_dim: int, gain: float, real_size_unet: bool, vae_layers: int = 1,
          real_size: bool = False) -> None:
    from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, UNetSpatioTemporalConditionModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    if real_size:
        real_size_unet, embed_dim = True, 1024
    if real_size_unet:
        # the real architecture (the class defaults are tencent/DepthCrafter's config) with random weights, in fp16:
        # checks the export of a 3 GB UNet (external data) without the real weights
        unet = UNetSpatioTemporalConditionModel(in_channels=8, cross_attention_dim=embed_dim).half()
    else:
        unet = tiny_unet(embed_dim)
    vae = AutoencoderKLTemporalDecoder(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        # SVD-xt's VAE: 128/256/512/512 channels, 2 layers per block (98 M parameters)
        block_out_channels=(128, 256, 512, 512) if real_size else (32, 32, 32, 32),
        layers_per_block=2 if real_size else vae_layers,
        latent_channels=4,
        sample_size=768 if real_size else 64,
        scaling_factor=0.18215,
        force_upcast=True,
    )
    if real_size:  # SVD-xt's image encoder: ViT-H/14 (632 M parameters)
        clip_cfg = CLIPVisionConfig(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16,
                                    image_size=224, patch_size=14, projection_dim=1024, hidden_act="gelu")
    else:
        clip_cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2,
                                    image_size=224, patch_size=32, projection_dim=embed_dim)
    image_encoder = CLIPVisionModelWithProjection(clip_cfg)
    with torch.no_grad():
        # zero-initialised output layers (diffusers' default for some) would make every output trivially 0
        for mod in ((vae, image_encoder) if real_size_unet else (unet, vae, image_encoder)):
            for name, p in mod.named_parameters():
                if p.dim() > 1 and not real_size:  # (the real depths keep the default scale: no fp16 overflow)
                    p.mul_(gain)
                if p.abs().max() == 0 and p.dim() > 0:
                    p.normal_(0.0, 0.02 if p.dim() == 1 else 0.05)
    if real_size:
        image_encoder = image_encoder.half()  # as SVD-xt ships it (fp16 variant); the VAE stays float32
    for mod in (unet, vae, image_encoder):
        mod.eval()

    scheduler = EulerDiscreteScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        prediction_type="v_prediction", interpolation_type="linear", use_karras_sigmas=True,
        sigma_min=0.002, sigma_max=700.0, timestep_spacing="leading", timestep_type="continuous",
        steps_offset=1, final_sigmas_type="zero",
    )
    processor = CLIPImageProcessor(
        do_resize=True, size={"shortest_edge": 224}, do_center_crop=True, crop_size={"height": 224, "width": 224},
        do_rescale=True, do_normalize=True, image_mean=[0.48145466, 0.4578275, 0.40821073],
        image_std=[0.26862954, 0.26130258, 0.27577711],
    )

    unet.save_pretrained(os.path.join(out, "unet"))
    svd = os.path.join(out, "svd")
    vae.save_pretrained(os.path.join(svd, "vae"))
    image_encoder.save_pretrained(os.path.join(svd, "image_encoder"))
    processor.save_pretrained(os.path.join(svd, "feature_extractor"))
    scheduler.save_pretrained(os.path.join(svd, "scheduler"))
    with open(os.path.join(svd, "model_index.json"), "w") as fh:
        json.dump({
            "_class_name": "StableVideoDiffusionPipeline",
            "feature_extractor": ["transformers", "CLIPImageProcessor"],
            "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
            "scheduler": ["diffusers", "EulerDiscreteScheduler"],
            "unet": ["diffusers", "UNetSpatioTemporalConditionModel"],
            "vae": ["diffusers", "AutoencoderKLTemporalDecoder"],
        }, fh, indent=2)
    counts = {k: sum(p.numel() for p in m.parameters()) for k, m in (("unet", unet), ("vae", vae), ("image_encoder", image_encoder))}
    print(json.dumps({"out": out, "seed": seed, "params": counts}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--embed-dim", type=int, default=32)
    ap.add_argument("--gain", type=float, default=1.5, help="scale of the random weights (>1 keeps activations O(1))")
    ap.add_argument("--real-size-unet", action="store_true",
                    help="the UNet at the real size (1.5 B parameters, fp16, 3 GB) for an export check; use --embed-dim 1024")
    ap.add_argument("--vae-layers", type=int, default=1,
                    help="layers per VAE block (SVD-xt: 2); the temporal decoder's mid-block attention needs 2 or more")
    ap.add_argument("--real-size", action="store_true",
                    help="all three networks at the real size with random weights (UNet 1.52 B fp16, VAE 98 M, ViT-H/14 "
                    "image encoder 632 M fp16): a pack of the real architecture for bench/gpu-check.sh")
    a = ap.parse_args()
    build(a.out, a.seed, a.embed_dim, a.gain, a.real_size_unet, a.vae_layers, a.real_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
