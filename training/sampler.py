"""The sampler's arithmetic, without torch: the one Python copy of src/inference/math/ (spec sections 3-5).

training/model.py's ``sample_video`` runs on these functions, and test/training-sampler.test.ts checks
them against the TypeScript engine's on the same inputs with plain python3 (CI has no torch). The
elementwise functions are duck-typed: they take plain floats or torch tensors (``.sqrt()``/``.log()``
are used when the argument has them, so a tensor stays a tensor op).
"""

from __future__ import annotations

import math
import struct

SIGMA_MIN = 0.002
SIGMA_MAX = 700.0
KARRAS_RHO = 7.0
DECODE_CHUNK = 8


def to_float32(v: float) -> float:
    """Round a float to the nearest float32 (ties to even), as a torch float32 tensor stores it."""
    return struct.unpack("f", struct.pack("f", v))[0]


def _sqrt(v):
    return v.sqrt() if hasattr(v, "sqrt") else math.sqrt(v)


def _log(v):
    return v.log() if hasattr(v, "log") else math.log(v)


# --- EDM preconditioning (v-prediction, sigma_data = 1) ----------------------------------------


def c_skip(s):
    return 1.0 / (s * s + 1.0)


def c_out(s):
    return -s / _sqrt(s * s + 1.0)


def c_in(s):
    return 1.0 / _sqrt(s * s + 1.0)


def c_noise(s):
    return 0.25 * _log(s)


# --- schedule --------------------------------------------------------------------------------


def karras_sigmas(n: int, sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX, rho: float = KARRAS_RHO) -> list[float]:
    """n sigmas as the reference scheduler holds them (float32 values), then a trailing 0: length n + 1."""
    if n == 1:
        return [sigma_max, 0.0]
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    s = [(hi + i / (n - 1) * (lo - hi)) ** rho for i in range(n)]
    return [to_float32(v) for v in s] + [0.0]


def init_noise_sigma(sigma0: float) -> float:
    """Std of the initial latent noise: sqrt(sigma_0^2 + 1) ("leading" spacing)."""
    return math.sqrt(sigma0 ** 2 + 1)


# --- one denoising step ----------------------------------------------------------------------


def denoised(x, f, s):
    """D = c_skip * x + c_out * F."""
    return c_skip(s) * x + c_out(s) * f


def euler_step(x, f, s: float, s_next: float):
    """x at sigma s and the model output F -> x at sigma s_next; the last step (s_next = 0) returns D exactly.
    D + (s_next/s)(x - D) is the engine's x + ((s_next - s)/s)(x - D) rearranged: in float64 the two agree
    after float32 storage (the test checks it bit for bit); in torch's float32 ops they differ by rounding,
    and this form is the one sample_video has always used (kept so its output stays the same)."""
    d = denoised(x, f, s)
    return d + (s_next / s) * (x - d) if s_next > 0 else d


def guidance(cond, uncond, g: float):
    """Classifier-free guidance: uncond + g * (cond - uncond)."""
    return uncond + g * (cond - uncond)


# --- windows, noise, stitching, decoding -----------------------------------------------------


def effective_window(n: int, window: int, overlap: int) -> tuple[int, int]:
    """(window, overlap) actually used: a video that fits in one window is one pass with no overlap."""
    if n <= window:
        return n, 0
    if overlap < 1:
        raise ValueError("overlap must be >= 1 when the video is longer than the window")
    if overlap >= window:
        raise ValueError("overlap must be smaller than the window")
    return window, overlap


def segment_layout(n: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) of each window: stride window - overlap, while start < n - overlap."""
    window, overlap = effective_window(n, window, overlap)
    if n == 0:
        return []
    out = []
    start = 0
    while True:
        end = min(start + window, n)
        out.append((start, end))
        start += window - overlap
        if start + overlap >= n or end - out[-1][0] < window:
            return out


def noise_frame_index(k: int, i: int, window: int, overlap: int) -> int:
    """Index into the one noise block of frame i of window k: the block is rolled right by k * overlap."""
    return (i - k * overlap) % window


def overlap_init(prev, x, init_sigma: float, sigma0: float):
    """An overlap frame starts from the previous result + sigma_0 * unit noise (x is noise * init_sigma)."""
    return prev + (x / init_sigma) * sigma0


def blend_weights(ov: int) -> list[float]:
    """Weight of the new window for each of the ov overlapped frames (0 -> 1): torch.linspace(0, 1, ov) in
    float32, bit for bit. torch computes the upper half as 1 - (ov-1-i) * step, so ov = 4 gives 0.6666666,
    not float32(2/3) = 0.6666667 (spec section 11; the same formula as stitching.ts's torchLinspace01)."""
    if ov == 1:
        return [0.0]
    step = to_float32(1 / (ov - 1))
    half = ov // 2
    return [to_float32(step * i) if i < half else to_float32(1 - to_float32(step * (ov - 1 - i))) for i in range(ov)]


def blend(prev, cur, w: float):
    """One overlapped frame: w * cur + (1 - w) * prev."""
    return w * cur + (1 - w) * prev


def decode_chunks(n: int, chunk: int = DECODE_CHUNK) -> list[tuple[int, int]]:
    """Decode clips aligned to global frame indices 0, chunk, 2 chunk, ...; the last may be shorter."""
    return [(s, min(s + chunk, n)) for s in range(0, n, chunk)]
