// Parity-critical: the EDM preconditioning factors and the UNet timestep; guarded by test/engine-math.test.ts and test/vs-reference.test.ts.

/**
 * EDM preconditioning for v-prediction with sigma_data = 1 (spec §3). These are
 * exactly the factors diffusers' EulerDiscreteScheduler applies for
 * prediction_type "v_prediction": D(x) = cSkip * x + cOut * F(cIn * x, cNoise).
 */

/** Scale of the model input: 1 / sqrt(sigma^2 + 1). */
export function cIn(sigma: number): number {
  return 1 / Math.sqrt(sigma * sigma + 1);
}

/** Weight of the noisy sample in the denoised estimate: 1 / (sigma^2 + 1). */
export function cSkip(sigma: number): number {
  return 1 / (sigma * sigma + 1);
}

/** Weight of the network output in the denoised estimate: -sigma / sqrt(sigma^2 + 1). */
export function cOut(sigma: number): number {
  return -sigma / Math.sqrt(sigma * sigma + 1);
}

/** Continuous timestep the UNet receives: 0.25 * ln(sigma). */
export function cNoise(sigma: number): number {
  return 0.25 * Math.log(sigma);
}
