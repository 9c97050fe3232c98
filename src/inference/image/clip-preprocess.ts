import { OptionError } from '../../util/errors.js';
// Parity-critical: SVD's antialiased CLIP resize and normalisation; guarded by test/image-preprocess.test.ts and test/vs-reference.test.ts.

/**
 * CLIP image-encoder input (spec §2a): SVD's `_resize_with_antialiasing` to
 * 224x224 on CHW float32 frames in [-1, 1], then (x+1)/2 (no clamp) and CLIP
 * mean/std normalisation. Steps, in the reference's order:
 *   1. per axis sigma = max((in/out - 1)/2, 0.001), odd kernel k >= 3;
 *   2. separable Gaussian blur, horizontal then vertical, reflect padding;
 *   3. bicubic (a = -0.75, align_corners=True, border taps clamped);
 *   4. (x + 1)/2, then (x - mean_c)/std_c.
 * Arithmetic is float64 per output, stored float32 between passes as the
 * float32 reference does. We run the vertical blur after the horizontal
 * bicubic (same result, less work; see resize()). Verified against an ONNX
 * Runtime graph of the same ops in test/image-preprocess.test.ts.
 */

export const CLIP_SIZE = 224;
export const CLIP_MEAN: readonly [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: readonly [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

/** PyTorch's bicubic coefficient (cubic convolution, Keys 1981). */
const CUBIC_A = -0.75;

export interface AntialiasAxis {
  readonly sigma: number;
  readonly kernelSize: number;
}

/** Gaussian sigma and kernel size for one axis resized from inSize to outSize. */
export function antialiasAxis(inSize: number, outSize = CLIP_SIZE): AntialiasAxis {
  const sigma = Math.max((inSize / outSize - 1) / 2, 0.001);
  let kernelSize = Math.trunc(Math.max(4 * sigma, 3));
  if (kernelSize % 2 === 0) kernelSize += 1;
  return { sigma, kernelSize };
}

/** Normalised Gaussian taps at x = i - size//2 (size is odd here, so no half shift is needed). */
export function gaussianKernel(size: number, sigma: number): Float64Array {
  const k = new Float64Array(size);
  const half = Math.floor(size / 2);
  let sum = 0;
  for (let i = 0; i < size; i++) {
    const x = i - half;
    k[i] = Math.exp(-(x * x) / (2 * sigma * sigma));
    sum += k[i];
  }
  for (let i = 0; i < size; i++) k[i] /= sum;
  return k;
}

/** Only the centre tap is non-zero (and it is 1): blurring with it changes nothing. */
export function isIdentityKernel(k: Float64Array): boolean {
  const half = (k.length - 1) >> 1;
  return k.every((v, i) => (i === half ? v === 1 : v === 0));
}

/** PyTorch 'reflect' padding index: mirror about the edge sample without repeating it (-1 -> 1, n -> n-2). */
export function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  const m = ((i % period) + period) % period;
  return m < n ? m : period - m;
}

/** The four bicubic tap weights for fractional offset t in [0, 1), for taps at -1, 0, +1, +2. */
export function cubicWeights(t: number, out: Float64Array, offset = 0): void {
  const a = CUBIC_A;
  // |x| <= 1: ((a+2)|x| - (a+3))x^2 + 1;  1 < |x| < 2: ((a|x| - 5a)|x| + 8a)|x| - 4a
  const near = (x: number): number => ((a + 2) * x - (a + 3)) * x * x + 1;
  const far = (x: number): number => ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  out[offset] = far(t + 1);
  out[offset + 1] = near(t);
  out[offset + 2] = near(1 - t);
  out[offset + 3] = far(2 - t);
}

/** Four clamped source indices and weights per output sample, align_corners=True. */
interface CubicTable {
  readonly idx: Int32Array;
  readonly w: Float64Array;
}

function buildCubicTable(inSize: number, outSize: number): CubicTable {
  const idx = new Int32Array(4 * outSize);
  const w = new Float64Array(4 * outSize);
  // PyTorch computes the scale and source coordinate in float32.
  const scale = outSize > 1 ? Math.fround((inSize - 1) / (outSize - 1)) : 0;
  for (let d = 0; d < outSize; d++) {
    const real = Math.fround(scale * d);
    // Guard float32 overshoot past the last sample, as PyTorch does.
    const base = Math.min(Math.floor(real), inSize - 1);
    cubicWeights(Math.min(Math.max(real - base, 0), 1), w, 4 * d);
    for (let j = 0; j < 4; j++) idx[4 * d + j] = Math.min(Math.max(base - 1 + j, 0), inSize - 1);
  }
  return { idx, w };
}

/**
 * Preprocessor for one input size; owns its scratch planes so per-frame calls
 * allocate nothing. Not re-entrant (one per worker).
 */
export class ClipPreprocessor {
  readonly inHeight: number;
  readonly inWidth: number;
  readonly outHeight: number;
  readonly outWidth: number;
  readonly axisY: AntialiasAxis;
  readonly axisX: AntialiasAxis;

  private readonly kernelX: Float64Array;
  private readonly kernelY: Float64Array;
  private readonly cubicX: CubicTable;
  private readonly cubicY: CubicTable;
  private readonly planeA: Float32Array; // after the horizontal blur (inHeight x inWidth)
  private readonly planeB: Float32Array; // after the horizontal bicubic (inHeight x outWidth)
  private readonly planeC: Float32Array; // after the vertical blur (inHeight x outWidth)
  private readonly rowAcc: Float64Array;
  /** False where the axis's kernel is exactly [0, 1, 0], an identity. */
  private readonly blurX: boolean;
  private readonly blurY: boolean;

  constructor(inHeight: number, inWidth: number, outHeight = CLIP_SIZE, outWidth = CLIP_SIZE) {
    for (const [name, v] of [
      ['inHeight', inHeight],
      ['inWidth', inWidth],
      ['outHeight', outHeight],
      ['outWidth', outWidth],
    ] as const) {
      if (!Number.isInteger(v) || v < 1) throw new OptionError(`${name} must be a positive integer, got ${v}`);
    }
    this.inHeight = inHeight;
    this.inWidth = inWidth;
    this.outHeight = outHeight;
    this.outWidth = outWidth;
    this.axisY = antialiasAxis(inHeight, outHeight);
    this.axisX = antialiasAxis(inWidth, outWidth);
    this.kernelY = gaussianKernel(this.axisY.kernelSize, this.axisY.sigma);
    this.kernelX = gaussianKernel(this.axisX.kernelSize, this.axisX.sigma);
    this.blurX = !isIdentityKernel(this.kernelX);
    this.blurY = !isIdentityKernel(this.kernelY);
    this.cubicY = buildCubicTable(inHeight, outHeight);
    this.cubicX = buildCubicTable(inWidth, outWidth);
    this.planeA = new Float32Array(inHeight * inWidth);
    this.planeB = new Float32Array(inHeight * outWidth);
    this.planeC = new Float32Array(inHeight * outWidth);
    this.rowAcc = new Float64Array(Math.max(inWidth, outWidth));
  }

  /**
   * Antialiased bicubic resize of `channels` CHW planes from src[srcOffset..]
   * into out[outOffset..] ([channels, outHeight, outWidth]), values unchanged
   * in range (still [-1, 1]-space).
   */
  resize(src: Float32Array, out: Float32Array, outOffset = 0, srcOffset = 0, channels = 3): Float32Array {
    const inPlane = this.inHeight * this.inWidth;
    const outPlane = this.outHeight * this.outWidth;
    if (src.length < srcOffset + channels * inPlane)
      throw new OptionError(`source too short for [${channels}, ${this.inHeight}, ${this.inWidth}] at offset ${srcOffset}`);
    if (out.length < outOffset + channels * outPlane)
      throw new OptionError(`output too short for [${channels}, ${this.outHeight}, ${this.outWidth}] at offset ${outOffset}`);
    for (let c = 0; c < channels; c++) {
      // The reference order is blur-x, blur-y, bicubic. Operators on different
      // axes commute exactly (up to float32 rounding of the intermediates), so
      // we shrink the width before the vertical blur: ~4.6x less work there at 1024 wide.
      // An axis that is upscaled gets the kernel [0, 1, 0] (sigma 0.001): its blur is skipped, exactly.
      const off = srcOffset + c * inPlane;
      if (this.blurX) this.blurHorizontal(src, off);
      this.cubicHorizontal(this.blurX ? this.planeA : src, this.blurX ? 0 : off);
      if (this.blurY) this.blurVertical();
      this.cubicVertical(out, outOffset + c * outPlane, this.blurY ? this.planeC : this.planeB);
    }
    return out;
  }

  /** Full CLIP preprocessing of one [3, inHeight, inWidth] frame into out[outOffset..] as [3, outHeight, outWidth]. */
  run(src: Float32Array, out: Float32Array, outOffset = 0, srcOffset = 0): Float32Array {
    this.resize(src, out, outOffset, srcOffset, 3);
    clipNormalize(out, outOffset, this.outHeight * this.outWidth);
    return out;
  }

  private blurHorizontal(src: Float32Array, off: number): void {
    const w = this.inWidth;
    const h = this.inHeight;
    const k = this.kernelX;
    const taps = k.length;
    const r = (taps - 1) >> 1;
    const dst = this.planeA;
    const acc = this.rowAcc;
    // Interior columns [r, w - r) need no padding: accumulate tap by tap along
    // the row (a tight, JIT-friendly loop); only the r edge columns reflect.
    const lo = Math.min(r, w);
    const hi = Math.max(w - r, lo);
    for (let y = 0; y < h; y++) {
      const row = off + y * w;
      const o = y * w;
      acc.fill(0, lo, hi);
      for (let j = 0; j < taps; j++) {
        const kj = k[j];
        const p = row + j - r;
        for (let x = lo; x < hi; x++) acc[x] += kj * src[p + x];
      }
      for (let x = lo; x < hi; x++) dst[o + x] = acc[x];
      for (let x = 0; x < w; x++) {
        if (x === lo) x = hi;
        if (x >= w) break;
        let s = 0;
        for (let j = 0; j < taps; j++) s += k[j] * src[row + reflectIndex(x + j - r, w)];
        dst[o + x] = s;
      }
    }
  }

  private blurVertical(): void {
    const w = this.outWidth;
    const h = this.inHeight;
    const k = this.kernelY;
    const r = (k.length - 1) >> 1;
    const src = this.planeB;
    const dst = this.planeC;
    const acc = this.rowAcc;
    for (let y = 0; y < h; y++) {
      acc.fill(0, 0, w);
      for (let j = 0; j < k.length; j++) {
        const p = reflectIndex(y + j - r, h) * w;
        const kj = k[j];
        for (let x = 0; x < w; x++) acc[x] += kj * src[p + x];
      }
      const o = y * w;
      for (let x = 0; x < w; x++) dst[o + x] = acc[x];
    }
  }

  private cubicHorizontal(src: Float32Array, off: number): void {
    const w = this.inWidth;
    const ow = this.outWidth;
    const { idx, w: wt } = this.cubicX;
    const dst = this.planeB;
    for (let y = 0; y < this.inHeight; y++) {
      const row = off + y * w;
      const o = y * ow;
      for (let x = 0; x < ow; x++) {
        const q = 4 * x;
        dst[o + x] = wt[q] * src[row + idx[q]] + wt[q + 1] * src[row + idx[q + 1]] + wt[q + 2] * src[row + idx[q + 2]] + wt[q + 3] * src[row + idx[q + 3]];
      }
    }
  }

  private cubicVertical(out: Float32Array, off: number, src: Float32Array): void {
    const ow = this.outWidth;
    const { idx, w: wt } = this.cubicY;
    for (let y = 0; y < this.outHeight; y++) {
      const q = 4 * y;
      const r0 = idx[q] * ow;
      const r1 = idx[q + 1] * ow;
      const r2 = idx[q + 2] * ow;
      const r3 = idx[q + 3] * ow;
      const w0 = wt[q];
      const w1 = wt[q + 1];
      const w2 = wt[q + 2];
      const w3 = wt[q + 3];
      const o = off + y * ow;
      for (let x = 0; x < ow; x++) {
        out[o + x] = w0 * src[r0 + x] + w1 * src[r1 + x] + w2 * src[r2 + x] + w3 * src[r3 + x];
      }
    }
  }
}

/**
 * In place on [3, plane] at `offset`: x -> ((x + 1)/2 - mean_c) / std_c.
 * No clamp: bicubic overshoot outside [-1, 1] passes through, as in the reference.
 */
export function clipNormalize(buf: Float32Array, offset: number, plane: number): Float32Array {
  for (let c = 0; c < 3; c++) {
    const mean = CLIP_MEAN[c];
    const std = CLIP_STD[c];
    const base = offset + c * plane;
    for (let i = 0; i < plane; i++) buf[base + i] = ((buf[base + i] + 1) / 2 - mean) / std;
  }
  return buf;
}

let cached: ClipPreprocessor | undefined;

/**
 * Convenience wrapper: preprocess one [3, h, w] frame into out[outOffset..]
 * as [3, 224, 224], reusing a cached preprocessor while the size is unchanged
 * (fill a batch [N, 3, 224, 224] with outOffset = n * 3 * 224 * 224).
 */
export function clipPreprocess(src: Float32Array, h: number, w: number, out: Float32Array, outOffset = 0): Float32Array {
  if (cached === undefined || cached.inHeight !== h || cached.inWidth !== w) cached = new ClipPreprocessor(h, w);
  return cached.run(src, out, outOffset);
}
