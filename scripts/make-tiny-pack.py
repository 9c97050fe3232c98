#!/usr/bin/env python3
"""Write the tiny random-weight DepthCrafter model pack to ``models/tiny-random/``.

With ``--dtype float16`` it writes the same networks (the same seeded weights)
as a float16 pack, by default to ``models/tiny-random-fp16/``: the image
encoder, UNet and VAE decoder then take and return float16 tensors, and the VAE
encoder stays float32 (as the pack format requires). onnxruntime's CPU provider
lacks float16 kernels for many ops, so each float16 graph is the float32 graph
wrapped in Casts: Cast(float16->float32) on every input, the float32 body
(weights stay float32), Cast(float32->float16) on every output. That exercises
the engine's whole float16 I/O path (what a real float16 GPU pack needs) while
the arithmetic inside stays float32.

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
    .venv/bin/python scripts/make-tiny-pack.py --dtype float16  # -> models/tiny-random-fp16/

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
F16 = TensorProto.FLOAT16


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


# The files whose float tensors have the pack dtype; the VAE encoder is always float32.
HALF_IO_KEYS = ("imageEncoder", "unet", "vaeDecoder")


def with_half_io(model: onnx.ModelProto) -> onnx.ModelProto:
    """Returns a copy of a float32 model whose float inputs and outputs are float16.

    Every float32 graph input X becomes a float16 input X followed by Cast(X) -> float32, and
    every float32 graph output Y is produced by Cast(float32 Y) -> float16. The body and its
    weights are unchanged (float32), because onnxruntime's CPU provider lacks float16 kernels
    for many ops.
    """
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    taken = {n for node in g.node for n in (*node.input, *node.output)} | {i.name for i in g.initializer}

    def internal(name: str) -> str:
        new = f"{name}_f32"
        while new in taken:
            new += "_"
        taken.add(new)
        return new

    head: list[onnx.NodeProto] = []
    for vi_ in g.input:
        if vi_.type.tensor_type.elem_type != F32:
            continue
        inner = internal(vi_.name)
        for node in g.node:
            node.input[:] = [inner if n == vi_.name else n for n in node.input]
        head.append(helper.make_node("Cast", [vi_.name], [inner], name=f"cast_in_{vi_.name}", to=F32))
        vi_.type.tensor_type.elem_type = F16

    tail: list[onnx.NodeProto] = []
    for vo in g.output:
        if vo.type.tensor_type.elem_type != F32:
            continue
        inner = internal(vo.name)
        for node in g.node:
            node.output[:] = [inner if n == vo.name else n for n in node.output]
            node.input[:] = [inner if n == vo.name else n for n in node.input]
        tail.append(helper.make_node("Cast", [inner], [vo.name], name=f"cast_out_{vo.name}", to=F16))
        vo.type.tensor_type.elem_type = F16

    body = list(g.node)
    del g.node[:]
    g.node.extend([*head, *body, *tail])
    m.doc_string = (model.doc_string + " Float16 inputs and outputs, cast to and from a float32 body "
                    "(float32 weights).")
    return m


FILES = {
    "imageEncoder": ("image_encoder.onnx", image_encoder),
    "vaeEncoder": ("vae_encoder.onnx", vae_encoder),
    "unet": ("unet.onnx", unet),
    "vaeDecoder": ("vae_decoder.onnx", vae_decoder),
}


DESCRIPTION_F32 = (
    "Tiny random-weight test pack with the exact DepthCrafter ONNX I/O contract "
    "(names, ranks, float32, dynamic frame/height/width axes) but a few thousand seeded "
    "random weights instead of the real models. Its depth output is meaningless; use it "
    "only for tests, plumbing and benchmarks of the non-model code. "
    "Generated by scripts/make-tiny-pack.py."
)

DESCRIPTION_F16 = (
    "Tiny random-weight float16 test pack: the same networks and seeded random weights as "
    "tiny-random, with the exact DepthCrafter ONNX I/O contract for dtype float16 (the image "
    "encoder, UNet and VAE decoder take and return float16 tensors; the VAE encoder stays "
    "float32). Only the inputs and outputs are float16: each graph casts its float16 inputs to "
    "float32, computes in float32 with float32 weights, and casts its outputs to float16, "
    "because onnxruntime's CPU provider lacks float16 kernels for many ops. It tests the "
    "engine's float16 I/O path (conversion, tensor types, validation), not float16 arithmetic. "
    "Its depth output is meaningless; use it only for tests. "
    "Generated by scripts/make-tiny-pack.py --dtype float16."
)


def manifest(dtype: str = "float32") -> dict:
    half = dtype == "float16"
    return {
        "format": "depthcrafter-pack",
        "formatVersion": 1,
        "name": "tiny-random-fp16" if half else "tiny-random",
        "version": "1.0.0",
        "description": DESCRIPTION_F16 if half else DESCRIPTION_F32,
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
        "dtype": dtype,
        "files": {key: fname for key, (fname, _) in FILES.items()},
        "addedTimeIds": [7, 127, 0.02],
        "randomWeights": True,
    }


def verify(out_dir: str, dtype: str = "float32", reference: dict[str, onnx.ModelProto] | None = None) -> None:
    """Runs each file once with onnxruntime and checks shapes, finiteness and the decoder's
    temporal mixing. For a float16 pack, ``reference`` holds the float32 models built from the
    same weights: each float16 output must equal the float32 output (on the same, float16-exact
    inputs) rounded to float16."""
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime not importable: skipped the runtime check")
        return
    rng = np.random.default_rng(1)
    T, H, W = 3, 64, 96
    h, w = H // DOWN, W // DOWN
    half = dtype == "float16"
    fp = np.float16 if half else np.float32  # the pack dtype

    def session(source):
        return ort.InferenceSession(source, providers=["CPUExecutionProvider"])

    def run(key: str, feeds: dict) -> list[np.ndarray]:
        fname = FILES[key][0]
        outs = session(os.path.join(out_dir, fname)).run(None, feeds)
        if reference is not None and key in HALF_IO_KEYS:
            # the same weights in float32, fed the float16 inputs widened to float32
            ref = session(reference[key].SerializeToString()).run(
                None, {k: v.astype(np.float32) for k, v in feeds.items()})
            for got, want in zip(outs, ref):
                assert got.dtype == np.float16, f"{fname}: output dtype {got.dtype}, expected float16"
                assert np.array_equal(got, want.astype(np.float16)), (
                    f"{fname}: float16 output differs from the float32 model's output rounded to float16")
        return outs

    def check(label: str, arr: np.ndarray, shape, dt) -> None:
        assert arr.shape == tuple(shape), f"{label}: shape {arr.shape}, expected {tuple(shape)}"
        assert arr.dtype == dt, f"{label}: dtype {arr.dtype}, expected {np.dtype(dt)}"
        assert np.isfinite(arr).all(), f"{label}: non-finite values"
        a = arr.astype(np.float32)
        print(f"  {label}: shape {arr.shape} {arr.dtype}, mean {a.mean():+.4f}, std {a.std():.4f}, "
              f"min {a.min():+.4f}, max {a.max():+.4f}")

    f32 = np.float32
    (emb,) = run("imageEncoder", {"pixel_values": rng.normal(size=(T, 3, CLIP_SIZE, CLIP_SIZE)).astype(fp)})
    check("image_embeds", emb, (T, D), fp)
    (lat,) = run("vaeEncoder", {"sample": rng.uniform(-1, 1, size=(T, 3, H, W)).astype(f32)})
    check("latent_mean", lat, (T, LATENT_CH, h, w), f32)
    (pred,) = run("unet", {
        "sample": rng.normal(size=(1, T, 2 * LATENT_CH, h, w)).astype(fp),
        "timestep": np.array([0.25 * np.log(700.0)], dtype=fp),
        "encoder_hidden_states": emb[None].astype(fp),
        "added_time_ids": np.array([[7, 127, 0.02]], dtype=fp),
    })
    check("noise_pred", pred, (1, T, LATENT_CH, h, w), fp)
    z = (rng.normal(size=(T, LATENT_CH, h, w)) / 0.18215).astype(fp)
    (img,) = run("vaeDecoder", {"latent": z})
    check("decoded sample", img, (T, 3, H, W), fp)
    z2 = z.copy()
    z2[0] += fp(3.0)
    (img2,) = run("vaeDecoder", {"latent": z2})
    img, img2 = img.astype(f32), img2.astype(f32)
    assert np.abs(img2[1] - img[1]).max() > 1e-4, "decoder does not mix frames temporally"
    assert np.abs(img2[2] - img[2]).max() == 0.0, "decoder temporal receptive field is wider than 3"
    if reference is not None:
        print("  float16 outputs equal the float32 models' outputs rounded to float16")
    print("onnxruntime check passed (onnxruntime", ort.__version__ + ")")


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=["float32", "float16"], default="float32",
                        help="pack dtype (float16: the same networks with float16 I/O; the VAE encoder stays float32)")
    parser.add_argument("--out", default=None,
                        help="output folder (default models/tiny-random, or models/tiny-random-fp16 for float16)")
    args = parser.parse_args()
    half = args.dtype == "float16"
    default_out = os.path.join(here, "..", "models", "tiny-random-fp16" if half else "tiny-random")
    out_dir = os.path.normpath(args.out or default_out)
    os.makedirs(out_dir, exist_ok=True)

    rng = np.random.default_rng(SEED)
    reference: dict[str, onnx.ModelProto] = {}
    for key, (fname, build) in FILES.items():
        model = build(rng)  # same rng sequence for both dtypes: the same weights
        if half and key in HALF_IO_KEYS:
            reference[key] = model
            model = with_half_io(model)
        onnx.checker.check_model(model, full_check=True)
        path = os.path.join(out_dir, fname)
        onnx.save_model(model, path)
        onnx.checker.check_model(path, full_check=True)
        print(f"wrote {path} ({os.path.getsize(path)} bytes)")

    with open(os.path.join(out_dir, "manifest.json"), "w", encoding="utf-8") as fh:
        json.dump(manifest(args.dtype), fh, indent=2)
        fh.write("\n")
    print(f"wrote {os.path.join(out_dir, 'manifest.json')}")
    print(f"python {sys.version.split()[0]}, onnx {onnx.__version__}, numpy {np.__version__}")
    verify(out_dir, args.dtype, reference if half else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
