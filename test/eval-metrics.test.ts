import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import {
  alignedDepth,
  boundariesFromSegments,
  clipPrediction,
  evaluateSequence,
  fitScaleShift,
  flickerNoGt,
  resizeBilinear,
  temporalConsistency,
  validMask,
} from '../src/eval/metrics.js';
import { segmentLayout } from '../src/inference/math/segments.js';

function close(actual: number, expected: number, tol: number, what = ''): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what} expected ${expected} +- ${tol}, got ${actual}`);
}

/** Deterministic pseudo-random numbers in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** A moving GT sequence: depth in [0.5, 8) m, drifting 3% per frame. */
function gtSequence(frames: number, w: number, h: number, seed = 1): Float32Array[] {
  const r = rng(seed);
  const base = Float32Array.from({ length: w * h }, () => 0.5 + 7.5 * r());
  return Array.from({ length: frames }, (_, t) => base.map((d) => Math.min(d * (1 + 0.03 * t), 9.5)));
}

describe('resizeBilinear (cv2 INTER_LINEAR)', () => {
  test('2x2 -> 4x4 matches the hand-computed half-pixel-centre, edge-clamped values', () => {
    // Destination x maps to (x + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 -> clamp, 0.25, 0.75, clamp.
    const out = resizeBilinear(Float32Array.of(0, 1, 2, 3), 2, 2, 4, 4);
    const expected = [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3];
    assert.deepEqual(Array.from(out), expected);
  });

  test('4x2 -> 2x1 averages neighbour pairs (no antialiasing), same size copies', () => {
    // x: (0.5) * 2 - 0.5 = 0.5 and 2.5; y: 0.5 * 2 - 0.5 = 0.5.
    const src = Float32Array.of(0, 1, 2, 3, 4, 5, 6, 7);
    assert.deepEqual(Array.from(resizeBilinear(src, 4, 2, 2, 1)), [2.5, 4.5]);
    const same = resizeBilinear(src, 4, 2, 4, 2);
    assert.deepEqual(Array.from(same), Array.from(src));
    assert.notEqual(same, src);
  });

  test('rejects a wrong source length', () => {
    assert.throws(() => resizeBilinear(new Float32Array(5), 2, 2, 4, 4), RangeError);
  });
});

describe('validMask and clipping', () => {
  test('excludes gt <= minDepth, gt >= maxDepth and NaN', () => {
    const m = validMask(Float32Array.of(0, -1, 0.0005, 0.5, 9.99, 10, 12, NaN), 10);
    assert.deepEqual(Array.from(m), [0, 0, 0, 1, 1, 0, 0, 0]);
  });

  test('prediction is clipped to >= 1e-3; aligned depth is clipped to [1e-3, maxDepth]', () => {
    assert.deepEqual(Array.from(clipPrediction(Float32Array.of(-2, 0, 0.5))), [Math.fround(1e-3), Math.fround(1e-3), 0.5]);
    close(alignedDepth(0.5, 1, 0, 10), 2, 1e-12);
    close(alignedDepth(-1, 1, 0, 10), 10, 0); // aligned disparity -> 1e-3 -> depth 1000 -> clip 10
    close(alignedDepth(1e6, 1, 0, 10), 1e-3, 0);
  });
});

describe('fitScaleShift', () => {
  test('recovers a and b of pred = (1/gt - b) / a, ignoring masked-out pixels', () => {
    const a = 2.5;
    const b = -0.07;
    const gts = gtSequence(3, 7, 5, 7);
    const preds = gts.map((g) => g.map((d) => (1 / d - b) / a));
    const masks = gts.map((g) => validMask(g, 10));
    // Garbage where the mask is off must not matter.
    masks[1][3] = 0;
    preds[1][3] = 1234;
    const fit = fitScaleShift(preds, gts, masks);
    close(fit.scale, a, 1e-5, 'scale');
    close(fit.shift, b, 1e-6, 'shift');
    assert.equal(fit.count, 3 * 35 - 1);
  });

  test('constant prediction: minimum-norm solution, as numpy.linalg.lstsq', () => {
    const gt = Float32Array.of(1, 2, 4, 0.5);
    const p = 0.5;
    const fit = fitScaleShift([new Float32Array(4).fill(p)], [gt], [validMask(gt, 10)]);
    const my = (1 + 0.5 + 0.25 + 2) / 4;
    close(fit.scale, (my * p) / (p * p + 1), 1e-12, 'scale');
    close(fit.shift, my / (p * p + 1), 1e-12, 'shift');
  });

  test('no valid pixel throws', () => {
    assert.throws(() => fitScaleShift([Float32Array.of(1)], [Float32Array.of(0)], [Uint8Array.of(0)]), /no valid pixels/);
  });
});

describe('evaluateSequence (paper protocol)', () => {
  test('a prediction that is an affine map of GT disparity scores AbsRel 0, delta1 1, RMSE 0', () => {
    const a = 0.3;
    const b = 0.1;
    const gts = gtSequence(5, 16, 12);
    const preds = gts.map((g) => g.map((d) => a / d + b));
    const m = evaluateSequence(preds, gts, 16, 12, { maxDepth: 10 });
    assert.ok(m.absrel < 1e-6, `absrel ${m.absrel}`);
    assert.equal(m.delta1, 1);
    assert.ok(m.rmse < 1e-5, `rmse ${m.rmse}`);
    assert.equal(m.frames, 5);
    assert.equal(m.framesWithValid, 5);
    // s * (a/gt + b) + shift = 1/gt  =>  s = 1/a, shift = -b/a.
    close(m.scale, 1 / a, 1e-4, 'scale');
    close(m.shift, -b / a, 1e-4, 'shift');
    assert.ok(m.temporal < 1e-5, `temporal ${m.temporal}`);
    assert.equal(m.perFrame.length, 5);
  });

  test('hand-computed AbsRel, delta1, RMSE with a ratio-2 depth error on 3 of 8 pixels; mask and empty frames', () => {
    // Frame 0 (5x2): 5 exact pixels, one predicted at 2x its depth (gt 1 m -> 2 m), two at 0.5x
    // (gt 4 m -> 2 m), then gt = 0 and gt = maxDepth (invalid, garbage predictions).
    // In disparity the residuals (y - p) are +0.5, -0.25, -0.25 with p = 0.5, 0.5, 0.5: they sum
    // to 0 and are orthogonal to p, so the least-squares fit stays exactly s = 1, b = 0 (of the
    // underlying disparity) and the errors are not spread onto the other pixels.
    const exactDepths = [1.5, 2.5, 3, 5, 2];
    const gt0 = Float32Array.of(...exactDepths, 1, 4, 4, 0, 10);
    const disp0 = [...exactDepths.map((d) => 1 / d), 1 / 2, 1 / 2, 1 / 2, 50, 0.7];
    // Frame 1: all exact. Frame 2: no valid pixel at all (left out of the averages).
    const gt1 = Float32Array.of(1.2, 2.2, 3.3, 4.4, 5.5, 6.6, 7.7, 8.8, 1.9, 2.9);
    const disp1 = Array.from(gt1, (d) => 1 / d);
    const gt2 = Float32Array.of(0, 0, 0, 0, 0, 11, 12, 13, 14, 0);
    const disp2 = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];
    // Store an affine transform of the disparity: pred = (disp - b) / a.
    const a = 2;
    const b = 0.1;
    const toPred = (d: number[]) => Float32Array.from(d, (v) => (v - b) / a);
    const m = evaluateSequence([toPred(disp0), toPred(disp1), toPred(disp2)], [gt0, gt1, gt2], 5, 2, { maxDepth: 10 });

    close(m.scale, a, 1e-5, 'scale');
    close(m.shift, b, 1e-6, 'shift');
    assert.equal(m.validPixels, 8 + 10);
    const f0 = m.perFrame[0];
    assert.equal(f0.valid, 8);
    close(f0.absrel, (1 + 0.5 + 0.5) / 8, 1e-6, 'frame 0 absrel');
    close(f0.delta1, 5 / 8, 0, 'frame 0 delta1');
    close(f0.rmse, Math.sqrt((1 + 4 + 4) / 8), 1e-5, 'frame 0 rmse');
    close(m.perFrame[1].absrel, 0, 1e-6, 'frame 1 absrel');
    assert.equal(m.perFrame[2].valid, 0);
    assert.ok(Number.isNaN(m.perFrame[2].absrel));
    assert.equal(m.frames, 3);
    assert.equal(m.framesWithValid, 2);
    close(m.absrel, 0.25 / 2, 1e-6, 'absrel');
    close(m.delta1, (5 / 8 + 1) / 2, 0, 'delta1');
    close(m.rmse, Math.sqrt(9 / 8) / 2, 1e-5, 'rmse');
  });

  test('shape mismatches and an all-invalid sequence throw RangeError', () => {
    const f = new Float32Array(4).fill(1);
    assert.throws(() => evaluateSequence([f], [f, f], 2, 2, { maxDepth: 10 }), /1 predicted frames but 2 GT frames/);
    assert.throws(() => evaluateSequence([new Float32Array(3)], [f], 2, 2, { maxDepth: 10 }), /predicted frame 0 has 3 values/);
    assert.throws(() => evaluateSequence([f], [new Float32Array(4)], 2, 2, { maxDepth: 10 }), /no valid pixels/);
    assert.throws(() => evaluateSequence([], [], 2, 2, { maxDepth: 10 }), /empty sequence/);
  });
});

describe('temporal consistency', () => {
  const W = 6;
  const H = 4;
  const N = 6;
  const delta = 0.05;

  test('0 when the prediction follows GT exactly (up to affine), positive with injected flicker', () => {
    const gts = gtSequence(N, W, H, 3);
    const preds = gts.map((g) => g.map((d) => 0.2 / d + 0.3));
    const clean = evaluateSequence(preds, gts, W, H, { maxDepth: 10, boundaries: [3] });
    assert.ok(clean.temporal < 1e-6, `temporal ${clean.temporal}`);
    assert.ok(clean.temporalBoundary < 1e-6, `temporalBoundary ${clean.temporalBoundary}`);
    assert.ok(clean.flickerNoGt > 0, 'the GT moves, so the aligned prediction changes too');

    const flickered = preds.map((p, t) => (t === 3 ? p.map((v) => v + 0.02) : p));
    const bad = evaluateSequence(flickered, gts, W, H, { maxDepth: 10, boundaries: [3] });
    assert.ok(bad.temporal > 1e-3, `temporal ${bad.temporal}`);
    assert.ok(bad.temporalBoundary > bad.temporal, 'the flicker sits at the boundary pair');
  });

  test('exact values with a known fit: flicker of +delta on frame 3 hits pairs (2,3) and (3,4)', () => {
    const gts = gtSequence(N, W, H, 5);
    const preds = gts.map((g, t) => g.map((d) => 1 / d + (t === 3 ? delta : 0)));
    const masks = gts.map((g) => validMask(g, 10));
    // A pixel invalid in frame 3 only, with a wild prediction: left out of pairs (2,3) and (3,4).
    gts[3][5] = 0;
    masks[3][5] = 0;
    preds[3][5] = 100;
    const only3 = temporalConsistency(preds, gts, masks, 1, 0, [3]);
    close(only3.temporal, (2 * delta) / (N - 1), 1e-6, 'temporal');
    close(only3.temporalBoundary, delta, 1e-6, 'temporalBoundary [3]');
    assert.equal(only3.pairs, N - 1);
    assert.equal(only3.boundaryPairs, 1);
    close(temporalConsistency(preds, gts, masks, 1, 0, [2]).temporalBoundary, 0, 1e-6, 'boundary [2]');
    close(temporalConsistency(preds, gts, masks, 1, 0, [1, 3]).temporalBoundary, delta / 2, 1e-6, 'boundaries [1, 3]');
    // Out-of-range boundaries (0, N) are ignored; none left -> NaN.
    const none = temporalConsistency(preds, gts, masks, 1, 0, [0, N]);
    assert.ok(Number.isNaN(none.temporalBoundary));
    assert.equal(none.boundaryPairs, 0);
  });

  test('flickerNoGt: mean |change| over all pixels, boundary pairs only', () => {
    const still = Array.from({ length: N }, (_, t) => new Float32Array(W * H).fill(t === 3 ? 0.5 + delta : 0.5));
    const f = flickerNoGt(still, { boundaries: [3] });
    close(f.flicker, (2 * delta) / (N - 1), 1e-6, 'flicker');
    close(f.flickerBoundary, delta, 1e-6, 'flickerBoundary');
    close(flickerNoGt(still, { scale: 2, shift: 1, boundaries: [4] }).flickerBoundary, 2 * delta, 1e-6, 'scaled');
    assert.ok(Number.isNaN(flickerNoGt([still[0]]).flicker));
  });

  test('window boundaries from the segment layout: starts k*(W-O), k >= 1', () => {
    assert.deepEqual(boundariesFromSegments(segmentLayout(60, 16, 4)), [12, 24, 36, 48]);
    assert.deepEqual(boundariesFromSegments(segmentLayout(300, 110, 25)), [85, 170, 255]);
    assert.deepEqual(boundariesFromSegments(segmentLayout(50, 110, 25)), []);
  });
});
