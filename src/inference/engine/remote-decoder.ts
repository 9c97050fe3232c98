import type { MessagePort } from 'node:worker_threads';
import type { OrtStages } from './ort-stages.js';
import type { ModelStages } from './stages.js';
import type { DecodeReply, DecodeRequest } from './protocol.js';

// The inference worker's stages when the VAE decoder lives in the frame worker: the encoders and
// the UNet run here, decodes are requests over the port between the two workers. A decode thus
// runs beside the next window's UNet instead of after it (two cores, two ONNX Runtime sessions
// busy at once; one worker's run holds its thread, so one worker cannot do both).

export class SplitStages implements ModelStages {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (d: Float32Array[]) => void; reject: (e: Error) => void }>();

  constructor(
    private readonly local: OrtStages,
    private readonly port: MessagePort,
    private readonly downsample: number,
  ) {}

  encodeImage(pixels: Float32Array, n: number): Promise<Float32Array> {
    return this.local.encodeImage(pixels, n);
  }

  encodeLatent(pixels: Float32Array, n: number, height: number, width: number): Promise<Float32Array> {
    return this.local.encodeLatent(pixels, n, height, width);
  }

  denoise(sample: Float32Array, timestep: number, embeddings: Float32Array, frames: number, h: number, w: number): Promise<Float32Array> {
    return this.local.denoise(sample, timestep, embeddings, frames, h, w);
  }

  decode(): Promise<Float32Array> {
    return Promise.reject(new Error('internal: the decoder runs in the frame worker (use decodeDepth)'));
  }

  decodeDepth(latents: Float32Array, frames: number, h: number, w: number): Promise<Float32Array[]> {
    const id = this.nextId++;
    const plane = h * w * this.downsample * this.downsample;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.port.postMessage({ type: 'decode', id, latents, frames, h, w, plane } satisfies DecodeRequest, [latents.buffer as ArrayBuffer]);
    });
  }

  /** A reply from the frame worker. */
  receive(m: DecodeReply): void {
    const w = this.waiting.get(m.id);
    if (!w) return;
    this.waiting.delete(m.id);
    if (m.type === 'decoded') w.resolve(m.depth);
    else w.reject(Object.assign(new Error(`VAE decoder: ${m.message}`), { name: m.name }));
  }
}
