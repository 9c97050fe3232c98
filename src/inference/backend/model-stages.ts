// The four model stages, one model run per call, as plain async functions over flat float32
// tensors: what an in-process backend (stages-backend.ts) drives, one UNet call per denoising
// step. The ONNX Runtime implementation is ort-stages.ts; tests use fakes written in JS.

export interface ModelStages {
  /** [n,3,224,224] CLIP-normalised -> [n,D] image embeddings. */
  encodeImage(pixels: Float32Array, n: number): Promise<Float32Array>;
  /** [n,3,H,W] in [-1,1] (noise-augmented) -> [n,4,H/8,W/8] latent mean, unscaled. */
  encodeLatent(pixels: Float32Array, n: number, height: number, width: number): Promise<Float32Array>;
  /** sample [1,T,8,h,w], timestep, embeddings [1,T,D] -> [1,T,4,h,w]. */
  denoise(sample: Float32Array, timestep: number, embeddings: Float32Array, frames: number, h: number, w: number): Promise<Float32Array>;
  /** [T,4,h,w] latents (already divided by the scaling factor) -> [T,3,H,W] in about [-1,1]. */
  decode(latents: Float32Array, frames: number, h: number, w: number): Promise<Float32Array>;
  /**
   * Optional: decode and reduce to depth in one call (math/depth-from-rgb.ts), one [H,W] plane per
   * frame, so that a decoder in another worker hands back a third of the data. Used instead of
   * decode() when present.
   */
  decodeDepth?(latents: Float32Array, frames: number, h: number, w: number): Promise<Float32Array[]>;
  /** Per-stage timing of the model runs, where the implementation keeps it. */
  readonly stats?: StageStats;
}

/** The four model stages. */
export type StageName = 'encodeImage' | 'encodeLatent' | 'denoise' | 'decode';

/** Per-stage call counts and time spent in model runs, for the benchmark. */
export interface StageStats {
  calls: Record<StageName, number>;
  framesIn: Record<StageName, number>;
  ms: Record<StageName, number>;
}

export function emptyStats(): StageStats {
  const z = () => ({ encodeImage: 0, encodeLatent: 0, denoise: 0, decode: 0 });
  return { calls: z(), framesIn: z(), ms: z() };
}
