import { OptionError } from '../util/errors.js';
/**
 * Depth evaluation metrics: the DepthCrafter benchmark protocol (spec §7) plus a
 * temporal-consistency ("flicker") measure. Pure functions, no I/O.
 *
 * Protocol (per video), as in the reference benchmark:
 *   1. resize the prediction to the GT size with bilinear interpolation
 *      (cv2.resize INTER_LINEAR: half-pixel centres, edge clamp);
 *   2. valid mask: minDepth (1e-3) < gt < maxDepth;
 *   3. clip the predicted disparity to >= 1e-3;
 *   4. fit ONE scale s and shift b for the whole sequence by least squares over
 *      all valid pixels of all frames: s*pred + b ~= 1/gt (disparity space);
 *   5. aligned = max(s*pred + b, 1e-3); depth = clip(1/aligned, 1e-3, maxDepth);
 *   6. per frame over its valid pixels: AbsRel, delta1, RMSE; each metric is the
 *      mean over the frames that have at least one valid pixel.
 *
 * All per-pixel arithmetic is done in float64 (JS numbers), like the reference
 * (whose fitted scale/shift are float64 and promote the float32 prediction).
 * The definitions are written out in docs/evaluation.md.
 */

/** Lower clip of the prediction, of the aligned disparity and of the predicted depth (fixed by the protocol). */
/** The ground truth has no pixel inside the valid depth range (the user's depth scale or range is wrong). */
export class NoValidPixelsError extends OptionError {}

export const EVAL_EPS = 1e-3;

// ---------------------------------------------------------------------------------------------
// Resize

/**
 * Bilinear resize of one float32 frame (row-major, `srcW x srcH`) to `dstW x dstH`, with
 * cv2.resize INTER_LINEAR semantics: a destination pixel centre (x + 0.5) maps to the source
 * coordinate (x + 0.5) * srcW / dstW - 0.5; coordinates outside [0, srcW - 1] clamp to the edge.
 * There is no antialiasing when shrinking (as in cv2 INTER_LINEAR). Same size returns a copy.
 */
export function resizeBilinear(src: Float32Array, srcW: number, srcH: number, dstW: number, dstH: number): Float32Array {
  checkSize(srcW, srcH, 'resizeBilinear source');
  checkSize(dstW, dstH, 'resizeBilinear destination');
  if (src.length !== srcW * srcH) {
    throw new OptionError(`resizeBilinear: source has ${src.length} values, expected ${srcW}x${srcH} = ${srcW * srcH}`);
  }
  if (srcW === dstW && srcH === dstH) return new Float32Array(src);
  const xs = axisTaps(srcW, dstW);
  const ys = axisTaps(srcH, dstH);
  const out = new Float32Array(dstW * dstH);
  for (let y = 0; y < dstH; y++) {
    const r0 = ys.i0[y] * srcW;
    const r1 = ys.i1[y] * srcW;
    const wy = ys.w[y];
    const o = y * dstW;
    for (let x = 0; x < dstW; x++) {
      const x0 = xs.i0[x];
      const x1 = xs.i1[x];
      const wx = xs.w[x];
      const top = src[r0 + x0] * (1 - wx) + src[r0 + x1] * wx;
      const bot = src[r1 + x0] * (1 - wx) + src[r1 + x1] * wx;
      out[o + x] = top * (1 - wy) + bot * wy;
    }
  }
  return out;
}

/** Resizes every frame of a sequence (see resizeBilinear). */
export function resizeSequence(frames: readonly Float32Array[], srcW: number, srcH: number, dstW: number, dstH: number): Float32Array[] {
  return frames.map((f) => resizeBilinear(f, srcW, srcH, dstW, dstH));
}

interface AxisTaps {
  i0: Int32Array;
  i1: Int32Array;
  /** Weight of i1 (i0 gets 1 - w). */
  w: Float64Array;
}

function axisTaps(srcN: number, dstN: number): AxisTaps {
  const i0 = new Int32Array(dstN);
  const i1 = new Int32Array(dstN);
  const w = new Float64Array(dstN);
  const scale = srcN / dstN;
  for (let d = 0; d < dstN; d++) {
    const f = (d + 0.5) * scale - 0.5;
    let s = Math.floor(f);
    let frac = f - s;
    if (s < 0) {
      s = 0;
      frac = 0;
    }
    if (s >= srcN - 1) {
      s = srcN - 1;
      frac = 0;
    }
    i0[d] = s;
    i1[d] = Math.min(s + 1, srcN - 1);
    w[d] = frac;
  }
  return { i0, i1, w };
}

function checkSize(w: number, h: number, what: string): void {
  if (!Number.isInteger(w) || !Number.isInteger(h) || w <= 0 || h <= 0) throw new OptionError(`${what}: invalid size ${w}x${h}`);
}

// ---------------------------------------------------------------------------------------------
// Masks and the scale/shift fit

/** Valid-GT mask of one frame: minDepth < gt < maxDepth (NaN is invalid). */
export function validMask(gt: Float32Array, maxDepth: number, minDepth = EVAL_EPS): Uint8Array {
  const m = new Uint8Array(gt.length);
  for (let i = 0; i < gt.length; i++) {
    const g = gt[i];
    m[i] = g > minDepth && g < maxDepth ? 1 : 0;
  }
  return m;
}

export interface ScaleShift {
  scale: number;
  shift: number;
  /** Number of pixels the fit used. */
  count: number;
}

/**
 * Least-squares fit of ONE scale s and shift b over all masked pixels of all frames:
 * minimises sum (s*pred + b - 1/gt)^2, i.e. the prediction (a disparity) is aligned to the
 * GT disparity. `preds` should already be clipped (>= 1e-3) as in the protocol; `gts` are
 * metric depths (> 0 wherever the mask is set).
 *
 * Closed form of the 2x2 normal equations, accumulated in float64 and solved in centred
 * form (two passes: means, then centred sums) for accuracy. If the masked predictions are
 * (numerically) constant the system is rank-deficient; then, like numpy.linalg.lstsq with
 * rcond=None, the minimum-norm solution is returned: for a constant p,
 * (s, b) = mean(1/gt) * (p, 1) / (p^2 + 1).
 * Throws a RangeError when no pixel is masked.
 */
export function fitScaleShift(preds: readonly Float32Array[], gts: readonly Float32Array[], masks: readonly Uint8Array[]): ScaleShift {
  if (preds.length !== gts.length || preds.length !== masks.length) {
    throw new OptionError(`fitScaleShift: ${preds.length} predictions, ${gts.length} GT frames and ${masks.length} masks`);
  }
  let n = 0;
  let sp = 0;
  let sy = 0;
  for (let t = 0; t < preds.length; t++) {
    const p = preds[t];
    const g = gts[t];
    const m = masks[t];
    if (p.length !== g.length || p.length !== m.length) throw new OptionError(`fitScaleShift: frame ${t} sizes differ (${p.length}, ${g.length}, ${m.length})`);
    for (let i = 0; i < p.length; i++) {
      if (!m[i]) continue;
      n++;
      sp += p[i];
      sy += 1 / g[i];
    }
  }
  if (n === 0) throw new NoValidPixelsError('fitScaleShift: no valid pixels to fit');
  const mp = sp / n;
  const my = sy / n;
  let spp = 0;
  let spy = 0;
  for (let t = 0; t < preds.length; t++) {
    const p = preds[t];
    const g = gts[t];
    const m = masks[t];
    for (let i = 0; i < p.length; i++) {
      if (!m[i]) continue;
      const dp = p[i] - mp;
      spp += dp * dp;
      spy += dp * (1 / g[i] - my);
    }
  }
  // numpy.linalg.lstsq (rcond=None) treats singular values below eps * max(n, 2) * sigma_max as
  // zero. With M = A^T A = [[a, b], [b, c]]: det(M) = n * spp and sigma^2 are M's eigenvalues.
  const a = spp + n * mp * mp;
  const b = n * mp;
  const c = n;
  const lmax = (a + c + Math.hypot(a - c, 2 * b)) / 2;
  const lmin = (n * spp) / lmax;
  const cutoff = Number.EPSILON * Math.max(n, 2);
  if (!(lmin > cutoff * cutoff * lmax)) {
    // Rank 1: minimum-norm solution x = v (v . A^T y) / lmax, v the unit eigenvector of lmax.
    let vx = b;
    let vy = lmax - a;
    if (Math.abs(vx) + Math.abs(vy) < 1e-300) {
      vx = lmax - c;
      vy = b;
    }
    const norm = Math.hypot(vx, vy) || 1;
    vx /= norm;
    vy /= norm;
    const aty0 = spy + n * mp * my; // sum p*y
    const aty1 = n * my; // sum y
    const k = (vx * aty0 + vy * aty1) / lmax;
    return { scale: k * vx, shift: k * vy, count: n };
  }
  const scale = spy / spp;
  return { scale, shift: my - scale * mp, count: n };
}

// ---------------------------------------------------------------------------------------------
// Per-sequence evaluation

export interface EvalOptions {
  /** Upper bound of valid GT depth (exclusive) and upper clip of the predicted depth, in GT units (m). */
  maxDepth: number;
  /** Lower bound of valid GT depth (exclusive). Default 1e-3. */
  minDepth?: number;
  /**
   * Window boundaries: frame indices b where a new window starts. The pair (b-1, b) "straddles"
   * the boundary; `temporalBoundary` averages over those pairs only. Default none.
   */
  boundaries?: readonly number[];
}

export interface FrameMetrics {
  index: number;
  /** Valid GT pixels in this frame. */
  valid: number;
  /** NaN when the frame has no valid pixel (it is then left out of the averages). */
  absrel: number;
  delta1: number;
  rmse: number;
}

export interface TemporalMetrics {
  /** Mean over consecutive pairs of mean |Δ aligned pred disparity - Δ GT disparity| (1/m). NaN if no pair has common valid pixels. */
  temporal: number;
  /** Same, only over pairs (b-1, b) for the given boundaries; NaN when none qualifies. */
  temporalBoundary: number;
  /** Pairs averaged into `temporal`. */
  pairs: number;
  /** Pairs averaged into `temporalBoundary`. */
  boundaryPairs: number;
}

export interface FlickerMetrics {
  /** Mean over consecutive pairs of mean |Δ disparity| over all pixels. NaN for fewer than 2 frames. */
  flicker: number;
  /** Same, only over pairs (b-1, b) for the given boundaries; NaN when none qualifies. */
  flickerBoundary: number;
}

export interface SequenceMetrics {
  absrel: number;
  delta1: number;
  rmse: number;
  /** Frames evaluated (the sequence length). */
  frames: number;
  /** Frames with at least one valid GT pixel (the averages run over these). */
  framesWithValid: number;
  /** Total valid pixels (used by the fit). */
  validPixels: number;
  scale: number;
  shift: number;
  temporal: number;
  temporalBoundary: number;
  /** Flicker of the aligned prediction alone (no GT needed), over all pixels, in 1/m. */
  flickerNoGt: number;
  flickerNoGtBoundary: number;
  perFrame: FrameMetrics[];
}

function checkSequence(preds: readonly Float32Array[], gts: readonly Float32Array[], width: number, height: number): void {
  checkSize(width, height, 'evaluateSequence');
  if (preds.length !== gts.length) throw new OptionError(`${preds.length} predicted frames but ${gts.length} GT frames`);
  if (preds.length === 0) throw new OptionError('empty sequence');
  const n = width * height;
  preds.forEach((p, t) => {
    if (p.length !== n) throw new OptionError(`predicted frame ${t} has ${p.length} values, expected ${width}x${height} = ${n}`);
  });
  gts.forEach((g, t) => {
    if (g.length !== n) throw new OptionError(`GT frame ${t} has ${g.length} values, expected ${width}x${height} = ${n}`);
  });
}

function checkOptions(o: EvalOptions): { maxDepth: number; minDepth: number } {
  const minDepth = o.minDepth ?? EVAL_EPS;
  if (!(o.maxDepth > 0) || !Number.isFinite(o.maxDepth)) throw new OptionError(`maxDepth must be a positive number, got ${o.maxDepth}`);
  if (!(minDepth >= 0) || !(minDepth < o.maxDepth)) throw new OptionError(`minDepth must be in [0, maxDepth), got ${minDepth}`);
  return { maxDepth: o.maxDepth, minDepth };
}

/** Prediction clipped to >= 1e-3 (protocol step 3); NaN becomes 1e-3 too. */
export function clipPrediction(p: Float32Array): Float32Array {
  const out = new Float32Array(p.length);
  for (let i = 0; i < p.length; i++) {
    const v = p[i];
    out[i] = v >= EVAL_EPS ? v : EVAL_EPS;
  }
  return out;
}

/**
 * Evaluates one sequence with the paper's protocol. `preds` are relative disparities (any
 * affine scale, near = large) ALREADY at the GT size (see resizeSequence); `gts` are metric
 * depths (<= 0, NaN or >= maxDepth are invalid). Throws a RangeError on shape mismatches or
 * when no pixel of the whole sequence is valid.
 */
export function evaluateSequence(
  preds: readonly Float32Array[],
  gts: readonly Float32Array[],
  width: number,
  height: number,
  options: EvalOptions,
): SequenceMetrics {
  checkSequence(preds, gts, width, height);
  const { maxDepth, minDepth } = checkOptions(options);
  const clipped = preds.map(clipPrediction);
  const masks = gts.map((g) => validMask(g, maxDepth, minDepth));
  const fit = fitScaleShift(clipped, gts, masks);
  const { scale, shift } = fit;

  const perFrame: FrameMetrics[] = [];
  let sumAbs = 0;
  let sumD1 = 0;
  let sumRmse = 0;
  let framesWithValid = 0;
  for (let t = 0; t < clipped.length; t++) {
    const p = clipped[t];
    const g = gts[t];
    const m = masks[t];
    let valid = 0;
    let abs = 0;
    let d1 = 0;
    let sq = 0;
    for (let i = 0; i < p.length; i++) {
      if (!m[i]) continue;
      const d = alignedDepth(p[i], scale, shift, maxDepth);
      const gi = g[i];
      valid++;
      abs += Math.abs(d - gi) / gi;
      if (Math.max(d / gi, gi / d) < 1.25) d1++;
      sq += (d - gi) * (d - gi);
    }
    if (valid === 0) {
      perFrame.push({ index: t, valid: 0, absrel: NaN, delta1: NaN, rmse: NaN });
      continue;
    }
    const f: FrameMetrics = { index: t, valid, absrel: abs / valid, delta1: d1 / valid, rmse: Math.sqrt(sq / valid) };
    perFrame.push(f);
    framesWithValid++;
    sumAbs += f.absrel;
    sumD1 += f.delta1;
    sumRmse += f.rmse;
  }

  const tm = temporalConsistency(clipped, gts, masks, scale, shift, options.boundaries ?? []);
  const fl = flickerNoGt(clipped, { scale, shift, boundaries: options.boundaries });
  return {
    absrel: sumAbs / framesWithValid,
    delta1: sumD1 / framesWithValid,
    rmse: sumRmse / framesWithValid,
    frames: preds.length,
    framesWithValid,
    validPixels: fit.count,
    scale,
    shift,
    temporal: tm.temporal,
    temporalBoundary: tm.temporalBoundary,
    flickerNoGt: fl.flicker,
    flickerNoGtBoundary: fl.flickerBoundary,
    perFrame,
  };
}

/** aligned = max(s*p + b, 1e-3) (protocol step 5, disparity). */
export function alignedDisparity(p: number, scale: number, shift: number): number {
  const a = scale * p + shift;
  return a >= EVAL_EPS ? a : EVAL_EPS;
}

/** depth = clip(1 / aligned, 1e-3, maxDepth) (protocol step 5, depth). */
export function alignedDepth(p: number, scale: number, shift: number, maxDepth: number): number {
  const d = 1 / alignedDisparity(p, scale, shift);
  return d < EVAL_EPS ? EVAL_EPS : d > maxDepth ? maxDepth : d;
}

// ---------------------------------------------------------------------------------------------
// Temporal consistency

function boundarySet(boundaries: readonly number[], frames: number): Set<number> {
  const s = new Set<number>();
  for (const b of boundaries) {
    if (!Number.isInteger(b)) throw new OptionError(`boundary frame indices must be integers, got ${b}`);
    if (b >= 1 && b < frames) s.add(b);
  }
  return s;
}

/**
 * TAE-like temporal error against GT. For every consecutive pair (t-1, t), over the pixels
 * valid in GT at BOTH frames:
 *   e_t = mean | (A_t - A_{t-1}) - (G_t - G_{t-1}) |
 * with A = max(s*pred + b, 1e-3) the aligned predicted disparity (sequence fit) and G = 1/gt
 * the GT disparity, both in 1/m. `temporal` is the mean of e_t over the pairs that have common
 * valid pixels; `temporalBoundary` the mean over those pairs with t in `boundaries` (the pair
 * straddling the start of a window). Pixels are compared in place (no motion compensation), so
 * the measure also contains the part of the GT change that the prediction misses under motion.
 * `preds` should be clipped (>= 1e-3); `masks` from validMask.
 */
export function temporalConsistency(
  preds: readonly Float32Array[],
  gts: readonly Float32Array[],
  masks: readonly Uint8Array[],
  scale: number,
  shift: number,
  boundaries: readonly number[] = [],
): TemporalMetrics {
  const bset = boundarySet(boundaries, preds.length);
  let sum = 0;
  let pairs = 0;
  let bsum = 0;
  let bpairs = 0;
  for (let t = 1; t < preds.length; t++) {
    const p0 = preds[t - 1];
    const p1 = preds[t];
    const g0 = gts[t - 1];
    const g1 = gts[t];
    const m0 = masks[t - 1];
    const m1 = masks[t];
    let n = 0;
    let acc = 0;
    for (let i = 0; i < p1.length; i++) {
      if (!m0[i] || !m1[i]) continue;
      const dPred = alignedDisparity(p1[i], scale, shift) - alignedDisparity(p0[i], scale, shift);
      const dGt = 1 / g1[i] - 1 / g0[i];
      acc += Math.abs(dPred - dGt);
      n++;
    }
    if (n === 0) continue;
    const e = acc / n;
    sum += e;
    pairs++;
    if (bset.has(t)) {
      bsum += e;
      bpairs++;
    }
  }
  return { temporal: pairs ? sum / pairs : NaN, temporalBoundary: bpairs ? bsum / bpairs : NaN, pairs, boundaryPairs: bpairs };
}

/**
 * Flicker without GT: for every consecutive pair (t-1, t), e_t = mean over ALL pixels of
 * |A_t - A_{t-1}| with A = max(s*pred + b, 1e-3) (use scale 1, shift 0 -- the defaults -- for
 * raw predictions; those are then clipped to >= 1e-3 too). `flicker` is the mean of e_t over
 * all pairs, `flickerBoundary` over the pairs (b-1, b) of the given boundaries. It mixes real
 * scene change with flicker, so compare it between methods on the same video, not across videos.
 */
export function flickerNoGt(preds: readonly Float32Array[], o: { scale?: number; shift?: number; boundaries?: readonly number[] } = {}): FlickerMetrics {
  const scale = o.scale ?? 1;
  const shift = o.shift ?? 0;
  const bset = boundarySet(o.boundaries ?? [], preds.length);
  let sum = 0;
  let pairs = 0;
  let bsum = 0;
  let bpairs = 0;
  for (let t = 1; t < preds.length; t++) {
    const p0 = preds[t - 1];
    const p1 = preds[t];
    if (p0.length !== p1.length) throw new OptionError(`frames ${t - 1} and ${t} differ in size`);
    if (p1.length === 0) continue;
    let acc = 0;
    for (let i = 0; i < p1.length; i++) {
      acc += Math.abs(alignedDisparity(p1[i], scale, shift) - alignedDisparity(p0[i], scale, shift));
    }
    const e = acc / p1.length;
    sum += e;
    pairs++;
    if (bset.has(t)) {
      bsum += e;
      bpairs++;
    }
  }
  return { flicker: pairs ? sum / pairs : NaN, flickerBoundary: bpairs ? bsum / bpairs : NaN };
}

/**
 * Window boundaries of the reference's segment layout: the start k*(W-O) of every segment
 * k >= 1, given the segments (e.g. from segmentLayout in inference/math/segments.ts).
 */
export function boundariesFromSegments(segments: readonly { start: number }[]): number[] {
  return segments.slice(1).map((s) => s.start);
}
