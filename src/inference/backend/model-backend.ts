import type { StageStats } from './model-stages.js';

// The seam between the engine and whatever runs the models. DepthSession (engine/) owns
// everything the reference does between model runs that spans windows: window layout, noise,
// the anchored overlap, stitching, decode chunking. A backend gets work a window at a time:
//   encodeFrames:  encoder inputs of n frames -> their conditioning (embeddings, latents);
//   denoiseWindow: a window's initial latents + conditioning -> its denoised latents, all S
//                  sampler steps (and the guidance pass) in one call;
//   decodeChunk:   a chunk of stitched latents -> one depth plane per frame.
// So a remote backend costs one round trip per window, not one per step.
//
// Implementations:
//   - stages-backend.ts: in process, over ModelStages (ort-stages.ts: ONNX Runtime today), the
//     sampler loop in denoise-window.ts; its decoder may be elsewhere (engine/remote-decoder.ts:
//     the VAE decoder in the frame worker, beside the next window's UNet).
//   - A pool shared by several streams implements this interface and queues the calls of its
//     streams onto its model sessions; the engine workers take one as they take StagesBackend today.
//   - A remote server (e.g. Triton over the KServe v2 protocol) maps each call onto one infer
//     request: encodeFrames to the two encoder models, denoiseWindow to a server-side loop
//     (an ensemble or Python/BLS model that runs denoise-window.ts's loop with these settings),
//     decodeChunk to the decoder plus the depth reduction. Not implemented here.

/** The encoders' inputs of n frames (engine/frame-prep.ts makes them). */
export interface EncoderInputs {
  /** [n,3,S,S] CLIP-normalised clean frames. */
  readonly clip: Float32Array;
  /** [n,3,H,W] in [-1,1], noise-augmented. */
  readonly vae: Float32Array;
}

export interface EncodedFrames {
  /** [n,D] image embeddings. */
  readonly embeddings: Float32Array;
  /** [n,C,h,w] VAE latent means, unscaled. */
  readonly latents: Float32Array;
}

/** The sampler a window runs (spec §3): plain values, so that they cross a process boundary. */
export interface SamplerSettings {
  readonly steps: number;
  readonly sigmaMin: number;
  readonly sigmaMax: number;
  /** Classifier-free guidance scale; > 1 adds an unconditional UNet pass per step. */
  readonly guidance: number;
}

export interface WindowRequest {
  /** [T,C,h,w] initial latents (noise, the overlap anchored to the previous window). The backend may denoise it in place. */
  readonly x: Float32Array;
  /** T condition latents [C,h,w] (the VAE encoder's, unscaled). */
  readonly condLatents: readonly Float32Array[];
  /** [T,D] image embeddings. */
  readonly embeddings: Float32Array;
  readonly frames: number;
  /** Latent height and width. */
  readonly h: number;
  readonly w: number;
  readonly sampler: SamplerSettings;
}

/** Turns a chunk of stitched latents into depth: [T,C,h,w] (already divided by the scaling factor) -> T planes [H,W] in [0,1]. */
export interface ChunkDecoder {
  decodeChunk(latents: Float32Array, frames: number, h: number, w: number): Promise<Float32Array[]>;
}

export interface ModelBackend extends ChunkDecoder {
  encodeFrames(inputs: EncoderInputs, n: number, height: number, width: number): Promise<EncodedFrames>;
  /** The window's denoised latents [T,C,h,w] (scaled latent space). */
  denoiseWindow(req: WindowRequest): Promise<Float32Array>;
  /** Time spent in model runs per stage (the benchmark's profile), as far as this backend sees them. */
  stats(): StageStats;
}
