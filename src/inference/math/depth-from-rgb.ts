import { OptionError } from '../../util/errors.js';
// Parity-critical: the reference's decoder-output-to-depth reduction; guarded by test/depth-session.test.ts and test/vs-reference.test.ts.

/**
 * The reference's depth from the VAE decoder's output: each of the three channels mapped from
 * [-1,1] to [0,1] and clamped, then averaged (`(frames + 1) / 2`, `.clamp(0, 1)`, `.mean(1)`).
 * `rgb` is [n, 3, H, W]; one [H, W] plane per frame comes back.
 */
export function depthFromRgb(rgb: Float32Array, frames: number, plane: number): Float32Array[] {
  if (rgb.length < frames * 3 * plane) throw new OptionError(`decoder output has ${rgb.length} values, expected ${frames}x3x${plane}`);
  const out: Float32Array[] = [];
  for (let i = 0; i < frames; i++) {
    const depth = new Float32Array(plane);
    const base = i * 3 * plane;
    for (let p = 0; p < plane; p++) {
      const r = clamp01(rgb[base + p] * 0.5 + 0.5);
      const g = clamp01(rgb[base + plane + p] * 0.5 + 0.5);
      const b = clamp01(rgb[base + 2 * plane + p] * 0.5 + 0.5);
      depth[p] = (r + g + b) / 3;
    }
    out.push(depth);
  }
  return out;
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}
