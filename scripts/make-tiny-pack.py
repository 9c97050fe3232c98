#!/usr/bin/env python3
"""Write the tiny random-weight DepthCrafter model pack to ``models/tiny-random/``.

The pack has the exact DepthCrafter I/O contract (tensor names, ranks, dtypes,
dynamic axes; see docs/model-pack.md) but tiny graphs with fixed, seeded random
weights. Its depth output is meaningless: it exists so that the loader, the
engine and the pipelines can be tested end to end on a CPU in milliseconds.

Only ``onnx`` and ``numpy`` are needed to build the pack (``onnx.helper`` /
``onnx.numpy_helper``, opset 17, IR version 8); no torch. If ``onnxruntime`` is
importable, every exported file is also run once and its outputs checked.

How to run (from the repository root)::

    # /usr/bin/python3 has no onnx on the project machines, so use a venv
    # (.venv/ is gitignored; pip installs from the machine's local index):
    python3 -m venv .venv
    .venv/bin/pip install onnx numpy onnxruntime
    .venv/bin/python scripts/make-tiny-pack.py            # -> models/tiny-random/
    .venv/bin/python scripts/make-tiny-pack.py --out DIR  # somewhere else

The output is deterministic for a given onnx/numpy version (seeded weights,
no timestamps), so re-running it should not change the committed files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
SEED = 20241125

D = 32  # embedding dim (the real model: 1024)
LATENT_CH = 4
DOWN = 8
CLIP_SIZE = 224
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

F32 = TensorProto.FLOAT


class GraphBuilder:
    """Collects nodes and initializers with unique names."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def _name(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}_{self._n}"

    def const(self, value, prefix: str = "c", dtype=np.float32) -> str:
        name = self._name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def weight(self, shape, fan_in: int, gain: float = 1.0, prefix: str = "w") -> str:
        std = gain / np.sqrt(fan_in)
        return self.const(self.rng.normal(0.0, std, size=shape).astype(np.float32), prefix)

    def op(self, op_type: str, inputs: list[str], output: str | None = None, **attrs) -> str:
        out = output or self._name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=self._name("n_" + op_type), **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k, gain: float = 1.0, **attrs) -> str:
        ks = list(k) if isinstance(k, (list, tuple)) else [k, k]
        fan_in = cin * int(np.prod(ks))
        w = self.weight([cout, cin, *ks], fan_in, gain)
        b = self.const(self.rng.normal(0.0, 0.02, size=[cout]).astype(np.float32), "b")
        return self.op("Conv", [x, w, b], kernel_shape=ks, **attrs)

    def silu(self, x: str) -> str:
        return self.op("Mul", [x, self.op("Sigmoid", [x])])

    def ints(self, values) -> str:
        return self.const(values, "i", dtype=np.int64)

    def temporal_conv(self, x_tchw: str, ch: int, gain: float = 1.0) -> str:
        """[T,C,h,w] -> Conv3d kernel (3,1,1), pad (1,0,0) across frames -> [T,C,h,w]."""
        t = self.op("Transpose", [x_tchw], perm=[1, 0, 2, 3])  # [C,T,h,w]
        t = self.op("Unsqueeze", [t, self.ints([0])])  # [1,C,T,h,w]
        t = self.conv(t, ch, ch, [3, 1, 1], gain=gain, pads=[1, 0, 0, 1, 0, 0])
        t = self.op("Squeeze", [t, self.ints([0])])  # [C,T,h,w]
        return self.op("Transpose", [t], perm=[1, 0, 2, 3])  # [T,C,h,w]

    def model(self, name: str, doc: str, inputs, outputs) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, initializer=self.inits)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="depthcrafter-live/make-tiny-pack.py",
            producer_version="1",
            doc_string=doc,
        )
        model.ir_version = IR_VERSION
        return model


def vi(name: str, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, F32, shape)


def image_encoder(rng: np.random.Generator) -> onnx.ModelProto:
    """pixel_values [N,3,224,224] -> image_embeds [N,D]."""
    g = GraphBuilder(rng)
    x = g.conv("pixel_values", 3, 4, 4, strides=[4, 4])  # [N,4,56,56]
    x = g.silu(x)
    x = g.op("AveragePool", [x], kernel_shape=[8, 8], strides=[8, 8])  # [N,4,7,7]
    x = g.op("Flatten", [x], axis=1)  # [N,196]
    w = g.weight([4 * 7 * 7, D], 4 * 7 * 7, gain=1.5)
    b = g.const(rng.normal(0.0, 0.1, size=[D]).astype(np.float32), "b")
    g.op("Gemm", [x, w, b], output="image_embeds")
    return g.model(
        "tiny_image_encoder",
        "Tiny random stand-in for the CLIP ViT-H/14 image encoder (projected pooled token).",
        [vi("pixel_values", ["N", 3, CLIP_SIZE, CLIP_SIZE])],
        [vi("image_embeds", ["N", D])],
    )


def vae_encoder(rng: np.random.Generator) -> onnx.ModelProto:
    """sample [N,3,H,W] in [-1,1] -> latent_mean [N,4,H/8,W/8] (unscaled mean)."""
    g = GraphBuilder(rng)
    x = g.op("AveragePool", ["sample"], kernel_shape=[DOWN, DOWN], strides=[DOWN, DOWN])  # [N,3,h,w]
    x = g.conv(x, 3, 16, 3, pads=[1, 1, 1, 1], gain=3.0)
    x = g.silu(x)
    moments = g.conv(x, 16, 2 * LATENT_CH, 1, gain=2.5)  # [N,8,h,w]: mean (0-3), logvar (4-7)
    g.op("Slice", [moments, g.ints([0]), g.ints([LATENT_CH]), g.ints([1])], output="latent_mean")
    return g.model(
        "tiny_vae_encoder",
        "Tiny random stand-in for the SVD VAE encoder; returns the latent mean (unscaled).",
        [vi("sample", ["N", 3, "H", "W"])],
        [vi("latent_mean", ["N", LATENT_CH, "h", "w"])],
    )


def unet(rng: np.random.Generator) -> onnx.ModelProto:
    """sample [1,T,8,h,w], timestep [1], encoder_hidden_states [1,T,D], added_time_ids [1,3]
    -> noise_pred [1,T,4,h,w]."""
    g = GraphBuilder(rng)
    C = 16
    K = 8  # sinusoid frequencies

    x = g.op("Squeeze", ["sample", g.ints([0])])  # [T,8,h,w]
    h = g.conv(x, 2 * LATENT_CH, C, 3, pads=[1, 1, 1, 1])  # [T,C,h,w]

    # per-frame image embedding -> [T,C,1,1]
    e = g.op("Squeeze", ["encoder_hidden_states", g.ints([0])])  # [T,D]
    e = g.op("MatMul", [e, g.weight([D, C], D, gain=0.5)])  # [T,C]
    e = g.op("Unsqueeze", [e, g.ints([2, 3])])  # [T,C,1,1]

    # timestep: sin/cos(c_noise * freqs) -> MLP -> [1,C]
    freqs = np.exp(-np.log(100.0) * np.arange(K, dtype=np.float32) / K).astype(np.float32)
    t = g.op("Unsqueeze", ["timestep", g.ints([1])])  # [1,1]
    t = g.op("Mul", [t, g.const(freqs.reshape(1, K) * 4.0)])  # [1,K]
    t = g.op("Concat", [g.op("Sin", [t]), g.op("Cos", [t])], axis=1)  # [1,2K]
    t = g.op("MatMul", [t, g.weight([2 * K, C], 2 * K)])
    t = g.silu(t)
    t = g.op("MatMul", [t, g.weight([C, C], C, gain=0.5)])  # [1,C]

    # added_time_ids [1,3] (fps, motion bucket, noise aug): sinusoids per id -> [1,C]
    a = g.op("Unsqueeze", ["added_time_ids", g.ints([2])])  # [1,3,1]
    a = g.op("Mul", [a, g.const(freqs.reshape(1, 1, K))])  # [1,3,K]
    a = g.op("Concat", [g.op("Sin", [a]), g.op("Cos", [a])], axis=2)  # [1,3,2K]
    a = g.op("Reshape", [a, g.ints([1, 3 * 2 * K])])  # [1,6K]
    a = g.op("MatMul", [a, g.weight([3 * 2 * K, C], 3 * 2 * K, gain=0.5)])  # [1,C]

    cond = g.op("Add", [t, a])
    cond = g.op("Unsqueeze", [cond, g.ints([2, 3])])  # [1,C,1,1]

    h = g.op("Add", [g.op("Add", [h, e]), cond])
    h = g.silu(h)
    h = g.op("Add", [h, g.temporal_conv(h, C, gain=0.7)])  # temporal mixing + residual
    h = g.silu(h)
    out = g.conv(h, C, LATENT_CH, 3, pads=[1, 1, 1, 1], gain=0.7)  # [T,4,h,w]
    g.op("Unsqueeze", [out, g.ints([0])], output="noise_pred")  # [1,T,4,h,w]
    return g.model(
        "tiny_unet",
        "Tiny random stand-in for the DepthCrafter spatio-temporal UNet (v-prediction output).",
        [
            vi("sample", [1, "T", 2 * LATENT_CH, "h", "w"]),
            vi("timestep", [1]),
            vi("encoder_hidden_states", [1, "T", D]),
            vi("added_time_ids", [1, 3]),
        ],
        [vi("noise_pred", [1, "T", LATENT_CH, "h", "w"])],
    )


def vae_decoder(rng: np.random.Generator) -> onnx.ModelProto:
    """latent [T,4,h,w] (already / scaling factor) -> sample [T,3,H,W] in (-1,1)."""
    g = GraphBuilder(rng)
    # inputs are z/0.18215, i.e. std ~5: keep the pre-Tanh activations O(1)
    x = g.conv("latent", LATENT_CH, 3, 1, gain=0.25)  # [T,3,h,w]
    x = g.op("Resize", [x, "", g.const([1.0, 1.0, DOWN, DOWN])], mode="linear")  # [T,3,H,W]
    x = g.temporal_conv(x, 3, gain=1.0)  # mixes frames within the call
    g.op("Tanh", [x], output="sample")
    return g.model(
        "tiny_vae_decoder",
        "Tiny random stand-in for the SVD temporal VAE decoder (frames mixed within one call).",
        [vi("latent", ["T", LATENT_CH, "h", "w"])],
        [vi("sample", ["T", 3, "H", "W"])],
    )


FILES = {
    "imageEncoder": ("image_encoder.onnx", image_encoder),
    "vaeEncoder": ("vae_encoder.onnx", vae_encoder),
    "unet": ("unet.onnx", unet),
    "vaeDecoder": ("vae_decoder.onnx", vae_decoder),
}


def manifest() -> dict:
    return {
        "format": "depthcrafter-pack",
        "formatVersion": 1,
        "name": "tiny-random",
        "version": "1.0.0",
        "description": (
            "Tiny random-weight test pack with the exact DepthCrafter ONNX I/O contract "
            "(names, ranks, float32, dynamic frame/height/width axes) but a few thousand seeded "
            "random weights instead of the real models. Its depth output is meaningless; use it "
            "only for tests, plumbing and benchmarks of the non-model code. "
            "Generated by scripts/make-tiny-pack.py."
        ),
        "licence": "Apache-2.0 (generated random weights, no third-party model content)",
        "latentChannels": LATENT_CH,
        "vaeScalingFactor": 0.18215,
        "spatialDownsample": DOWN,
        "imageEncoder": {"size": CLIP_SIZE, "mean": CLIP_MEAN, "std": CLIP_STD},
        "embeddingDim": D,
        "sigmaMin": 0.002,
        "sigmaMax": 700,
        "defaults": {
            "steps": 5,
            "guidance": 1.0,
            "window": 110,
            "overlap": 25,
            "maxRes": 1024,
            "noiseAugStrength": 0.02,
            "decodeChunk": 8,
        },
        "maxWindow": 110,
        "dtype": "float32",
        "files": {key: fname for key, (fname, _) in FILES.items()},
        "addedTimeIds": [7, 127, 0.02],
    }


def verify(out_dir: str) -> None:
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime not importable: skipped the runtime check")
        return
    rng = np.random.default_rng(1)
    T, H, W = 3, 64, 96
    h, w = H // DOWN, W // DOWN

    def run(fname: str, feeds: dict) -> list[np.ndarray]:
        sess = ort.InferenceSession(os.path.join(out_dir, fname), providers=["CPUExecutionProvider"])
        return sess.run(None, feeds)

    def check(label: str, arr: np.ndarray, shape) -> None:
        assert arr.shape == tuple(shape), f"{label}: shape {arr.shape}, expected {tuple(shape)}"
        assert np.isfinite(arr).all(), f"{label}: non-finite values"
        print(f"  {label}: shape {arr.shape}, mean {arr.mean():+.4f}, std {arr.std():.4f}, "
              f"min {arr.min():+.4f}, max {arr.max():+.4f}")

    f32 = np.float32
    (emb,) = run("image_encoder.onnx", {"pixel_values": rng.normal(size=(T, 3, CLIP_SIZE, CLIP_SIZE)).astype(f32)})
    check("image_embeds", emb, (T, D))
    (lat,) = run("vae_encoder.onnx", {"sample": rng.uniform(-1, 1, size=(T, 3, H, W)).astype(f32)})
    check("latent_mean", lat, (T, LATENT_CH, h, w))
    (pred,) = run("unet.onnx", {
        "sample": rng.normal(size=(1, T, 2 * LATENT_CH, h, w)).astype(f32),
        "timestep": np.array([0.25 * np.log(700.0)], dtype=f32),
        "encoder_hidden_states": emb[None].astype(f32),
        "added_time_ids": np.array([[7, 127, 0.02]], dtype=f32),
    })
    check("noise_pred", pred, (1, T, LATENT_CH, h, w))
    z = (rng.normal(size=(T, LATENT_CH, h, w)) / 0.18215).astype(f32)
    (img,) = run("vae_decoder.onnx", {"latent": z})
    check("decoded sample", img, (T, 3, H, W))
    z2 = z.copy()
    z2[0] += 3.0
    (img2,) = run("vae_decoder.onnx", {"latent": z2})
    assert np.abs(img2[1] - img[1]).max() > 1e-4, "decoder does not mix frames temporally"
    assert np.abs(img2[2] - img[2]).max() == 0.0, "decoder temporal receptive field is wider than 3"
    print("onnxruntime check passed (onnxruntime", ort.__version__ + ")")


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(here, "..", "models", "tiny-random"))
    args = parser.parse_args()
    out_dir = os.path.normpath(args.out)
    os.makedirs(out_dir, exist_ok=True)

    rng = np.random.default_rng(SEED)
    for key, (fname, build) in FILES.items():
        model = build(rng)
        onnx.checker.check_model(model, full_check=True)
        path = os.path.join(out_dir, fname)
        onnx.save_model(model, path)
        onnx.checker.check_model(path, full_check=True)
        print(f"wrote {path} ({os.path.getsize(path)} bytes)")

    with open(os.path.join(out_dir, "manifest.json"), "w", encoding="utf-8") as fh:
        json.dump(manifest(), fh, indent=2)
        fh.write("\n")
    print(f"wrote {os.path.join(out_dir, 'manifest.json')}")
    print(f"python {sys.version.split()[0]}, onnx {onnx.__version__}, numpy {np.__version__}")
    verify(out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
