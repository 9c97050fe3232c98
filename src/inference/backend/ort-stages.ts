import * as ort from 'onnxruntime-node';
import type { LoadedModelPack } from '../pack/load-pack.js';
import { float32ToHalf, halfToFloat32 } from '../math/float16.js';
import { emptyStats, type ModelStages, type StageName, type StageStats } from './model-stages.js';

// The model stages over ONNX Runtime sessions of a model pack. Float16 packs take and return
// half-precision tensors (the VAE encoder stays float32, as the reference encodes in fp32);
// the engine itself always works in float32.

export class OrtStages implements ModelStages {
  readonly stats: StageStats = emptyStats();
  private readonly half: boolean;
  private readonly addedTimeIds: ort.Tensor;

  constructor(private readonly pack: LoadedModelPack) {
    this.half = pack.dtype === 'float16';
    const ids = Float32Array.from(pack.manifest.addedTimeIds);
    this.addedTimeIds = this.half ? new ort.Tensor('float16', float32ToHalf(ids), [1, 3]) : new ort.Tensor('float32', ids, [1, 3]);
  }

  private tensor(data: Float32Array, dims: number[]): ort.Tensor {
    return this.half ? new ort.Tensor('float16', float32ToHalf(data), dims) : new ort.Tensor('float32', data, dims);
  }

  private read(t: ort.Tensor | undefined, what: string): Float32Array {
    if (!t) throw new Error(`${what}: the model returned no output`);
    if (t.type === 'float32') return t.data as Float32Array;
    if (t.type === 'float16') {
      // onnxruntime returns float16 data as Uint16Array bit patterns where there is no Float16Array
      // (Node 20/22), but as a Float16Array of numbers where there is one (Node 24+): convert only bits.
      const data = t.data;
      return data instanceof Uint16Array ? halfToFloat32(data) : Float32Array.from(data as ArrayLike<number>);
    }
    throw new Error(`${what}: unexpected output type ${t.type}`);
  }

  private async run(
    stage: StageName,
    session: ort.InferenceSession,
    feeds: Record<string, ort.Tensor>,
    frames: number,
  ): Promise<ort.InferenceSession.ReturnType> {
    const t0 = performance.now();
    const out = await session.run(feeds);
    this.stats.ms[stage] += performance.now() - t0;
    this.stats.calls[stage]++;
    this.stats.framesIn[stage] += frames;
    return out;
  }

  async encodeImage(pixels: Float32Array, n: number): Promise<Float32Array> {
    const size = this.pack.manifest.imageEncoder.size;
    const out = await this.run('encodeImage', this.pack.sessions.imageEncoder, { pixel_values: this.tensor(pixels, [n, 3, size, size]) }, n);
    return this.read(out.image_embeds, 'image encoder');
  }

  async encodeLatent(pixels: Float32Array, n: number, height: number, width: number): Promise<Float32Array> {
    const out = await this.run('encodeLatent', this.pack.sessions.vaeEncoder, { sample: new ort.Tensor('float32', pixels, [n, 3, height, width]) }, n);
    return this.read(out.latent_mean, 'VAE encoder');
  }

  async denoise(sample: Float32Array, timestep: number, embeddings: Float32Array, frames: number, h: number, w: number): Promise<Float32Array> {
    const c = this.pack.manifest.latentChannels;
    const feeds = {
      sample: this.tensor(sample, [1, frames, 2 * c, h, w]),
      timestep: this.tensor(Float32Array.of(timestep), [1]),
      encoder_hidden_states: this.tensor(embeddings, [1, frames, embeddings.length / frames]),
      added_time_ids: this.addedTimeIds,
    };
    const out = await this.run('denoise', this.pack.sessions.unet, feeds, frames);
    return this.read(out[this.pack.unetOutputName], 'UNet');
  }

  async decode(latents: Float32Array, frames: number, h: number, w: number): Promise<Float32Array> {
    const c = this.pack.manifest.latentChannels;
    const out = await this.run('decode', this.pack.sessions.vaeDecoder, { latent: this.tensor(latents, [frames, c, h, w]) }, frames);
    return this.read(out.sample, 'VAE decoder');
  }
}
