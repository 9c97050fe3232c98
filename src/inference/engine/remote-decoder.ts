import type { MessagePort } from 'node:worker_threads';
import type { ChunkDecoder } from '../backend/model-backend.js';
import type { DecodeReply, DecodeRequest } from './protocol.js';

// The inference worker's decoder when the VAE decoder lives in the frame worker: the encoders and
// the UNet run in the inference worker (StagesBackend), decodes are requests over the port between
// the two workers. A decode thus runs beside the next window's UNet instead of after it (two cores,
// two ONNX Runtime sessions busy at once; one worker's run holds its thread, so one worker cannot do both).

export class RemoteDecoder implements ChunkDecoder {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (d: Float32Array[]) => void; reject: (e: Error) => void }>();

  constructor(private readonly port: MessagePort) {}

  decodeChunk(latents: Float32Array, frames: number, h: number, w: number): Promise<Float32Array[]> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.port.postMessage({ type: 'decode', id, latents, frames, h, w } satisfies DecodeRequest, [latents.buffer as ArrayBuffer]);
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
