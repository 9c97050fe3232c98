import { EulerVSampler } from '../math/euler-sampler.js';
import { depthFromRgb } from '../math/depth-from-rgb.js';
import { denoiseWindow, type UnetRun } from './denoise-window.js';
import { emptyStats, type ModelStages, type StageStats } from './model-stages.js';
import type { ChunkDecoder, EncodedFrames, EncoderInputs, ModelBackend, SamplerSettings, WindowRequest } from './model-backend.js';

// The in-process backend: the window-level calls run on ModelStages (one model run per call;
// ort-stages.ts for ONNX Runtime), the sampler loop in this thread. `decoder` replaces the
// stages' decoder (engine/remote-decoder.ts: the VAE decoder in another worker).

export class StagesBackend implements ModelBackend {
  /** One sampler per settings seen (a session keeps its settings, so this holds one or two). */
  private readonly samplers = new Map<string, EulerVSampler>();
  private readonly unet: UnetRun = (...run) => this.stages.denoise(...run);

  constructor(
    readonly stages: ModelStages,
    private readonly decoder?: ChunkDecoder,
  ) {}

  async encodeFrames(inputs: EncoderInputs, n: number, height: number, width: number): Promise<EncodedFrames> {
    const embeddings = await this.stages.encodeImage(inputs.clip, n);
    const latents = await this.stages.encodeLatent(inputs.vae, n, height, width);
    return { embeddings, latents };
  }

  denoiseWindow(req: WindowRequest): Promise<Float32Array> {
    return denoiseWindow(this.unet, this.sampler(req.sampler), req);
  }

  decodeChunk(latents: Float32Array, frames: number, h: number, w: number): Promise<Float32Array[]> {
    if (this.decoder) return this.decoder.decodeChunk(latents, frames, h, w);
    if (this.stages.decodeDepth) return this.stages.decodeDepth(latents, frames, h, w);
    return this.stages.decode(latents, frames, h, w).then((rgb) => depthFromRgb(rgb, frames, rgb.length / (3 * frames)));
  }

  stats(): StageStats {
    return this.stages.stats ?? emptyStats();
  }

  private sampler({ steps, sigmaMin, sigmaMax }: SamplerSettings): EulerVSampler {
    const key = `${steps}/${sigmaMin}/${sigmaMax}`;
    let s = this.samplers.get(key);
    if (!s) this.samplers.set(key, (s = new EulerVSampler({ steps, sigmaMin, sigmaMax })));
    return s;
  }
}

/** A backend as is, or per-step stages run in process. */
export function asBackend(models: ModelBackend | ModelStages): ModelBackend {
  return 'denoiseWindow' in models ? models : new StagesBackend(models);
}
