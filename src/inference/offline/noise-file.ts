import { readNpz } from '../../io/npz-writer.js';
import type { OpenRequest } from '../engine/protocol.js';

/**
 * Externally supplied noise (`infer --noise FILE.npz`), the two draws the reference makes:
 * `pixel` [N,3,H,W] (VAE-input noise, unit variance) and `latent` [1,W,4,H/8,W/8] (one
 * window-sized block of initial latent noise, unit variance).
 */
export async function loadNoiseFile(path: string): Promise<NonNullable<OpenRequest['noise']>> {
  let arrays;
  try {
    arrays = await readNpz(path);
  } catch (e) {
    throw new Error(`cannot read noise file ${path}: ${(e as Error).message}`, { cause: e });
  }
  const pixel = arrays.pixel;
  const latent = arrays.latent;
  if (!pixel || !latent)
    throw new Error(`noise file ${path} must hold arrays "pixel" [N,3,H,W] and "latent" [1,W,4,h,w] (found: ${Object.keys(arrays).join(', ') || 'none'})`);
  if (pixel.shape.length !== 4 || pixel.shape[1] !== 3) throw new Error(`noise file ${path}: "pixel" must be [N,3,H,W], got [${pixel.shape.join(',')}]`);
  if (latent.shape.length !== 5 || latent.shape[0] !== 1) throw new Error(`noise file ${path}: "latent" must be [1,W,4,h,w], got [${latent.shape.join(',')}]`);
  // float32 arrays as they are (no per-element copy); they move to the workers without a copy.
  const f32 = (d: ArrayLike<number>) => (d instanceof Float32Array ? d : Float32Array.from(d));
  return {
    pixel: f32(pixel.data as ArrayLike<number>),
    pixelFrames: pixel.shape[0],
    latent: f32(latent.data as ArrayLike<number>),
    latentFrames: latent.shape[1],
  };
}
