// Parity-critical: the reference's two random draws (pixel noise, one window-sized latent block); guarded by test/depth-session.test.ts and test/vs-reference.test.ts (external noise).
import { Prng, PrngStream } from '../math/prng.js';
import { OptionError } from '../../util/errors.js';

// Where the two random draws of the reference come from: the VAE-input pixel noise (one
// [3,H,W] block per frame) and ONE window-sized block of initial latent noise. Seeded by
// default; external arrays (infer --noise) make runs comparable with another implementation.

export interface NoiseSource {
  /** Unit Gaussian noise for frame `index`, [3,H,W], written into `out`. */
  pixel(index: number, out: Float32Array): void;
  /** The unit-variance latent block [window,4,h,w] (frames >= the window actually used). */
  latentBlock(frames: number, frameSize: number): Float32Array;
}

export class SeededNoise implements NoiseSource {
  private readonly pixelRng: Prng;
  private nextPixel = 0;
  private block: Float32Array | null = null;

  constructor(private readonly seed: number) {
    this.pixelRng = new Prng(seed, PrngStream.PixelNoise);
  }

  pixel(index: number, out: Float32Array): void {
    if (index !== this.nextPixel) throw new Error(`pixel noise must be drawn in frame order (asked for ${index}, next is ${this.nextPixel})`);
    this.pixelRng.fillNormal(out);
    this.nextPixel++;
  }

  latentBlock(frames: number, frameSize: number): Float32Array {
    if (!this.block || this.block.length !== frames * frameSize) {
      this.block = new Prng(this.seed, PrngStream.LatentNoise).fillNormal(new Float32Array(frames * frameSize));
    }
    return this.block;
  }
}

/** Noise given as arrays: `pixel` [N,3,H,W] and `latent` [1,W,4,h,w] (spec section 11 layout). */
export class ExternalNoise implements NoiseSource {
  constructor(
    private readonly pixels: { data: Float32Array; frames: number; frameSize: number },
    private readonly latent: { data: Float32Array; frames: number; frameSize: number },
  ) {}

  pixel(index: number, out: Float32Array): void {
    if (out.length !== this.pixels.frameSize)
      throw new OptionError(`external pixel noise has ${this.pixels.frameSize} values per frame, the model input needs ${out.length}`);
    if (index >= this.pixels.frames) throw new OptionError(`external pixel noise has ${this.pixels.frames} frames; frame ${index} needs one`);
    out.set(this.pixels.data.subarray(index * out.length, (index + 1) * out.length));
  }

  latentBlock(frames: number, frameSize: number): Float32Array {
    if (frameSize !== this.latent.frameSize)
      throw new OptionError(`external latent noise has ${this.latent.frameSize} values per frame, the model needs ${frameSize}`);
    if (this.latent.frames < frames) throw new OptionError(`external latent noise has ${this.latent.frames} frames, the window needs ${frames}`);
    return this.latent.data.subarray(0, frames * frameSize);
  }
}

/** External noise as it arrives with a stream's open request (infer --noise). */
export interface ExternalNoiseArrays {
  readonly pixel: Float32Array;
  readonly pixelFrames: number;
  readonly latent: Float32Array;
  readonly latentFrames: number;
}

/**
 * The noise of one sequence: seeded, or the external arrays (checked against the model input
 * size). Used by the engine worker (latent noise) and the frame-preparation worker (pixel noise).
 */
export function sequenceNoise(
  seed: number,
  external: ExternalNoiseArrays | undefined,
  res: { readonly height: number; readonly width: number },
  latentSize: number,
): NoiseSource {
  if (!external) return new SeededNoise(seed);
  const pixelSize = 3 * res.height * res.width;
  if (external.pixel.length !== external.pixelFrames * pixelSize) {
    throw new OptionError(
      `noise "pixel" must be [N,3,${res.height},${res.width}] for this input; got ${external.pixel.length} values for ${external.pixelFrames} frames`,
    );
  }
  return new ExternalNoise(
    { data: external.pixel, frames: external.pixelFrames, frameSize: pixelSize },
    { data: external.latent, frames: external.latentFrames, frameSize: latentSize },
  );
}
