import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { readPackManifest, type PackManifest } from '../pack/manifest.js';
import { loadModelPack, type LoadedModelPack } from '../pack/load-pack.js';
import { OrtStages } from '../backend/ort-stages.js';
import { StagesBackend } from '../backend/stages-backend.js';
import { FramePrep, emptyPrepTimes, type PrepTimes } from './frame-prep.js';
import { sequenceSetup } from './session-config.js';
import { RoundRobinQueues } from './round-robin.js';
import type { DecodeReply, DecodeRequest, FromWorker, OpenRequest, StreamRequest, ToWorker } from './protocol.js';

// The frame worker does the work at both ends of the inference worker, on a thread of its own,
// while the inference worker is inside a model run (ONNX Runtime's run holds its thread):
//   - every stream message passes through it on its way to the inference worker, in order, and
//     frames leave it as their encoders' inputs (frame-prep.ts);
//   - it holds the pack's VAE decoder and turns the stitched latents of finished chunks into
//     depth (the inference worker's RemoteDecoder asks), beside the UNet of the next window.

export interface FrameWorkerData {
  readonly packDir: string;
  /** Towards the inference worker. */
  readonly engine: MessagePort;
}

interface StreamPrep {
  readonly open: OpenRequest;
  prep: FramePrep | null;
  size: { width: number; height: number } | null;
  index: number;
  usedExternalNoise: boolean;
}

const port = parentPort!;
const { packDir, engine } = workerData as FrameWorkerData;
const manifest: Promise<PackManifest> = readPackManifest(packDir);
manifest.catch(() => {}); // the inference worker's load reports a bad pack; frames then fail below
const streams = new Map<number, StreamPrep>();
const totals: PrepTimes = emptyPrepTimes();
const queues = new RoundRobinQueues<StreamRequest>();
let pumping = false;

let decoderPack: LoadedModelPack | null = null;
let decoder: StagesBackend | null = null;

/** A chunk of latents from the inference worker: decoded to depth planes and sent back. */
async function decode(req: DecodeRequest): Promise<void> {
  let reply: DecodeReply;
  try {
    if (!decoder) throw new Error('the frame worker has no decoder loaded');
    const depth = await decoder.decodeChunk(req.latents, req.frames, req.h, req.w);
    reply = { type: 'decoded', id: req.id, depth };
    engine.postMessage(
      reply,
      depth.map((d) => d.buffer as ArrayBuffer),
    );
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    reply = { type: 'decode-failed', id: req.id, name: err.name, message: err.message };
    engine.postMessage(reply);
  }
}
engine.on('message', (m: DecodeRequest) => {
  if (m.type === 'decode') void decode(m);
});

function forward(msg: StreamRequest, transfer: ArrayBuffer[] = []): void {
  engine.postMessage(msg, transfer);
}

function addTimes(p: FramePrep | null): void {
  if (!p) return;
  for (const k of Object.keys(totals) as (keyof PrepTimes)[]) totals[k] += p.times[k];
  Object.assign(p.times, emptyPrepTimes());
}

async function handle(msg: StreamRequest): Promise<void> {
  const s = streams.get(msg.stream);
  switch (msg.type) {
    case 'open':
      streams.set(msg.stream, { open: msg, prep: null, size: null, index: 0, usedExternalNoise: false });
      // The pixel noise is used here; the inference worker needs the latent block only.
      if (msg.noise) {
        const latent = msg.noise.latent;
        forward(
          { ...msg, noise: { ...msg.noise, pixel: new Float32Array(0), pixelFrames: 0 } },
          latent.byteLength === latent.buffer.byteLength ? [latent.buffer as ArrayBuffer] : [],
        );
      } else forward(msg);
      return;
    case 'frame': {
      if (!s) return forward(msg); // the inference worker reports the unknown stream
      try {
        if (!s.prep) await startSequence(s, msg.width, msg.height);
        if (msg.width !== s.size!.width || msg.height !== s.size!.height) {
          throw new Error(`frame size changed from ${s.size!.width}x${s.size!.height} to ${msg.width}x${msg.height} within one sequence`);
        }
        const prepared = s.prep!.prepareRgb(msg.rgb, msg.width, msg.height, msg.stride, s.index++);
        forward({ type: 'prepared', stream: msg.stream, width: msg.width, height: msg.height, prepared, ...(msg.fill ? { fill: msg.fill } : {}) }, [
          prepared.clip.buffer as ArrayBuffer,
          prepared.vae.buffer as ArrayBuffer,
        ]);
      } catch (e) {
        const err = e instanceof Error ? e : new Error(String(e));
        forward({ type: 'prep-failed', stream: msg.stream, name: err.name, message: err.message });
      }
      return;
    }
    case 'end':
      if (s) {
        addTimes(s.prep);
        s.prep = null; // the next frame starts a new sequence, as in the inference worker
        s.size = null;
        s.index = 0;
      }
      forward(msg);
      return;
    case 'release':
      addTimes(s?.prep ?? null);
      streams.delete(msg.stream);
      forward(msg);
      return;
    default:
      forward(msg);
  }
}

async function startSequence(s: StreamPrep, width: number, height: number): Promise<void> {
  const m = await manifest;
  if (s.open.noise) {
    if (s.usedExternalNoise) throw new Error('external noise covers one sequence only');
    s.usedExternalNoise = true;
  }
  const { cfg, noise } = sequenceSetup(m, s.open.choices, s.open.noise, height, width);
  s.prep = new FramePrep(cfg, noise);
  s.size = { width, height };
  s.index = 0;
}

port.on('message', (msg: ToWorker) => {
  if (msg.type === 'load') {
    loadModelPack(msg.packDir, { device: msg.device, intraOpNumThreads: msg.threads, only: ['vaeDecoder'] }).then(
      (p) => {
        decoderPack = p;
        decoder = new StagesBackend(new OrtStages(p));
        port.postMessage({ type: 'decoder-loaded' } satisfies FromWorker);
      },
      (e: unknown) => {
        const err = e instanceof Error ? e : new Error(String(e));
        port.postMessage({ type: 'error', message: err.message, name: err.name } satisfies FromWorker);
      },
    );
    return;
  }
  if (msg.type === 'stats') {
    const times = { ...totals };
    for (const s of streams.values()) if (s.prep) for (const k of Object.keys(times) as (keyof PrepTimes)[]) times[k] += s.prep.times[k];
    const d = decoder?.stats();
    port.postMessage({
      type: 'prep-stats',
      times,
      decoder: { ms: d?.ms.decode ?? 0, calls: d?.calls.decode ?? 0, frames: d?.framesIn.decode ?? 0 },
    } satisfies FromWorker);
    return;
  }
  if (msg.type === 'close') {
    void (decoderPack?.release() ?? Promise.resolve()).finally(() => {
      engine.close();
      port.close();
    });
    return;
  }
  if (!('stream' in msg)) return;
  queues.add(msg.stream, msg);
  if (!pumping) {
    pumping = true;
    setImmediate(() => void pump()); // let a burst of messages queue up first, so turns are fair
  }
});

/** Streams take turns a frame at a time (as the inference worker's take them a window at a time), each stream's messages in order. */
async function pump(): Promise<void> {
  for (let id = queues.next(); id !== null; id = queues.next()) {
    const msg = queues.take(id)!;
    try {
      await handle(msg);
    } catch (e) {
      port.postMessage({
        type: 'error',
        message: `frame preparation failed: ${e instanceof Error ? e.message : String(e)}`,
        name: 'Error',
      } satisfies FromWorker);
    }
    if (msg.type === 'frame' || queues.pending(id) === 0) queues.endTurn(id);
    if (msg.type === 'release') queues.remove(id);
    // Take in the messages that arrived meanwhile before the next turn (else one stream's burst would go first whole).
    if (msg.type === 'frame') await new Promise<void>((r) => setImmediate(r));
  }
  pumping = false;
}
