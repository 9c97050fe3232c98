// Parity-critical: the reference scheduler's Euler v-prediction step and CFG, in its float32/float64 order; guarded by test/engine-math.test.ts, test/depth-session.test.ts and test/vs-reference.test.ts.
import { cIn, cNoise, cOut, cSkip } from './edm.js';
import { initNoiseSigma, karrasSigmas, KARRAS_RHO, SIGMA_MAX, SIGMA_MIN, toFloat32Sigmas } from './sigmas.js';
import { OptionError } from '../../util/errors.js';

export interface EulerVSamplerOptions {
  readonly steps: number;
  readonly sigmaMin?: number;
  readonly sigmaMax?: number;
  readonly rho?: number;
}

/**
 * Classifier-free guidance: out = uncond + g * (cond - uncond).
 * Elementwise, so `out` may alias either input.
 */
export function applyGuidance(cond: Float32Array, uncond: Float32Array, g: number, out: Float32Array): Float32Array {
  const n = out.length;
  if (cond.length !== n || uncond.length !== n) throw new OptionError('applyGuidance: length mismatch');
  for (let k = 0; k < n; k++) {
    const u = uncond[k];
    out[k] = u + g * (cond[k] - u);
  }
  return out;
}

/**
 * Deterministic Euler sampler for v-prediction with Karras sigmas, i.e. what
 * diffusers' EulerDiscreteScheduler does for the SVD-xt config (spec §3).
 * Stateless between calls: step i is passed explicitly, so one instance can be
 * shared by every window (the reference resets the scheduler per window anyway).
 *
 * All buffers are Float32Array; arithmetic is float64 per element, stored as
 * float32. Every method is elementwise, so `out` may alias `x`.
 */
export class EulerVSampler {
  readonly steps: number;
  /** Noise levels as the reference holds them (float32), length steps + 1, last = 0. */
  readonly sigmas: Float32Array;
  /** UNet `timestep` per step: 0.25 * ln(sigma_i) as float32, length steps. */
  readonly timesteps: Float32Array;
  /** Std of the initial latent noise, sqrt(sigma_0^2 + 1), as float32. */
  readonly initNoiseSigma: number;

  // Per-step coefficients, precomputed once so the hot loops only multiply.
  private readonly cIn: Float64Array;
  private readonly cSkip: Float64Array;
  private readonly cOut: Float64Array;

  constructor({ steps, sigmaMin = SIGMA_MIN, sigmaMax = SIGMA_MAX, rho = KARRAS_RHO }: EulerVSamplerOptions) {
    this.steps = steps;
    this.sigmas = toFloat32Sigmas(karrasSigmas(steps, sigmaMin, sigmaMax, rho));
    this.timesteps = new Float32Array(steps);
    this.cIn = new Float64Array(steps);
    this.cSkip = new Float64Array(steps);
    this.cOut = new Float64Array(steps);
    for (let i = 0; i < steps; i++) {
      const s = this.sigmas[i];
      this.timesteps[i] = cNoise(s);
      this.cIn[i] = cIn(s);
      this.cSkip[i] = cSkip(s);
      this.cOut[i] = cOut(s);
    }
    this.initNoiseSigma = Math.fround(initNoiseSigma(this.sigmas[0]));
  }

  /** Model input for step i: x * c_in(sigma_i). */
  scaleInput(x: Float32Array, i: number, out: Float32Array): Float32Array {
    this.checkStep(i);
    checkSameLength(x, out);
    const c = this.cIn[i];
    for (let k = 0; k < x.length; k++) out[k] = x[k] * c;
    return out;
  }

  /** Denoised estimate D = c_skip * x + c_out * F for step i. */
  denoised(x: Float32Array, modelOut: Float32Array, i: number, out: Float32Array): Float32Array {
    this.checkStep(i);
    checkSameLength(x, out);
    checkSameLength(modelOut, out);
    const a = this.cSkip[i];
    const b = this.cOut[i];
    for (let k = 0; k < x.length; k++) out[k] = a * x[k] + b * modelOut[k];
    return out;
  }

  /**
   * One Euler step: x + (sigma_{i+1} - sigma_i) * (x - D) / sigma_i.
   * On the final step (sigma_{i+1} = 0) this is D, which we return exactly
   * instead of via x - (x - D), which would round.
   */
  step(x: Float32Array, modelOut: Float32Array, i: number, out: Float32Array): Float32Array {
    this.checkStep(i);
    const sigmaNext = this.sigmas[i + 1];
    if (sigmaNext === 0) return this.denoised(x, modelOut, i, out);
    checkSameLength(x, out);
    checkSameLength(modelOut, out);
    const sigma = this.sigmas[i];
    const a = this.cSkip[i];
    const b = this.cOut[i];
    const dtOverSigma = (sigmaNext - sigma) / sigma;
    for (let k = 0; k < x.length; k++) {
      const xk = x[k];
      const d = a * xk + b * modelOut[k];
      out[k] = xk + dtOverSigma * (xk - d);
    }
    return out;
  }

  /** See {@link applyGuidance}. */
  applyGuidance(cond: Float32Array, uncond: Float32Array, g: number, out: Float32Array): Float32Array {
    return applyGuidance(cond, uncond, g, out);
  }

  private checkStep(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.steps) {
      throw new OptionError(`step index ${i} out of range 0..${this.steps - 1}`);
    }
  }
}

function checkSameLength(a: Float32Array, b: Float32Array): void {
  if (a.length !== b.length) throw new OptionError(`buffer length mismatch: ${a.length} vs ${b.length}`);
}
