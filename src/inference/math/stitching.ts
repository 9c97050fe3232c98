import { OptionError } from '../../util/errors.js';
// Parity-critical: torch's linspace and float32 blend order, bit for bit; guarded by test/engine-math.test.ts and test/depth-session.test.ts.

/**
 * Mortise-and-tenon stitching of overlapping windows in latent space (spec §4).
 * The reference does this in float32 torch ops; each op is emulated with
 * Math.fround so results match bit for bit.
 */

const f32 = Math.fround;

/**
 * torch.linspace(0, 1, n) in float32, bit-exact: step = 1/(n-1) in float32,
 * the lower half is i*step and the upper half 1 - (n-1-i)*step (this is where
 * torch differs from numpy, e.g. n=4 gives 0.6666666 not 0.6666667). n=1 -> [0].
 * This is torch's scalar CPU formula (what the spec's fp32 CPU run used). For long
 * inputs torch's vectorised CPU path and CUDA (FMA) can differ by an ulp.
 */
export function torchLinspace01(n: number, out: Float32Array = new Float32Array(n)): Float32Array {
  if (!Number.isInteger(n) || n < 0) throw new OptionError(`n must be a non-negative integer, got ${n}`);
  if (out.length < n) throw new OptionError(`output too short: ${out.length} < ${n}`);
  if (n === 1) {
    out[0] = 0;
    return out;
  }
  const step = f32(1 / (n - 1));
  const halfway = Math.floor(n / 2);
  for (let i = 0; i < n; i++) {
    out[i] = i < halfway ? f32(step * i) : f32(1 - f32(step * (n - 1 - i)));
  }
  return out;
}

/**
 * One overlapped frame: out = w*cur + (1-w)*prev, with float32 rounding after
 * every op as torch does. `out` may alias `prev` or `cur`.
 */
export function blendFrame(prev: Float32Array, cur: Float32Array, w: number, out: Float32Array): Float32Array {
  const n = out.length;
  if (prev.length !== n || cur.length !== n) throw new OptionError('blendFrame: length mismatch');
  const wf = f32(w);
  const v = f32(1 - wf);
  for (let k = 0; k < n; k++) {
    out[k] = f32(wf * cur[k]) + f32(v * prev[k]);
  }
  return out;
}

/**
 * Blends the O overlapped frames: prev = last O frames of the previous result,
 * cur = first O frames of the new window, weights = torchLinspace01(O).
 * Frame j gets weights[j] of the new window: 100 % prev at j=0, 100 % cur at j=O-1.
 */
export function stitchOverlap(prev: readonly Float32Array[], cur: readonly Float32Array[], weights: Float32Array, out: readonly Float32Array[]): void {
  const o = weights.length;
  if (prev.length !== o || cur.length !== o || out.length !== o) {
    throw new OptionError(`stitchOverlap: expected ${o} frames in prev/cur/out, got ${prev.length}/${cur.length}/${out.length}`);
  }
  for (let j = 0; j < o; j++) blendFrame(prev[j], cur[j], weights[j], out[j]);
}
