// Parity-critical: the encoders' inputs (clean frames for CLIP, 0.02 pixel noise for the VAE) as the reference makes them; guarded by test/depth-session.test.ts and test/vs-reference.test.ts.
import { ClipPreprocessor } from '../image/clip-preprocess.js';
import { resizeBilinearRGB } from '../image/resize.js';
import type { NoiseSource } from './noise-source.js';

// The per-frame work that depends on nothing but the frame and the noise: the resize to the
// model's resolution, CLIP's preprocessing of the clean frame and the VAE input (the frame plus
// the reference's 0.02 pixel-noise augmentation). It runs in the frame-preparation worker, beside
// the model runs of the engine worker; DepthSession.push runs the same code inline.

/** The encoders' inputs for one frame. */
export interface PreparedFrame {
  /** [3, clipSize, clipSize], CLIP-normalised clean frame: the image encoder's input. */
  readonly clip: Float32Array;
  /** [3, H, W] frame + noiseAugStrength * N(0,1) pixel noise: the VAE encoder's input. */
  readonly vae: Float32Array;
}

export interface FramePrepConfig {
  readonly height: number;
  readonly width: number;
  readonly clipSize: number;
  readonly noiseAugStrength: number;
}

/** Milliseconds spent per step (the benchmark's profile). */
export interface PrepTimes {
  resize: number;
  clip: number;
  noise: number;
  frames: number;
}

export function emptyPrepTimes(): PrepTimes {
  return { resize: 0, clip: 0, noise: 0, frames: 0 };
}

export class FramePrep {
  readonly times = emptyPrepTimes();
  private readonly clipper: ClipPreprocessor;
  private readonly noiseBuf: Float32Array;
  private readonly frameBuf: Float32Array;

  constructor(
    private readonly cfg: FramePrepConfig,
    private readonly noise: NoiseSource,
  ) {
    this.clipper = new ClipPreprocessor(cfg.height, cfg.width, cfg.clipSize, cfg.clipSize);
    this.noiseBuf = new Float32Array(3 * cfg.height * cfg.width);
    this.frameBuf = new Float32Array(3 * cfg.height * cfg.width);
  }

  /** Packed (or row-strided) RGB of any size -> the encoders' inputs for frame `index`. */
  prepareRgb(rgb: Uint8Array, width: number, height: number, stride: number, index: number): PreparedFrame {
    const t0 = performance.now();
    resizeBilinearRGB(rgb, width, height, stride, this.cfg.width, this.cfg.height, this.frameBuf);
    this.times.resize += performance.now() - t0;
    return this.prepare(this.frameBuf, index);
  }

  /** A CHW float32 frame in [-1,1] at the model's resolution -> the encoders' inputs (new arrays: they may be transferred). */
  prepare(frame: Float32Array, index: number): PreparedFrame {
    const t0 = performance.now();
    // CLIP sees the clean frame; the VAE sees the frame plus 0.02 pixel noise.
    const clip = this.clipper.run(frame, new Float32Array(3 * this.cfg.clipSize * this.cfg.clipSize), 0);
    const t1 = performance.now();
    this.noise.pixel(index, this.noiseBuf);
    const aug = this.cfg.noiseAugStrength;
    const n = this.noiseBuf;
    const vae = new Float32Array(frame.length);
    for (let i = 0; i < vae.length; i++) vae[i] = frame[i] + aug * n[i];
    const t2 = performance.now();
    this.times.clip += t1 - t0;
    this.times.noise += t2 - t1;
    this.times.frames++;
    return { clip, vae };
  }
}
