// The Python training sampler (training/sampler.py, what training/model.py's sample_video runs) against the
// engine's TypeScript maths (src/inference/math) on the same inputs. Plain python3 only: the module must
// not need torch (CI has none; the driver below makes `import torch` fail to keep it that way).
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

import { cIn, cNoise, cOut, cSkip } from '../src/inference/math/edm.js';
import { applyGuidance, EulerVSampler } from '../src/inference/math/euler-sampler.js';
import { karrasSigmas, SIGMA_MAX, SIGMA_MIN, toFloat32Sigmas } from '../src/inference/math/sigmas.js';
import { noiseFrameIndex } from '../src/inference/math/noise-schedule.js';
import { blendFrame, torchLinspace01 } from '../src/inference/math/stitching.js';
import { segmentLayout } from '../src/inference/math/segments.js';
import { decodeChunks } from '../src/inference/math/decode-chunks.js';
import { Prng } from '../src/inference/math/prng.js';
import { ROOT } from './helpers/build-cli.js';

const STEPS = [1, 2, 3, 4, 5, 6, 8, 10, 16, 25]; // 5: every pack's default; 25: the paper's; 4: the old "fast" mode
const SIGMA_RANGES: Array<[number, number]> = [
  [SIGMA_MIN, SIGMA_MAX],
  [0.01, 80],
]; // the spec's, and another one
const GUIDANCE = [1, 1.2, 2.5];
const LAYOUTS: Array<[number, number, number]> = []; // [frames, window, overlap]
for (const [w, o] of [
  [110, 25],
  [32, 8],
  [16, 4],
  [8, 3],
  [5, 1],
  [2, 1],
]) {
  for (const n of [0, 1, w - 1, w, w + 1, 2 * w - o, 2 * w - o + 1, 3 * w + 7, 1000]) LAYOUTS.push([n, w, o]);
}
LAYOUTS.push([111, 110, 0], [20, 10, 0], [10, 10, 0]); // overlap 0: an error once the video is longer than the window
const OVERLAPS = [1, 2, 3, 4, 5, 7, 8, 25, 64, 109];
const CHUNKS: Array<[number, number]> = [
  [0, 8],
  [1, 8],
  [7, 8],
  [8, 8],
  [38, 8],
  [110, 8],
  [23, 5],
  [9, 1],
];
const VALUES = 257; // elementwise checks run on this many values

/** float32 values from the engine's seeded PRNG, spanning the magnitudes latents and model outputs take. */
function f32Values(seed: number, scale: number): Float32Array {
  const r = new Prng(seed);
  const out = new Float32Array(VALUES);
  for (let i = 0; i < VALUES; i++) out[i] = (r.nextOpenUnit() * 2 - 1) * scale;
  return out;
}

const PY_DRIVER = String.raw`
import json, sys
sys.modules["torch"] = None  # the shared module must work without torch
sys.path.insert(0, sys.argv[1])
import sampler as S

req = json.load(sys.stdin)
res = {"sigmas": [], "layouts": [], "chunks": [], "noise": [], "weights": [], "blend": [], "guidance": []}
for n, lo, hi in req["sigmas"]:
    sig = S.karras_sigmas(n, lo, hi)
    x, f = req["x"], req["f"]
    res["sigmas"].append({
        "sigmas": sig,
        "c_in": [S.c_in(s) for s in sig[:-1]], "c_skip": [S.c_skip(s) for s in sig[:-1]],
        "c_out": [S.c_out(s) for s in sig[:-1]], "c_noise": [S.c_noise(s) for s in sig[:-1]],
        "c_noise_f32": [S.to_float32(S.c_noise(s)) for s in sig[:-1]],
        "init_f32": S.to_float32(S.init_noise_sigma(sig[0])),
        "step": [[S.to_float32(S.euler_step(a, b, sig[i], sig[i + 1])) for a, b in zip(x, f)] for i in range(n)],
        "denoised": [[S.to_float32(S.denoised(a, b, sig[i])) for a, b in zip(x, f)] for i in range(n)],
    })
for g in req["guidance"]:
    res["guidance"].append([S.to_float32(S.guidance(c, u, g)) for c, u in zip(req["x"], req["f"])])
for n, w, o in req["layouts"]:
    try:
        res["layouts"].append([list(s) for s in S.segment_layout(n, w, o)])
    except ValueError as e:
        res["layouts"].append(str(e))
for n, c in req["chunks"]:
    res["chunks"].append([list(s) for s in S.decode_chunks(n, c)])
for n, w, o in req["noise"]:
    ew, eo = S.effective_window(n, w, o)
    res["noise"].append([[S.noise_frame_index(k, i, ew, eo) for i in range(e - s)]
                         for k, (s, e) in enumerate(S.segment_layout(n, w, o))])
for ov in req["overlaps"]:
    wts = S.blend_weights(ov)
    res["weights"].append(wts)
    res["blend"].append([[S.to_float32(S.blend(p, c, wt)) for p, c in zip(req["prev"], req["x"])] for wt in wts[:4]])
json.dump(res, sys.stdout)
`;

interface PyResult {
  sigmas: Array<{
    sigmas: number[];
    c_in: number[];
    c_skip: number[];
    c_out: number[];
    c_noise: number[];
    c_noise_f32: number[];
    init_f32: number;
    step: number[][];
    denoised: number[][];
  }>;
  guidance: number[][];
  layouts: Array<number[][] | string>;
  chunks: number[][][];
  noise: number[][][];
  weights: number[][];
  blend: number[][][];
}

/** One float32 ulp at |v| (the spacing of float32 values there). */
function ulp32(v: number): number {
  const a = Math.max(Math.abs(v), 2 ** -126);
  return 2 ** (Math.floor(Math.log2(a)) - 23);
}

describe('training sampler (Python) vs engine maths (TypeScript)', () => {
  const x = f32Values(1, 700); // latents start at sigma_max scale
  const f = f32Values(2, 3); // v-prediction outputs are O(1)
  const prev = f32Values(3, 4); // stitched latents
  const noiseCases = LAYOUTS.filter(([n, , o]) => n > 0 && n <= 400 && o > 0);
  let py: PyResult;

  before(() => {
    const request = {
      sigmas: STEPS.flatMap((n) => SIGMA_RANGES.map(([lo, hi]) => [n, lo, hi])),
      x: Array.from(x),
      f: Array.from(f),
      prev: Array.from(prev),
      guidance: GUIDANCE,
      layouts: LAYOUTS,
      chunks: CHUNKS,
      noise: noiseCases,
      overlaps: OVERLAPS,
    };
    const r = spawnSync('python3', ['-c', PY_DRIVER, path.join(ROOT, 'training')], {
      input: JSON.stringify(request),
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    assert.equal(r.status, 0, `python3 failed: ${r.error?.message ?? r.stderr}`);
    py = JSON.parse(r.stdout) as PyResult;
  });

  it('Karras sigmas: the same float32 schedule for every step count and sigma range', () => {
    let k = 0;
    for (const n of STEPS) {
      for (const [lo, hi] of SIGMA_RANGES) {
        const ts = Array.from(toFloat32Sigmas(karrasSigmas(n, lo, hi)));
        assert.deepEqual(py.sigmas[k++].sigmas, ts, `steps ${n}, sigma ${lo}..${hi}`);
      }
    }
  });

  it('EDM coefficients: c_in, c_skip, c_out exact (float64 both); c_noise within 1 float64 ulp, equal as the float32 timestep', () => {
    let k = 0;
    for (const n of STEPS) {
      for (const [lo, hi] of SIGMA_RANGES) {
        const p = py.sigmas[k++];
        const sampler = new EulerVSampler({ steps: n, sigmaMin: lo, sigmaMax: hi });
        for (let i = 0; i < n; i++) {
          const s = sampler.sigmas[i];
          const at = `steps ${n}, sigma ${lo}..${hi}, step ${i}`;
          assert.equal(p.c_in[i], cIn(s), `c_in ${at}`);
          assert.equal(p.c_skip[i], cSkip(s), `c_skip ${at}`);
          assert.equal(p.c_out[i], cOut(s), `c_out ${at}`);
          // V8's Math.log and the C library's log may round the last bit differently; the UNet gets float32.
          assert.ok(Math.abs(p.c_noise[i] - cNoise(s)) <= Number.EPSILON * Math.abs(cNoise(s)), `c_noise ${at}`);
          assert.equal(p.c_noise_f32[i], sampler.timesteps[i], `timestep ${at}`);
        }
        assert.equal(p.init_f32, sampler.initNoiseSigma, `init noise sigma, steps ${n}`);
      }
    }
  });

  it('Euler step and denoised estimate: exact (both compute in float64 and store float32)', () => {
    let k = 0;
    for (const n of STEPS) {
      for (const [lo, hi] of SIGMA_RANGES) {
        const p = py.sigmas[k++];
        const sampler = new EulerVSampler({ steps: n, sigmaMin: lo, sigmaMax: hi });
        for (let i = 0; i < n; i++) {
          const at = `steps ${n}, sigma ${lo}..${hi}, step ${i}`;
          assert.deepEqual(p.step[i], Array.from(sampler.step(x, f, i, new Float32Array(VALUES))), `step ${at}`);
          assert.deepEqual(p.denoised[i], Array.from(sampler.denoised(x, f, i, new Float32Array(VALUES))), `D ${at}`);
        }
      }
    }
  });

  it('guidance: exact for g = 1 and g > 1', () => {
    GUIDANCE.forEach((g, k) => {
      assert.deepEqual(py.guidance[k], Array.from(applyGuidance(x, f, g, new Float32Array(VALUES))), `g ${g}`);
    });
  });

  it('window layout: the same segments, and both refuse overlap 0 on a video longer than the window', () => {
    LAYOUTS.forEach(([n, w, o], k) => {
      const p = py.layouts[k];
      let ts: number[][] | 'error';
      try {
        ts = segmentLayout(n, w, o).map((s) => [s.start, s.end]);
      } catch {
        ts = 'error';
      }
      assert.deepEqual(typeof p === 'string' ? 'error' : p, ts, `n ${n}, window ${w}, overlap ${o}`);
    });
  });

  it('rolled noise: every frame of every window reads the same noise frame', () => {
    noiseCases.forEach(([n, w, o], k) => {
      const segs = segmentLayout(n, w, o);
      const ew = n <= w ? n : w;
      const eo = n <= w ? 0 : o;
      const ts = segs.map((s, win) => Array.from({ length: s.end - s.start }, (_, i) => noiseFrameIndex(win, i, ew, eo)));
      assert.deepEqual(py.noise[k], ts, `n ${n}, window ${w}, overlap ${o}`);
    });
  });

  it('overlap blend weights: torch.linspace(0, 1, O) bit for bit', () => {
    OVERLAPS.forEach((ov, k) => {
      assert.deepEqual(py.weights[k], Array.from(torchLinspace01(ov)), `overlap ${ov}`);
    });
  });

  it('overlap blend: within 1.5 float32 ulp (TS rounds each product to float32 as torch does, Python plain floats do not)', () => {
    OVERLAPS.forEach((ov, k) => {
      const w = torchLinspace01(ov);
      py.blend[k].forEach((row, i) => {
        const ts = blendFrame(prev, x, w[i], new Float32Array(VALUES));
        for (let j = 0; j < VALUES; j++) {
          // Each of the two float32 products and the sum rounds once: at most 1.5 ulp of the largest term.
          const tol = 1.5 * ulp32(Math.max(Math.abs(x[j]), Math.abs(prev[j])));
          assert.ok(Math.abs(row[j] - ts[j]) <= tol, `overlap ${ov}, frame ${i}, value ${j}: ${row[j]} vs ${ts[j]}`);
        }
      });
    });
  });

  it('decode chunks: the same boundaries', () => {
    CHUNKS.forEach(([n, c], k) => {
      assert.deepEqual(
        py.chunks[k],
        decodeChunks(n, c).map((s) => [s.start, s.end]),
        `n ${n}, chunk ${c}`,
      );
    });
  });
});
