import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { resizeBilinearPlane, resizeBilinearRGB } from '../src/inference/image/resize.js';
import {
  antialiasAxis,
  CLIP_MEAN,
  CLIP_SIZE,
  CLIP_STD,
  ClipPreprocessor,
  clipNormalize,
  clipPreprocess,
  cubicWeights,
  gaussianKernel,
  reflectIndex,
} from '../src/inference/image/clip-preprocess.js';

function assertClose(actual: number, expected: number, tol: number, msg = ''): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${msg} expected ${expected} +/- ${tol}, got ${actual}`);
}

/** uint8 -> [-1, 1] as float32. */
const toSigned = (v: number): number => Math.fround((v * 2) / 255 - 1);

/** Packs an RGB image from a per-pixel function with a padded row stride; padding bytes are 0xAB. */
function packRGB(w: number, h: number, stride: number, f: (x: number, y: number, c: number) => number): Uint8Array {
  const buf = new Uint8Array(stride * h).fill(0xab);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) buf[y * stride + 3 * x + c] = f(x, y, c);
  return buf;
}

// ---------------------------------------------------------------------------
describe('resizeBilinearRGB', () => {
  it('same size: repacks HWC uint8 with row padding to CHW [-1, 1]', () => {
    const w = 3;
    const h = 2;
    const stride = 12; // 9 bytes of pixels padded to 4-byte alignment
    const f = (x: number, y: number, c: number): number => 10 * x + 40 * y + 80 * c + (x === 2 && y === 1 && c === 2 ? 35 : 0);
    const src = packRGB(w, h, stride, f);
    const out = resizeBilinearRGB(src, w, h, stride, w, h, new Float32Array(3 * w * h));
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) assertClose(out[c * w * h + y * w + x], toSigned(f(x, y, c)), 1e-7);
    }
    assert.equal(out[3 * w * h - 1], 1); // 255 -> +1
    assertClose(out[0], -1, 0);
  });
  it('upscale uses half-pixel centres and clamps at the edges', () => {
    // 2x1 -> 4x1: src x = (d + 0.5)/2 - 0.5 = -0.25, 0.25, 0.75, 1.25 -> clamp, 0.25, 0.75, clamp
    const src = new Uint8Array([0, 255, 10, 255, 0, 10]);
    const out = resizeBilinearRGB(src, 2, 1, 6, 4, 1, new Float32Array(12));
    [-1, -0.5, 0.5, 1].forEach((v, i) => assertClose(out[i], v, 1e-6, `R${i}`));
    [1, 0.5, -0.5, -1].forEach((v, i) => assertClose(out[4 + i], v, 1e-6, `G${i}`));
    for (let i = 0; i < 4; i++) assertClose(out[8 + i], toSigned(10), 1e-6);
  });
  it('2x downscale averages 2x2 blocks', () => {
    const vals = [
      [0, 10, 20, 30],
      [40, 50, 60, 70],
      [80, 90, 100, 110],
      [120, 130, 140, 150],
    ];
    const src = packRGB(4, 4, 12, (x, y, c) => vals[y][x] + c);
    const out = resizeBilinearRGB(src, 4, 4, 12, 2, 2, new Float32Array(12));
    const expected = [25, 45, 105, 125];
    for (let c = 0; c < 3; c++) expected.forEach((v, i) => assertClose(out[4 * c + i], toSigned(v + c), 1e-6));
  });
  it('reproduces a linear ramp at any scale (half-pixel mapping, not align_corners)', () => {
    const sw = 80;
    const sh = 30;
    const stride = 3 * sw + 1;
    const src = packRGB(sw, sh, stride, (x, y, c) => (c === 0 ? 3 * x : c === 1 ? 8 * y : 7));
    for (const [dw, dh] of [
      [37, 11],
      [160, 45],
      [80, 7],
    ]) {
      const out = resizeBilinearRGB(src, sw, sh, stride, dw, dh, new Float32Array(3 * dw * dh));
      const plane = dw * dh;
      for (let y = 0; y < dh; y++) {
        const fy = Math.min(Math.max((y + 0.5) * (sh / dh) - 0.5, 0), sh - 1);
        for (let x = 0; x < dw; x++) {
          const fx = Math.min(Math.max((x + 0.5) * (sw / dw) - 0.5, 0), sw - 1);
          assertClose(out[y * dw + x], (3 * fx * 2) / 255 - 1, 1e-5, `R ${dw}x${dh} @${x},${y}`);
          assertClose(out[plane + y * dw + x], (8 * fy * 2) / 255 - 1, 1e-5, `G ${dw}x${dh} @${x},${y}`);
          assertClose(out[2 * plane + y * dw + x], toSigned(7), 1e-6);
        }
      }
    }
  });
  it('never reads the row padding', () => {
    const src = packRGB(5, 4, 20, () => 0); // 15 bytes of pixels, 5 bytes of 0xAB padding per row
    for (const [dw, dh] of [
      [5, 4],
      [9, 7],
      [2, 2],
    ]) {
      const out = resizeBilinearRGB(src, 5, 4, 20, dw, dh, new Float32Array(3 * dw * dh));
      for (const v of out) assert.equal(v, -1);
    }
  });
  it('gives the same result when sizes alternate (table cache)', () => {
    const a = packRGB(17, 13, 52, (x, y, c) => (x * 13 + y * 7 + c * 50) % 256);
    const b = packRGB(9, 21, 28, (x, y, c) => (x * 31 + y * 3 + c * 90) % 256);
    const ra1 = resizeBilinearRGB(a, 17, 13, 52, 8, 6, new Float32Array(144));
    resizeBilinearRGB(b, 9, 21, 28, 12, 5, new Float32Array(180));
    const ra2 = resizeBilinearRGB(a, 17, 13, 52, 8, 6, new Float32Array(144));
    assert.deepEqual(ra1, ra2);
  });
  it('validates its arguments', () => {
    const src = new Uint8Array(12 * 2);
    assert.throws(() => resizeBilinearRGB(src, 3, 2, 8, 3, 2, new Float32Array(18)), RangeError); // stride < 3w
    assert.throws(() => resizeBilinearRGB(src, 3, 3, 12, 3, 2, new Float32Array(18)), RangeError); // src too short
    assert.throws(() => resizeBilinearRGB(src, 3, 2, 12, 3, 2, new Float32Array(17)), RangeError); // out too short
    assert.throws(() => resizeBilinearRGB(src, 0, 2, 12, 3, 2, new Float32Array(18)), RangeError);
  });
});

// ---------------------------------------------------------------------------
describe('CLIP antialias parameters', () => {
  it('576x1024 -> sigma (0.786, 1.786), k (3, 7)', () => {
    const y = antialiasAxis(576);
    const x = antialiasAxis(1024);
    assertClose(y.sigma, 0.786, 5e-4);
    assertClose(x.sigma, 1.786, 5e-4);
    assert.equal(y.kernelSize, 3);
    assert.equal(x.kernelSize, 7);
  });
  it('256x512 -> sigma (0.071, 0.643), k (3, 3)', () => {
    const y = antialiasAxis(256);
    const x = antialiasAxis(512);
    assertClose(y.sigma, 0.071, 5e-4);
    assertClose(x.sigma, 0.643, 5e-4);
    assert.equal(y.kernelSize, 3);
    assert.equal(x.kernelSize, 3);
  });
  it('floors sigma at 0.001 when upscaling and bumps even sizes to odd', () => {
    assert.deepEqual(antialiasAxis(100), { sigma: 0.001, kernelSize: 3 });
    // 4 * sigma = 4 * (1120/224 - 1)/2 = 8 -> 9
    assert.equal(antialiasAxis(1120).kernelSize, 9);
    // 4 * sigma = 5.14 -> 5 (already odd)
    assert.equal(antialiasAxis(800).kernelSize, 5);
  });
  it('Gaussian taps are normalised and centred', () => {
    const k = gaussianKernel(3, 1);
    const e = Math.exp(-0.5);
    [e, 1, e].forEach((v, i) => assertClose(k[i], v / (1 + 2 * e), 1e-15));
    const k7 = gaussianKernel(7, 1.786);
    assertClose(
      k7.reduce((a, b) => a + b, 0),
      1,
      1e-15,
    );
    for (let i = 0; i < 3; i++) assert.equal(k7[i], k7[6 - i]);
    assert.ok(k7[3] > k7[2]);
    const ident = gaussianKernel(3, 0.001);
    assertClose(ident[1], 1, 1e-15);
    assertClose(ident[0], 0, 1e-15);
  });
  it('reflect index mirrors without repeating the edge', () => {
    assert.deepEqual(
      [-3, -2, -1, 0, 4, 5, 6, 7].map((i) => reflectIndex(i, 5)),
      [3, 2, 1, 0, 4, 3, 2, 1],
    );
    assert.equal(reflectIndex(-1, 1), 0);
    assert.equal(reflectIndex(2, 2), 0);
  });
  it('cubic weights: a = -0.75 values, partition of unity, first moment', () => {
    const w = new Float64Array(4);
    cubicWeights(0, w);
    assert.deepEqual(Array.from(w), [0, 1, 0, 0]);
    cubicWeights(0.5, w);
    [-0.09375, 0.59375, 0.59375, -0.09375].forEach((v, i) => assertClose(w[i], v, 1e-15));
    cubicWeights(0.25, w);
    // far(1.25) = ((a*1.25 - 5a)*1.25 + 8a)*1.25 - 4a = -0.10546875; near(0.25) = 0.87890625;
    // near(0.75) = 0.26171875; far(1.75) = -0.03515625 (a = -0.75)
    [-0.10546875, 0.87890625, 0.26171875, -0.03515625].forEach((v, i) => assertClose(w[i], v, 1e-15));
    for (const t of [0.1, 0.33, 0.5, 0.77, 0.999]) {
      cubicWeights(t, w);
      assertClose(w[0] + w[1] + w[2] + w[3], 1, 1e-14);
      // Only a = -0.5 reproduces linear functions; with a = -0.75 a ramp is sampled
      // at t - (2a + 1) t (1 - t)(1 - 2t) = t + 0.5 t (1 - t)(1 - 2t) instead of t.
      assertClose(-w[0] + w[2] + 2 * w[3], t + 0.5 * t * (1 - t) * (1 - 2 * t), 1e-13);
    }
  });
});

// ---------------------------------------------------------------------------

/** The reference's test pattern: multiples of 1/8, exact in float32. */
function pattern(h: number, w: number): Float32Array {
  const src = new Float32Array(3 * h * w);
  for (let c = 0; c < 3; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) src[(c * h + y) * w + x] = ((x * 7 + y * 13 + c * 29) % 17) / 8 - 1;
  return src;
}

/** Straightforward per-pixel version of the spec, independent of the optimised passes. */
function naiveResize(src: Float32Array, h: number, w: number, oh: number, ow: number): Float64Array {
  const ay = antialiasAxis(h, oh);
  const ax = antialiasAxis(w, ow);
  const gauss = (k: number, s: number): number[] => {
    const g = Array.from({ length: k }, (_, i) => Math.exp(-((i - (k >> 1)) ** 2) / (2 * s * s)));
    const sum = g.reduce((a, b) => a + b, 0);
    return g.map((v) => v / sum);
  };
  const gx = gauss(ax.kernelSize, ax.sigma);
  const gy = gauss(ay.kernelSize, ay.sigma);
  const refl = (i: number, n: number): number => (i < 0 ? -i : i >= n ? 2 * n - 2 - i : i);
  const out = new Float64Array(3 * oh * ow);
  const A = -0.75;
  const kern = (d: number): number => {
    const x = Math.abs(d);
    if (x <= 1) return (A + 2) * x ** 3 - (A + 3) * x ** 2 + 1;
    if (x < 2) return A * x ** 3 - 5 * A * x ** 2 + 8 * A * x - 4 * A;
    return 0;
  };
  for (let c = 0; c < 3; c++) {
    const at = (y: number, x: number): number => src[(c * h + y) * w + x];
    const bx = new Float64Array(h * w);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) bx[y * w + x] = gx.reduce((s, g, j) => s + g * at(y, refl(x + j - (gx.length >> 1), w)), 0);
    const b = new Float64Array(h * w);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) b[y * w + x] = gy.reduce((s, g, j) => s + g * bx[refl(y + j - (gy.length >> 1), h) * w + x], 0);
    // source coordinates as PyTorch computes them: float32 scale times index, rounded to float32
    const fsy = Math.fround((h - 1) / (oh - 1));
    const fsx = Math.fround((w - 1) / (ow - 1));
    for (let oy = 0; oy < oh; oy++) {
      const ry = Math.fround(fsy * oy);
      const iy = Math.floor(ry);
      for (let ox = 0; ox < ow; ox++) {
        const rx = Math.fround(fsx * ox);
        const ix = Math.floor(rx);
        let s = 0;
        for (let m = -1; m <= 2; m++) {
          for (let n = -1; n <= 2; n++) {
            const yy = Math.min(Math.max(iy + m, 0), h - 1);
            const xx = Math.min(Math.max(ix + n, 0), w - 1);
            s += kern(ry - (iy + m)) * kern(rx - (ix + n)) * b[yy * w + xx];
          }
        }
        out[(c * oh + oy) * ow + ox] = s;
      }
    }
  }
  return out;
}

describe('ClipPreprocessor', () => {
  it('matches an ONNX Runtime reference (Pad reflect + Conv + Resize cubic align_corners)', () => {
    // Generated once with onnxruntime 1.30 (CPU) from the pattern() image: per axis
    // Pad(mode=reflect) + depthwise Conv with the normalised Gaussian, then
    // Resize(mode=cubic, cubic_coeff_a=-0.75, align_corners, exclude_outside=0)
    // to 224x224. ORT maps output d to d*(in-1)/(out-1) while PyTorch uses
    // float32 ((in-1)/(out-1))*d; on this high-frequency pattern that changes
    // values by up to ~1.3e-5, hence the tolerance.
    const refs: [number, number, [number, number, number, number][]][] = [
      [
        576,
        1024,
        [
          [0, 0, 0, -0.15475333],
          [0, 0, 223, -0.083261266],
          [1, 223, 0, 0.02336403],
          [2, 223, 223, 0.12214927],
          [0, 111, 112, 0.093294002],
          [1, 57, 3, 0.031207653],
          [2, 5, 200, 0.074636914],
          [0, 100, 100, 0.051870327],
          [1, 1, 1, -0.0059521617],
          [2, 222, 17, 0.11133052],
        ],
      ],
      [
        256,
        512,
        [
          [0, 0, 0, -0.6730848],
          [0, 0, 223, -0.45191517],
          [1, 223, 0, 0.032978326],
          [2, 223, 223, 0.42308486],
          [0, 111, 112, 0.5074212],
          [1, 57, 3, -0.026929514],
          [2, 5, 200, -0.15559423],
          [0, 100, 100, 0.063331783],
          [1, 1, 1, -0.072439954],
          [2, 222, 17, 0.19506687],
        ],
      ],
      [
        64,
        96,
        [
          [0, 0, 0, -1.0],
          [0, 0, 223, -0.75],
          [1, 223, 0, 0.875],
          [2, 223, 223, 0.5],
          [0, 111, 112, -0.37913144],
          [1, 57, 3, -0.17522012],
          [2, 5, 200, -0.034404494],
          [0, 100, 100, -0.092633225],
          [1, 1, 1, 0.075705655],
          [2, 222, 17, 0.2934885],
        ],
      ],
      [
        300,
        701,
        [
          [0, 0, 0, -0.34375441],
          [0, 0, 223, 0.16057435],
          [1, 223, 0, 0.12932627],
          [2, 223, 223, 0.28557441],
          [0, 111, 112, 0.12536502],
          [1, 57, 3, 0.21415357],
          [2, 5, 200, 0.18474504],
          [0, 100, 100, 0.15242878],
          [1, 1, 1, -0.057009745],
          [2, 222, 17, 0.046698965],
        ],
      ],
    ];
    for (const [h, w, points] of refs) {
      const p = new ClipPreprocessor(h, w);
      const resized = p.resize(pattern(h, w), new Float32Array(3 * 224 * 224));
      const normalised = p.run(pattern(h, w), new Float32Array(3 * 224 * 224));
      for (const [c, y, x, v] of points) {
        const i = (c * 224 + y) * 224 + x;
        assertClose(resized[i], v, 3e-5, `${h}x${w} [${c},${y},${x}]`);
        assertClose(normalised[i], ((v + 1) / 2 - CLIP_MEAN[c]) / CLIP_STD[c], 3e-5 / 0.26 / 2, `${h}x${w} norm [${c},${y},${x}]`);
      }
    }
  });
  it('matches a naive per-pixel implementation of the spec', () => {
    for (const [h, w, oh, ow] of [
      [61, 83, 29, 37],
      [40, 30, 224, 224],
      [500, 300, 224, 224],
      [9, 250, 5, 13],
    ]) {
      const src = pattern(h, w);
      for (let i = 0; i < src.length; i++) src[i] += Math.fround(Math.sin(i) * 0.1);
      const got = new ClipPreprocessor(h, w, oh, ow).resize(src, new Float32Array(3 * oh * ow));
      const want = naiveResize(src, h, w, oh, ow);
      let maxDiff = 0;
      for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]));
      assert.ok(maxDiff < 2e-5, `${h}x${w} -> ${oh}x${ow}: max diff ${maxDiff}`);
    }
  });
  it('keeps a constant image constant, then normalises it exactly', () => {
    for (const [h, w] of [
      [576, 1024],
      [256, 512],
      [100, 150],
    ]) {
      const src = new Float32Array(3 * h * w);
      const vals = [-0.5, 0.25, 0.9];
      for (let c = 0; c < 3; c++) src.fill(vals[c], c * h * w, (c + 1) * h * w);
      const out = new ClipPreprocessor(h, w).run(src, new Float32Array(3 * 224 * 224));
      for (let c = 0; c < 3; c++) {
        const expected = ((vals[c] + 1) / 2 - CLIP_MEAN[c]) / CLIP_STD[c];
        for (let i = 0; i < 224 * 224; i++) assertClose(out[c * 224 * 224 + i], expected, 2e-6, `${h}x${w} c${c}`);
      }
    }
  });
  it('maps a linear ramp as the a = -0.75 kernel predicts, away from the reflect-padded borders', () => {
    const h = 576;
    const w = 1024;
    const f = (y: number, x: number): number => -0.9 + (1.2 * x) / (w - 1) + (0.6 * y) / (h - 1);
    const src = new Float32Array(3 * h * w);
    for (let c = 0; c < 3; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) src[(c * h + y) * w + x] = f(y, x);
    const p = new ClipPreprocessor(h, w);
    const out = p.resize(src, new Float32Array(3 * 224 * 224));
    const ry = (p.axisY.kernelSize - 1) / 2;
    const rx = (p.axisX.kernelSize - 1) / 2;
    const sy = Math.fround((h - 1) / 223);
    const sx = Math.fround((w - 1) / 223);
    // The blur keeps a ramp (symmetric kernel); bicubic with a = -0.75 samples it at
    // floor(u) + m(frac(u)), m(t) = t + 0.5 t (1 - t)(1 - 2t) (exact at integer and half-integer u).
    const warp = (u: number): number => {
      const b = Math.floor(u);
      const t = u - b;
      return b + t + 0.5 * t * (1 - t) * (1 - 2 * t);
    };
    let checked = 0;
    for (let oy = 0; oy < 224; oy++) {
      const yy = Math.fround(sy * oy);
      if (Math.floor(yy) - 1 < ry || Math.floor(yy) + 2 > h - 1 - ry) continue;
      for (let ox = 0; ox < 224; ox++) {
        const xx = Math.fround(sx * ox);
        if (Math.floor(xx) - 1 < rx || Math.floor(xx) + 2 > w - 1 - rx) continue;
        for (let c = 0; c < 3; c++) assertClose(out[(c * 224 + oy) * 224 + ox], f(warp(yy), warp(xx)), 2e-6, `[${c},${oy},${ox}]`);
        checked++;
      }
    }
    assert.ok(checked > 200 * 200, `only ${checked} interior points`);
  });
  it('does not clamp bicubic overshoot', () => {
    // A hard edge upscaled with bicubic rings past [-1, 1]; the reference keeps it.
    const h = 20;
    const w = 20;
    const src = new Float32Array(3 * h * w);
    for (let i = 0; i < src.length; i++) src[i] = i % w < 10 ? -1 : 1;
    const p = new ClipPreprocessor(h, w);
    const resized = p.resize(src, new Float32Array(3 * 224 * 224));
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of resized) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    assert.ok(lo < -1.01 && hi > 1.01, `range ${lo}..${hi}`);
    const out = p.run(src, new Float32Array(3 * 224 * 224));
    let minR = Infinity;
    for (let i = 0; i < 224 * 224; i++) minR = Math.min(minR, out[i]);
    assert.ok(minR < (0 - CLIP_MEAN[0]) / CLIP_STD[0] - 0.01);
  });
  it('writes [3, 224, 224] at the given offset into a batch buffer and nothing else', () => {
    const h = 64;
    const w = 96;
    const frame = CLIP_SIZE * CLIP_SIZE * 3;
    const batch = new Float32Array(3 * frame).fill(NaN);
    const single = new ClipPreprocessor(h, w).run(pattern(h, w), new Float32Array(frame));
    clipPreprocess(pattern(h, w), h, w, batch, frame);
    for (let i = 0; i < frame; i++) assert.ok(Number.isNaN(batch[i]) && Number.isNaN(batch[2 * frame + i]));
    assert.deepEqual(batch.subarray(frame, 2 * frame), single);
    // the source offset selects a frame from a packed [N, 3, h, w] input
    const packed = new Float32Array(2 * 3 * h * w);
    packed.set(pattern(h, w), 3 * h * w);
    const fromOffset = new ClipPreprocessor(h, w).run(packed, new Float32Array(frame), 0, 3 * h * w);
    assert.deepEqual(fromOffset, single);
  });
  it('clipNormalize applies ((x + 1)/2 - mean)/std per channel', () => {
    const buf = new Float32Array([9, -1, 1, 0, 0.5, 9]);
    clipNormalize(buf, 1, 1);
    assert.equal(buf[0], 9);
    assert.equal(buf[4], 0.5);
    assertClose(buf[1], (0 - CLIP_MEAN[0]) / CLIP_STD[0], 1e-6);
    assertClose(buf[2], (1 - CLIP_MEAN[1]) / CLIP_STD[1], 1e-6);
    assertClose(buf[3], (0.5 - CLIP_MEAN[2]) / CLIP_STD[2], 1e-6);
  });
  it('validates buffer sizes', () => {
    const p = new ClipPreprocessor(10, 10);
    assert.throws(() => p.run(new Float32Array(299), new Float32Array(3 * 224 * 224)), RangeError);
    assert.throws(() => p.run(new Float32Array(300), new Float32Array(3 * 224 * 224), 1), RangeError);
    assert.throws(() => new ClipPreprocessor(0, 10), RangeError);
  });
});

describe('resizeBilinearPlane (offline output back to the input size)', () => {
  it('2x2 -> 4x4 with half-pixel centres and edge clamping (hand-computed)', () => {
    const out = resizeBilinearPlane(Float32Array.of(0, 1, 2, 3), 2, 2, 4, 4, new Float32Array(16));
    // Along x the taps sit at -0.25 (clamped), 0.25, 0.75, 1.25 (clamped): 0, .25, .75, 1 of the step.
    const row = (a: number, b: number) => [a, a + 0.25 * (b - a), a + 0.75 * (b - a), b];
    const top = row(0, 1);
    const bottom = row(2, 3);
    const expected = [0, 0.25, 0.75, 1].flatMap((t) => top.map((v, i) => v + t * (bottom[i] - v)));
    assert.deepEqual(Array.from(out), expected);
  });

  it('same size copies; values stay within the source range; 960x540 from 128x128', () => {
    const src = Float32Array.from({ length: 128 * 128 }, (_, i) => (Math.sin(i * 0.37) + 1) / 2);
    assert.deepEqual(resizeBilinearPlane(src, 128, 128, 128, 128, new Float32Array(src.length)), src);
    const out = resizeBilinearPlane(src, 128, 128, 960, 540, new Float32Array(960 * 540));
    let min = Infinity;
    let max = -Infinity;
    for (const v of out) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    assert.ok(min >= Math.min(...src) && max <= Math.max(...src), `${min}..${max}`);
    assert.throws(() => resizeBilinearPlane(src, 128, 128, 960, 540, new Float32Array(10)), /output plane too short/);
  });
});
