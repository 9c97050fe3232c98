import { OptionError } from '../../util/errors.js';
// Parity-critical: the reference's float32 op order for a window's initial latents (spec §4, §11); guarded by test/engine-math.test.ts and test/depth-session.test.ts.

/**
 * Initial latents of one window frame (spec §4, §11). The reference holds the noise block
 * already scaled, Z = unit * init_noise_sigma (float32); a frame outside the overlap starts as Z,
 * an overlap frame as the previous window's result anchored by sigma_0 noise:
 * prev + (Z / init_noise_sigma) * sigmas[0], each op rounded to float32 as torch does.
 */

const f32 = Math.fround;

/** out = unit * initSigma: pure noise at the first noise level. */
export function noiseFrame(unit: Float32Array, initSigma: number, out: Float32Array): Float32Array {
  const n = out.length;
  if (unit.length !== n) throw new OptionError('noiseFrame: length mismatch');
  for (let j = 0; j < n; j++) out[j] = unit[j] * initSigma;
  return out;
}

/** out = prev + f32(f32(f32(unit * initSigma) / initSigma) * sigma0): the noise-anchored overlap frame. */
export function anchoredOverlapFrame(prev: Float32Array, unit: Float32Array, initSigma: number, sigma0: number, out: Float32Array): Float32Array {
  const n = out.length;
  if (prev.length !== n || unit.length !== n) throw new OptionError('anchoredOverlapFrame: length mismatch');
  for (let j = 0; j < n; j++) out[j] = prev[j] + f32(f32(f32(unit[j] * initSigma) / initSigma) * sigma0);
  return out;
}
