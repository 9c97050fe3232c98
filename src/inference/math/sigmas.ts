import { OptionError } from '../../util/errors.js';
// Parity-critical: the Karras schedule as the reference scheduler holds it (float32); guarded by test/engine-math.test.ts (spec's numbers) and test/vs-reference.test.ts.

/** SVD-xt scheduler defaults (spec §3). */
export const SIGMA_MIN = 0.002;
export const SIGMA_MAX = 700;
export const KARRAS_RHO = 7;

/**
 * Karras et al. (2022) noise levels for `steps` sampling steps, plus a trailing 0
 * (final_sigmas_type "zero"): length steps + 1. Computed in float64 like the
 * reference (numpy); steps = 1 gives [sigmaMax, 0].
 */
export function karrasSigmas(steps: number, sigmaMin = SIGMA_MIN, sigmaMax = SIGMA_MAX, rho = KARRAS_RHO): Float64Array {
  if (!Number.isInteger(steps) || steps < 1) throw new OptionError(`steps must be an integer >= 1, got ${steps}`);
  if (!(sigmaMin > 0 && sigmaMax > sigmaMin)) throw new OptionError(`need 0 < sigmaMin < sigmaMax, got ${sigmaMin}, ${sigmaMax}`);
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  const out = new Float64Array(steps + 1);
  for (let i = 0; i < steps; i++) {
    // numpy's linspace(0, 1, n): i * (1 / (n - 1)), endpoint forced to exactly 1, [0] for n = 1.
    const ramp = steps === 1 ? 0 : i === steps - 1 ? 1 : i * (1 / (steps - 1));
    out[i] = (maxInv + ramp * (minInv - maxInv)) ** rho;
  }
  out[steps] = 0;
  return out;
}

/**
 * The same schedule as the reference scheduler actually holds it: a float32
 * tensor. Every per-step quantity (c_in, c_noise, Euler dt) starts from these.
 */
export function toFloat32Sigmas(sigmas: Float64Array): Float32Array {
  return Float32Array.from(sigmas);
}

/** Std of the initial latent noise: sqrt(sigmaMax^2 + 1) ("leading" spacing). 700.000714 for the default. */
export function initNoiseSigma(sigmaMax = SIGMA_MAX): number {
  return Math.sqrt(sigmaMax * sigmaMax + 1);
}
