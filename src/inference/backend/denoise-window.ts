// Parity-critical: the reference's per-window sampler loop (UNet input layout, guidance pass); guarded by test/depth-session.test.ts and test/vs-reference.test.ts.
import type { EulerVSampler } from '../math/euler-sampler.js';
import type { WindowRequest } from './model-backend.js';

/** One UNet run: sample [1,T,2C,h,w], timestep, embeddings [1,T,D] -> [1,T,C,h,w]. */
export type UnetRun = (sample: Float32Array, timestep: number, embeddings: Float32Array, frames: number, h: number, w: number) => Promise<Float32Array>;

/**
 * Denoise one window for all of the sampler's steps (spec §3): per step the UNet sees
 * [x * c_in, condition latents] with the embeddings, and with guidance > 1 a second pass with the
 * condition latents and embeddings zeroed. `sampler` must have `req.sampler`'s settings. x is
 * denoised in place and returned.
 */
export async function denoiseWindow(unet: UnetRun, sampler: EulerVSampler, req: WindowRequest): Promise<Float32Array> {
  const { x, condLatents, embeddings, frames, h, w } = req;
  const { guidance } = req.sampler;
  const L = x.length / frames;
  const guided = guidance > 1;
  const zeroEmbeddings = guided ? new Float32Array(embeddings.length) : null;
  const sample = new Float32Array(frames * 2 * L);
  const scaled = new Float32Array(frames * L);
  for (let s = 0; s < sampler.steps; s++) {
    sampler.scaleInput(x, s, scaled);
    fillSample(sample, scaled, condLatents, frames, L);
    let pred = await unet(sample, sampler.timesteps[s], embeddings, frames, h, w);
    if (guided) {
      fillSample(sample, scaled, null, frames, L);
      const uncond = await unet(sample, sampler.timesteps[s], zeroEmbeddings!, frames, h, w);
      pred = sampler.applyGuidance(pred, uncond, guidance, new Float32Array(pred.length));
    }
    sampler.step(x, pred, s, x);
  }
  return x;
}

/** UNet input [1,T,2C,h,w]: per frame, the scaled noisy latent (channels 0..C-1) then the condition latent (zeros for the unconditional pass). */
function fillSample(sample: Float32Array, scaled: Float32Array, cond: readonly Float32Array[] | null, frames: number, L: number): void {
  for (let i = 0; i < frames; i++) {
    sample.set(scaled.subarray(i * L, (i + 1) * L), i * 2 * L);
    if (cond) sample.set(cond[i], i * 2 * L + L);
    else sample.fill(0, i * 2 * L + L, (i + 1) * 2 * L);
  }
}
