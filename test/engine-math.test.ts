import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { roundHalfEven } from '../src/inference/math/round-half-even.js';
import { DATASET_RESOLUTIONS, modelResolution, presetResolution } from '../src/inference/math/resolution.js';
import { initNoiseSigma, karrasSigmas, toFloat32Sigmas } from '../src/inference/math/sigmas.js';
import { cIn, cNoise, cOut, cSkip } from '../src/inference/math/edm.js';
import { applyGuidance, EulerVSampler } from '../src/inference/math/euler-sampler.js';
import { effectiveOverlap, segmentLayout, validateWindow, type Segment } from '../src/inference/math/segments.js';
import { noiseFrameIndex, noiseFrameIndexAbsolute } from '../src/inference/math/noise-schedule.js';
import { blendFrame, stitchOverlap, torchLinspace01 } from '../src/inference/math/stitching.js';
import { decodeChunks, finalChunkEnd, readyChunks } from '../src/inference/math/decode-chunks.js';
import { anchoredOverlapFrame, noiseFrame } from '../src/inference/math/overlap-init.js';
import { Prng, PrngStream } from '../src/inference/math/prng.js';

function assertClose(actual: number, expected: number, tol: number, msg = ''): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${msg} expected ${expected} +/- ${tol}, got ${actual}`);
}

function assertRel(actual: number, expected: number, rel: number, msg = ''): void {
  const tol = rel * Math.max(Math.abs(expected), 1e-30);
  assertClose(actual, expected, tol, msg);
}

// ---------------------------------------------------------------------------
describe('roundHalfEven (Python round)', () => {
  it('rounds ties to even', () => {
    assert.equal(roundHalfEven(0.5), 0);
    assert.equal(roundHalfEven(1.5), 2);
    assert.equal(roundHalfEven(2.5), 2);
    assert.equal(roundHalfEven(3.5), 4);
    assert.equal(roundHalfEven(4.5), 4);
    assert.equal(roundHalfEven(5.5), 6);
    assert.equal(roundHalfEven(-1.5), -2);
    assert.equal(roundHalfEven(-2.5), -2);
  });
  it('rounds non-ties to nearest', () => {
    assert.equal(roundHalfEven(2.4999999999999996), 2);
    assert.equal(roundHalfEven(2.5000000000000004), 3);
    assert.equal(roundHalfEven(0.49999999999999994), 0);
    assert.equal(roundHalfEven(4.496), 4);
    assert.equal(roundHalfEven(-2.6), -3);
    assert.equal(roundHalfEven(7), 7);
    assert.equal(roundHalfEven(2 ** 53), 2 ** 53);
  });
  it('passes non-finite values through', () => {
    assert.ok(Number.isNaN(roundHalfEven(NaN)));
    assert.equal(roundHalfEven(Infinity), Infinity);
  });
});

// ---------------------------------------------------------------------------
describe('modelResolution (spec §1)', () => {
  // Helper in the spec's W x H notation; the function takes (h0, w0) and returns {height, width}.
  const wxh = (w0: number, h0: number, maxRes: number): string => {
    const r = modelResolution(h0, w0, maxRes);
    return `${r.width}x${r.height}`;
  };

  it("uses banker's rounding: 1024x576 @512 -> 512x256 (Math.round would give 320)", () => {
    assert.deepEqual(modelResolution(576, 1024, 512), { height: 256, width: 512 });
  });
  it('matches the spec examples at max_res 1024', () => {
    assert.equal(wxh(1920, 1080, 1024), '1024x576');
    assert.equal(wxh(1280, 720, 1024), '1024x576');
    assert.equal(wxh(854, 480, 1024), '832x512');
    assert.equal(wxh(1024, 576, 1024), '1024x576');
  });
  it('maps all the examples to 512x256 at max_res 512', () => {
    for (const [w, h] of [
      [1920, 1080],
      [1280, 720],
      [854, 480],
      [1024, 576],
    ]) {
      assert.equal(wxh(w, h, 512), '512x256', `${w}x${h}`);
    }
  });
  it('handles 1920x1036 (hand-checked; see note)', () => {
    // Snapped: H = round(16.1875)*64 = 1024, W = 1920.
    // @2048 no rescale: 1920x1024.
    assert.equal(wxh(1920, 1036, 2048), '1920x1024');
    // @1024: s = 1024/1920; H = round(1036*s/64 = 8.633) = 9 -> 576, W = round(16) -> 1024.
    // So the spec's "1920x1036 becomes 1856x1024" does NOT happen at max_res 1024;
    // 1856x1024 needs max_res in (1824, 1888), e.g. 1856: W = round(29) = 29 -> 1856,
    // H = round(1036*1856/1920/64 = 15.65) = 16 -> 1024.
    assert.equal(wxh(1920, 1036, 1024), '1024x576');
    assert.equal(wxh(1920, 1036, 1856), '1856x1024');
  });
  it('rescales from the original dims, not the snapped ones', () => {
    // 1063x352: snapped 1088x384 > 1024. From the original dims: s = 1024/1063,
    // H = round(352 s / 64 = 5.30) = 5 -> 320. Rescaling the snapped 384 by
    // 1024/1088 would give round(5.65) = 6 -> 384.
    assert.equal(wxh(1063, 352, 1024), '1024x320');
  });
  it('keeps sizes that already fit', () => {
    assert.equal(wxh(640, 480, 1024), '640x512');
    assert.equal(wxh(64, 64, 1024), '64x64');
  });
  it('never returns a zero side and rejects bad input', () => {
    assert.deepEqual(modelResolution(10, 20, 1024), { height: 64, width: 64 });
    assert.throws(() => modelResolution(0, 100, 512), RangeError);
    assert.throws(() => modelResolution(100, 100, -1), RangeError);
  });
});

describe('dataset presets', () => {
  it('has the five reference presets (H x W)', () => {
    assert.deepEqual(presetResolution('sintel'), { height: 448, width: 1024 });
    assert.deepEqual(presetResolution('scannet'), { height: 640, width: 832 });
    assert.deepEqual(presetResolution('KITTI'), { height: 384, width: 1280 });
    assert.deepEqual(presetResolution('bonn'), { height: 512, width: 640 });
    assert.deepEqual(presetResolution('NYUv2'), { height: 448, width: 640 });
    assert.equal(Object.keys(DATASET_RESOLUTIONS).length, 5);
  });
  it('throws a clear error listing the valid names', () => {
    assert.throws(
      () => presetResolution('kitti'),
      (e: Error) => /kitti/.test(e.message) && /sintel, scannet, KITTI, bonn, NYUv2/.test(e.message),
    );
    assert.throws(() => presetResolution('toString'), RangeError);
  });
});

// ---------------------------------------------------------------------------
describe('karrasSigmas (spec §3)', () => {
  const check = (steps: number, expected: number[], rel = 1e-5): void => {
    const s = karrasSigmas(steps);
    assert.ok(s instanceof Float64Array);
    assert.equal(s.length, steps + 1);
    expected.forEach((v, i) => (v === 0 ? assert.equal(s[i], 0) : assertRel(Math.fround(s[i]), v, rel, `sigma[${i}]`)));
  };
  it('1 step -> [700, 0]', () => {
    // (700^(1/7))^7 is 700 only to float64 rounding; the float32 schedule is exact.
    assert.deepEqual(Array.from(toFloat32Sigmas(karrasSigmas(1))), [700, 0]);
    assertRel(karrasSigmas(1)[0], 700, 1e-14);
  });
  it('3 steps', () => check(3, [700, 15.58997, 0.002, 0]));
  it('4 steps', () => check(4, [700, 70.54084, 2.26912, 0.002, 0]));
  it('5 steps', () => check(5, [700, 134.85444, 15.58997, 0.67815, 0.002, 0]));
  it('25 steps (to the printed digits)', () => {
    const printed = [
      '700.0',
      '545.729',
      '421.569',
      '322.454',
      '244.023',
      '182.547',
      '134.854',
      '98.267',
      '70.541',
      '49.810',
      '34.537',
      '23.468',
      '15.590',
      '10.097',
      '6.354',
      '3.870',
      '2.269',
      '1.273',
      '0.678',
      '0.339',
      '0.157',
      '0.0664',
      '0.0248',
      '0.00788',
      '0.002',
      '0',
    ];
    const s = karrasSigmas(25);
    assert.equal(s.length, 26);
    printed.forEach((p, i) => {
      const decimals = p.includes('.') ? p.split('.')[1].length : 0;
      assertClose(s[i], Number(p), 0.5 * 10 ** -decimals + 1e-12, `sigma[${i}]`);
    });
    // endpoints are the configured extremes
    assert.equal(Math.fround(s[0]), 700);
    assertRel(s[24], 0.002, 1e-12);
  });
  it('is strictly decreasing and honours custom ranges', () => {
    const s = karrasSigmas(10, 0.01, 10, 3);
    for (let i = 1; i < 10; i++) assert.ok(s[i] < s[i - 1]);
    assertRel(s[0], 10, 1e-12);
    assertRel(s[9], 0.01, 1e-12);
  });
  it('float32 view rounds each value', () => {
    const f = toFloat32Sigmas(karrasSigmas(5));
    assert.ok(f instanceof Float32Array);
    assert.equal(f[1], Math.fround(karrasSigmas(5)[1]));
  });
  it('rejects bad step counts', () => {
    assert.throws(() => karrasSigmas(0), RangeError);
    assert.throws(() => karrasSigmas(2.5), RangeError);
  });
  it('initNoiseSigma = sqrt(sigmaMax^2 + 1)', () => {
    assertClose(initNoiseSigma(700), 700.00071428535, 1e-9);
    assertClose(Math.fround(initNoiseSigma()), 700.00073, 1e-5);
    assert.equal(initNoiseSigma(0), 1);
  });
});

// ---------------------------------------------------------------------------
describe('EDM v-prediction preconditioning', () => {
  it('c_noise at the 5-step sigmas matches the spec timesteps', () => {
    const s = toFloat32Sigmas(karrasSigmas(5));
    const expected = [1.63777, 1.22605, 0.68666, -0.0971, -1.55365];
    expected.forEach((v, i) => assertClose(cNoise(s[i]), v, 1e-5, `t[${i}]`));
  });
  it('has the sigma_data = 1 closed forms', () => {
    // sigma = 0.75: sqrt(sigma^2 + 1) = 1.25
    assertClose(cIn(0.75), 0.8, 1e-15);
    assertClose(cSkip(0.75), 0.64, 1e-15);
    assertClose(cOut(0.75), -0.6, 1e-15);
    assertClose(cNoise(Math.E), 0.25, 1e-15);
    // at sigma = 0 the denoiser is the identity
    assert.equal(cSkip(0), 1);
    assert.equal(cOut(0), -0);
  });
  it('satisfies c_skip = c_in^2 and c_skip + c_out^2 = 1', () => {
    for (const s of [0.002, 0.5, 3, 700]) {
      assertRel(cSkip(s), cIn(s) ** 2, 1e-12);
      assertClose(cSkip(s) + cOut(s) ** 2, 1, 1e-12);
    }
  });
});

// ---------------------------------------------------------------------------
describe('EulerVSampler', () => {
  it('exposes float32 sigmas and timesteps for 5 steps', () => {
    const s = new EulerVSampler({ steps: 5 });
    assert.ok(s.sigmas instanceof Float32Array && s.timesteps instanceof Float32Array);
    assert.equal(s.sigmas.length, 6);
    assert.equal(s.timesteps.length, 5);
    [1.63777, 1.22605, 0.68666, -0.0971, -1.55365].forEach((v, i) => assertClose(s.timesteps[i], v, 1e-5));
    assertClose(s.initNoiseSigma, 700.00073, 1e-5);
    assert.equal(s.initNoiseSigma, Math.fround(s.initNoiseSigma));
  });
  it('3 steps: timesteps 1.63777, 0.686657, -1.553652', () => {
    const s = new EulerVSampler({ steps: 3 });
    [1.63777, 0.686657, -1.553652].forEach((v, i) => assertClose(s.timesteps[i], v, 1e-6));
  });

  // rho = 1 and steps = 2 give exact sigmas [0.75, 0.25, 0] for hand computation.
  const tiny = (): EulerVSampler => new EulerVSampler({ steps: 2, sigmaMin: 0.25, sigmaMax: 0.75, rho: 1 });

  it('scaleInput multiplies by c_in', () => {
    const s = tiny();
    assert.deepEqual(Array.from(s.sigmas), [0.75, 0.25, 0]);
    const out = s.scaleInput(new Float32Array([1, -2, 0.5, 0]), 0, new Float32Array(4));
    assert.deepEqual(Array.from(out), [0.8, -1.6, 0.4, 0].map(Math.fround));
  });
  it('denoised = c_skip x + c_out F', () => {
    const s = tiny();
    const x = new Float32Array([1, -2, 0.5, 0]);
    const f = new Float32Array([0.5, 1, -1, 2]);
    // 0.64 x - 0.6 F
    const d = s.denoised(x, f, 0, new Float32Array(4));
    [0.34, -1.88, 0.92, -1.2].forEach((v, k) => assertClose(d[k], v, 1e-6));
  });
  it('an intermediate Euler step: x + (0.25 - 0.75)(x - D)/0.75 = x/3 + 2D/3', () => {
    const s = tiny();
    const x = new Float32Array([1, -2, 0.5, 0]);
    const f = new Float32Array([0.5, 1, -1, 2]);
    const out = s.step(x, f, 0, new Float32Array(4));
    [0.56, -1.92, 0.78, -0.8].forEach((v, k) => assertClose(out[k], v, 1e-6));
  });
  it('the final step returns D exactly', () => {
    const s = tiny();
    const x = new Float32Array([1, -2, 0.5, 0, 123.456]);
    const f = new Float32Array([0.5, 1, -1, 2, -7.25]);
    const d = s.denoised(x, f, 1, new Float32Array(5));
    const out = s.step(x, f, 1, new Float32Array(5));
    assert.deepEqual(out, d);
    // sigma = 0.25: c_skip = 16/17, c_out = -1/sqrt(17)
    for (let k = 0; k < 5; k++) assertClose(out[k], (16 / 17) * x[k] - f[k] / Math.sqrt(17), 1e-5);
    // With a huge last sigma, c_skip ~ 1e-10 and D << x: computing x - (x - D)
    // would lose D's low bits, so this only passes if D is returned directly.
    const wide = new EulerVSampler({ steps: 1, sigmaMin: 1, sigmaMax: 1e5, rho: 1 });
    const xs = new Float32Array([1, 3, 7.5, -2.25, 1000]);
    const zero = new Float32Array(xs.length);
    const dWide = wide.step(xs, zero, 0, new Float32Array(xs.length));
    xs.forEach((v, k) => assert.equal(dWide[k], Math.fround(v / (1e10 + 1)), `wide[${k}]`));
    // the same holds for the real schedule
    const real = new EulerVSampler({ steps: 5 });
    assert.deepEqual(real.step(x, f, 4, new Float32Array(5)), real.denoised(x, f, 4, new Float32Array(5)));
  });
  it('moves x toward a known x0 by sigma_{i+1}/sigma_i', () => {
    const s = new EulerVSampler({ steps: 5 });
    const x0 = [0.3, -1.2, 2.5, 0];
    const x = new Float32Array([500, -300, 12, 700]);
    for (let i = 0; i < 4; i++) {
      const sigma = s.sigmas[i];
      // Choose F so that D = x0: F = (x0 - c_skip x) / c_out.
      const f = new Float32Array(x.map((xk, k) => (x0[k] - cSkip(sigma) * xk) / cOut(sigma)));
      const d = s.denoised(x, f, i, new Float32Array(4));
      d.forEach((v, k) => assertClose(v, x0[k], 1e-3, `D step ${i}`));
      const ratio = s.sigmas[i + 1] / sigma;
      const next = s.step(x, f, i, new Float32Array(4));
      next.forEach((v, k) => assertClose(v, x0[k] + ratio * (x[k] - x0[k]), 2e-3 + 1e-5 * Math.abs(x[k]), `step ${i}`));
      // every component gets closer to x0 (or stays there)
      next.forEach((v, k) => assert.ok(Math.abs(v - x0[k]) <= Math.abs(x[k] - x0[k]) + 1e-3));
      x.set(next);
    }
  });
  it('works in place', () => {
    const s = tiny();
    const x = new Float32Array([1, -2, 0.5, 0]);
    const f = new Float32Array([0.5, 1, -1, 2]);
    const expected = s.step(x, f, 0, new Float32Array(4));
    s.step(x, f, 0, x);
    assert.deepEqual(x, expected);
  });
  it('rejects bad step indices and mismatched buffers', () => {
    const s = tiny();
    const a = new Float32Array(3);
    assert.throws(() => s.step(a, a, 2, a), RangeError);
    assert.throws(() => s.scaleInput(a, -1, a), RangeError);
    assert.throws(() => s.denoised(a, new Float32Array(2), 0, a), RangeError);
  });
  it('applyGuidance = uncond + g (cond - uncond)', () => {
    const cond = new Float32Array([1, 2, -3]);
    const uncond = new Float32Array([0.5, -1, -3]);
    const out = applyGuidance(cond, uncond, 1.2, new Float32Array(3));
    [1.1, 2.6, -3].forEach((v, k) => assertClose(out[k], v, 1e-6));
    assert.deepEqual(applyGuidance(cond, uncond, 1, new Float32Array(3)), cond);
    assert.deepEqual(tiny().applyGuidance(cond, uncond, 0, new Float32Array(3)), uncond);
    assert.throws(() => applyGuidance(cond, new Float32Array(2), 1, new Float32Array(3)), RangeError);
  });
});

// ---------------------------------------------------------------------------
describe('segmentLayout (spec §4)', () => {
  const W = 110;
  const O = 25;
  const pairs = (segs: Segment[]): [number, number][] => segs.map((s) => [s.start, s.end]);

  it('single pass when the video fits in one window', () => {
    assert.deepEqual(pairs(segmentLayout(50, W, O)), [[0, 50]]);
    assert.deepEqual(pairs(segmentLayout(110, W, O)), [[0, 110]]);
    assert.equal(effectiveOverlap(110, W, O), 0);
    assert.equal(effectiveOverlap(111, W, O), O);
    // overlap 0 is fine when no stitching is needed
    assert.deepEqual(pairs(segmentLayout(30, W, 0)), [[0, 30]]);
    assert.deepEqual(segmentLayout(0, W, O), []);
  });
  it('N = 111 -> [0,110), [85,111)', () => {
    assert.deepEqual(pairs(segmentLayout(111, W, O)), [
      [0, 110],
      [85, 111],
    ]);
  });
  it('N = 195 / 300 / 1000 give 2 / 4 / 12 segments', () => {
    assert.deepEqual(pairs(segmentLayout(195, W, O)), [
      [0, 110],
      [85, 195],
    ]);
    const s300 = segmentLayout(300, W, O);
    assert.deepEqual(pairs(s300), [
      [0, 110],
      [85, 195],
      [170, 280],
      [255, 300],
    ]);
    assert.equal(segmentLayout(1000, W, O).length, 12);
    assert.deepEqual(segmentLayout(1000, W, O).at(-1), { start: 935, end: 1000 });
  });
  it('small window with overlap larger than the stride (W=8, O=6)', () => {
    assert.deepEqual(pairs(segmentLayout(20, 8, 6)), [
      [0, 8],
      [2, 10],
      [4, 12],
      [6, 14],
      [8, 16],
      [10, 18],
      [12, 20],
    ]);
    assert.deepEqual(pairs(segmentLayout(9, 8, 6)), [
      [0, 8],
      [2, 9],
    ]);
  });
  it('invariants over many (N, W, O)', () => {
    for (let w = 1; w <= 12; w++) {
      for (let o = 1; o < w; o++) {
        for (let n = w + 1; n <= 60; n++) {
          const segs = segmentLayout(n, w, o);
          const tag = `n=${n} w=${w} o=${o}`;
          assert.equal(segs.length, Math.ceil((n - o) / (w - o)), tag);
          assert.equal(segs[0].start, 0, tag);
          assert.equal(segs.at(-1)!.end, n, tag);
          assert.ok(segs.at(-1)!.end - segs.at(-1)!.start >= o + 1, `${tag}: last segment too short`);
          segs.forEach((s, k) => {
            assert.ok(s.end - s.start <= w, tag);
            if (k < segs.length - 1) assert.equal(s.end - s.start, w, `${tag}: only the last may be short`);
            if (k > 0) assert.equal(segs[k - 1].end - s.start, o, `${tag}: overlap`);
          });
        }
      }
    }
    // W=110, O=25 for every N up to 1200
    for (let n = 111; n <= 1200; n++) {
      const segs = segmentLayout(n, W, O);
      assert.ok(segs.at(-1)!.end - segs.at(-1)!.start >= O + 1);
      assert.equal(segs.at(-1)!.end, n);
    }
  });
});

describe('validateWindow', () => {
  it('accepts valid settings', () => {
    validateWindow(110, 25);
    validateWindow(1, 0);
    validateWindow(8, 7, 100);
    validateWindow(110, 0, 110);
  });
  it('rejects bad windows', () => {
    assert.throws(() => validateWindow(0, 0), /window must be an integer in 1\.\.110/);
    assert.throws(() => validateWindow(111, 25), /window must be an integer in 1\.\.110/);
    assert.throws(() => validateWindow(10.5, 2), /window/);
  });
  it('rejects bad overlaps', () => {
    assert.throws(() => validateWindow(110, -1), /overlap/);
    assert.throws(() => validateWindow(110, 110), /overlap/);
    assert.throws(() => validateWindow(110, 2.5), /overlap/);
    assert.throws(() => validateWindow(110, 0, 111), /overlap must be >= 1/);
    assert.throws(() => segmentLayout(200, 110, 0), /overlap must be >= 1/);
  });
});

// ---------------------------------------------------------------------------
describe('noise bookkeeping', () => {
  /** Direct simulation of the reference: use Z[:L], then Z := concat(Z[-O:], Z[:S]). Returns, per window, Z0 indices. */
  function simulate(n: number, w: number, o: number): number[][] {
    const segs = segmentLayout(n, w, o);
    const effW = n <= w ? n : w;
    const effO = effectiveOverlap(n, w, o);
    let z = Array.from({ length: effW }, (_, i) => i);
    return segs.map((s) => {
      const used = z.slice(0, s.end - s.start);
      z = [...z.slice(effW - effO), ...z.slice(0, effW - effO)];
      return used;
    });
  }

  it('a hand-checked case: W=4, O=1, window 1 is Z0 rolled right by 1', () => {
    assert.deepEqual(simulate(7, 4, 1), [
      [0, 1, 2, 3],
      [3, 0, 1, 2],
    ]);
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => noiseFrameIndex(1, i, 4, 1)),
      [3, 0, 1, 2],
    );
    assert.equal(noiseFrameIndex(2, 0, 4, 1), 2);
  });
  it('matches the rotation simulation and shares noise across overlaps', () => {
    for (const w of [1, 2, 3, 5, 8, 16, 110]) {
      for (const o of [0, 1, 2, 4, 6, 25, 109]) {
        if (o >= w) continue;
        for (const n of [1, 3, w, w + 1, 2 * w + 3, 5 * w + 7, 300]) {
          if (n > w && o === 0) continue;
          const sim = simulate(n, w, o);
          const segs = segmentLayout(n, w, o);
          const effW = n <= w ? n : w;
          const effO = effectiveOverlap(n, w, o);
          const byFrame = new Map<number, number>();
          segs.forEach((s, k) => {
            for (let i = 0; i < s.end - s.start; i++) {
              const idx = noiseFrameIndex(k, i, effW, effO);
              const tag = `n=${n} w=${w} o=${o} k=${k} i=${i}`;
              assert.equal(idx, sim[k][i], tag);
              const a = s.start + i;
              assert.equal(noiseFrameIndexAbsolute(a, effW), idx, tag);
              const prev = byFrame.get(a);
              if (prev !== undefined) assert.equal(idx, prev, `${tag}: overlap frame got different noise`);
              byFrame.set(a, idx);
            }
          });
          assert.equal(byFrame.size, n);
        }
      }
    }
  });
});

// ---------------------------------------------------------------------------
describe('overlap initialisation (spec §4, §11)', () => {
  const sampler = new EulerVSampler({ steps: 3 });
  const initSigma = sampler.initNoiseSigma;
  const sigma0 = sampler.sigmas[0];
  it("uses the spec's constants: init_noise_sigma 700.00073, sigmas[0] 700", () => {
    assertClose(initSigma, 700.000714, 1e-4);
    assert.equal(sigma0, 700);
  });
  it('a frame outside the overlap starts as unit noise * init_noise_sigma', () => {
    const unit = new Float32Array([1, -0.5, 0, 2]);
    const out = noiseFrame(unit, initSigma, new Float32Array(4));
    assert.deepEqual(
      Array.from(out),
      Array.from(unit, (u) => Math.fround(u * initSigma)),
    );
    assertClose(out[0], 700.00073, 1e-4);
  });
  it('an overlap frame is prev + 700 * unit (sigmas[0], not init_noise_sigma), rounded op by op', () => {
    const f = Math.fround;
    const prng = new Prng(3, 5);
    const unit = prng.fillNormal(new Float32Array(2048));
    const prev = prng.fillNormal(new Float32Array(2048));
    const out = anchoredOverlapFrame(prev, unit, initSigma, sigma0, new Float32Array(2048));
    for (let j = 0; j < out.length; j++) {
      assert.equal(out[j], f(prev[j] + f(f(f(unit[j] * initSigma) / initSigma) * sigma0)));
      assertClose(out[j], prev[j] + 700 * unit[j], 2e-3);
    }
    // 700.00073 instead of 700 would be off by about 7e-4 per unit of noise.
    const one = anchoredOverlapFrame(new Float32Array([0.25]), new Float32Array([1]), initSigma, sigma0, new Float32Array(1));
    assertClose(one[0], 700.25, 1e-4);
    assert.throws(() => anchoredOverlapFrame(prev, unit.subarray(1), initSigma, sigma0, new Float32Array(2048)), RangeError);
  });
});

// ---------------------------------------------------------------------------
describe('stitching', () => {
  it("torchLinspace01(4) is bit-exact torch (0.6666666, not numpy's 0.6666667)", () => {
    const w = torchLinspace01(4);
    assert.ok(w instanceof Float32Array);
    assert.deepEqual(Array.from(w), [0, Math.fround(1 / 3), 0.6666666269302368, 1]);
    assert.notEqual(w[2], Math.fround(2 / 3));
  });
  it('torchLinspace01(25) endpoints and halves', () => {
    const w = torchLinspace01(25);
    assert.equal(w.length, 25);
    assert.equal(w[0], 0);
    assert.equal(w[24], 1);
    assert.equal(w[1], Math.fround(1 / 24));
    assert.equal(w[11], Math.fround(Math.fround(1 / 24) * 11)); // lower half: i * step
    assert.equal(w[12], 0.5); // upper half: 1 - 12 * step
    assert.equal(w[23], Math.fround(1 - Math.fround(1 / 24))); // 0.9583333
    for (let i = 1; i < 25; i++) assert.ok(w[i] > w[i - 1]);
  });
  it('torchLinspace01 degenerate sizes', () => {
    assert.deepEqual(Array.from(torchLinspace01(1)), [0]);
    assert.deepEqual(Array.from(torchLinspace01(2)), [0, 1]);
    assert.equal(torchLinspace01(0).length, 0);
  });
  it('blendFrame = w cur + (1 - w) prev', () => {
    const prev = new Float32Array([1, 2, 3]);
    const cur = new Float32Array([5, 6, 7]);
    assert.deepEqual(Array.from(blendFrame(prev, cur, 0.25, new Float32Array(3))), [2, 3, 4]);
    assert.deepEqual(blendFrame(prev, cur, 0, new Float32Array(3)), prev);
    assert.deepEqual(blendFrame(prev, cur, 1, new Float32Array(3)), cur);
  });
  it('blendFrame rounds every op to float32 like torch', () => {
    const w = torchLinspace01(4)[1];
    const prng = new Prng(7, 99);
    const prev = prng.fillNormal(new Float32Array(4096));
    const cur = prng.fillNormal(new Float32Array(4096));
    const out = blendFrame(prev, cur, w, new Float32Array(4096));
    const f = Math.fround;
    let differsFromFloat64 = 0;
    for (let k = 0; k < out.length; k++) {
      const exact32 = f(f(w * cur[k]) + f(f(1 - w) * prev[k]));
      assert.equal(out[k], exact32);
      if (f(w * cur[k] + (1 - w) * prev[k]) !== exact32) differsFromFloat64++;
    }
    // the op-by-op rounding is observable, so this test would catch a float64 implementation
    assert.ok(differsFromFloat64 > 0);
  });
  it('stitchOverlap: first frame all previous, last frame all current', () => {
    const o = 4;
    const prev = Array.from({ length: o }, (_, j) => new Float32Array([10 + j, -1]));
    const cur = Array.from({ length: o }, (_, j) => new Float32Array([20 + j, 1]));
    const out = Array.from({ length: o }, () => new Float32Array(2));
    stitchOverlap(prev, cur, torchLinspace01(o), out);
    assert.deepEqual(out[0], prev[0]);
    assert.deepEqual(out[3], cur[3]);
    assertClose(out[1][0], (1 / 3) * 21 + (2 / 3) * 11, 1e-5);
    assertClose(out[2][1], (2 / 3) * 1 + (1 / 3) * -1, 1e-6);
    assert.throws(() => stitchOverlap(prev, cur.slice(1), torchLinspace01(o), out), RangeError);
  });
});

// ---------------------------------------------------------------------------
describe('decode chunks', () => {
  it('38 frames -> 8,8,8,8,6 aligned to global indices', () => {
    const c = decodeChunks(38);
    assert.deepEqual(
      c.map((x) => x.end - x.start),
      [8, 8, 8, 8, 6],
    );
    assert.deepEqual(
      c.map((x) => x.start),
      [0, 8, 16, 24, 32],
    );
  });
  it('edge cases', () => {
    assert.deepEqual(decodeChunks(0), []);
    assert.deepEqual(decodeChunks(16), [
      { start: 0, end: 8 },
      { start: 8, end: 16 },
    ]);
    assert.deepEqual(decodeChunks(5), [{ start: 0, end: 5 }]);
    assert.deepEqual(decodeChunks(7, 3), [
      { start: 0, end: 3 },
      { start: 3, end: 6 },
      { start: 6, end: 7 },
    ]);
    assert.throws(() => decodeChunks(10, 0), RangeError);
  });
  it('readyChunks: full chunks while streaming, the tail once the video ended', () => {
    assert.deepEqual(readyChunks(0, 14, false), [{ start: 0, end: 8 }]);
    assert.deepEqual(readyChunks(8, 14, false), []);
    assert.deepEqual(readyChunks(8, 14, true), [{ start: 8, end: 14 }]);
    assert.deepEqual(readyChunks(8, 40, false), [
      { start: 8, end: 16 },
      { start: 16, end: 24 },
      { start: 24, end: 32 },
      { start: 32, end: 40 },
    ]);
    assert.deepEqual(readyChunks(16, 16, true), []);
    assert.deepEqual(readyChunks(0, 38, true), decodeChunks(38));
    assert.throws(() => readyChunks(3, 16, false), RangeError);
  });
  it('finalChunkEnd = largest multiple of 8 <= finalizedUpTo', () => {
    assert.deepEqual(
      [0, 1, 7, 8, 9, 37, 38, 40, 85].map((v) => finalChunkEnd(v)),
      [0, 0, 0, 8, 8, 32, 32, 40, 80],
    );
    assert.equal(finalChunkEnd(10, 4), 8);
    assert.throws(() => finalChunkEnd(-1), RangeError);
  });
});

// ---------------------------------------------------------------------------
describe('Prng', () => {
  it('same seed and stream -> identical arrays', () => {
    const a = new Prng(42, PrngStream.LatentNoise).fillNormal(new Float32Array(1000));
    const b = new Prng(42, PrngStream.LatentNoise).fillNormal(new Float32Array(1000));
    assert.deepEqual(a, b);
  });
  it('different seeds and different streams differ', () => {
    const base = new Prng(42, PrngStream.PixelNoise).fillNormal(new Float32Array(64));
    const otherStream = new Prng(42, PrngStream.LatentNoise).fillNormal(new Float32Array(64));
    const otherSeed = new Prng(43, PrngStream.PixelNoise).fillNormal(new Float32Array(64));
    const bigSeed = new Prng(2 ** 32 + 42, PrngStream.PixelNoise).fillNormal(new Float32Array(64));
    for (const other of [otherStream, otherSeed, bigSeed]) {
      let same = 0;
      for (let i = 0; i < 64; i++) if (other[i] === base[i]) same++;
      assert.equal(same, 0);
    }
    assert.notEqual(new Prng(0).nextUint32(), new Prng(0, 1).nextUint32());
  });
  it('streams are uncorrelated', () => {
    const n = 200_000;
    const a = new Prng(1, PrngStream.PixelNoise).fillNormal(new Float32Array(n));
    const b = new Prng(1, PrngStream.LatentNoise).fillNormal(new Float32Array(n));
    let s = 0;
    for (let i = 0; i < n; i++) s += a[i] * b[i];
    assert.ok(Math.abs(s / n) < 0.01, `correlation ${s / n}`);
  });
  it('filling in pieces equals filling at once (odd lengths keep the spare)', () => {
    const whole = new Prng(5).fillNormal(new Float32Array(20));
    const p = new Prng(5);
    const parts = [3, 1, 7, 9].map((len) => p.fillNormal(new Float32Array(len)));
    assert.deepEqual(Float32Array.from(parts.flatMap((x) => Array.from(x))), whole);
  });
  it('N(0, 1) moments over 1e6 samples, finite values', () => {
    const n = 1_000_000;
    const x = new Prng(42, PrngStream.LatentNoise).fillNormal(new Float32Array(n));
    let sum = 0;
    let sq = 0;
    let beyond3 = 0;
    for (let i = 0; i < n; i++) {
      assert.ok(Number.isFinite(x[i]));
      sum += x[i];
      sq += x[i] * x[i];
      if (Math.abs(x[i]) > 3) beyond3++;
    }
    const mean = sum / n;
    const variance = sq / n - mean * mean;
    assert.ok(Math.abs(mean) < 0.01, `mean ${mean}`);
    assert.ok(Math.abs(variance - 1) < 0.01, `variance ${variance}`);
    // Gaussian tails: P(|z| > 3) = 0.0027
    assertClose(beyond3 / n, 0.0027, 0.0003, 'tail mass');
  });
  it('scale multiplies the samples', () => {
    const a = new Prng(9).fillNormal(new Float32Array(10));
    const b = new Prng(9).fillNormal(new Float32Array(10), 0.02);
    for (let i = 0; i < 10; i++) assertRel(b[i], a[i] * 0.02, 1e-6);
  });
  it('uniforms stay in the open unit interval', () => {
    const p = new Prng(123);
    for (let i = 0; i < 100_000; i++) {
      const u = p.nextOpenUnit();
      assert.ok(u > 0 && u < 1);
    }
  });
  it('rejects invalid seeds and streams', () => {
    assert.throws(() => new Prng(-1), RangeError);
    assert.throws(() => new Prng(1.5), RangeError);
    assert.throws(() => new Prng(2 ** 53), RangeError);
    assert.throws(() => new Prng(1, 2 ** 32), RangeError);
    new Prng(2 ** 53 - 1, 2 ** 32 - 1).nextUint32();
  });
});
