import { parentPort } from 'node:worker_threads';
import { loadModelPack, type LoadedModelPack } from '../pack/load-pack.js';
import { OrtStages } from './ort-stages.js';
import { emptyStats } from './stages.js';
import { DepthSession, type SessionOutput } from './depth-session.js';
import { ExternalNoise, SeededNoise, type NoiseSource } from './noise-source.js';
import { resolveResolution, sessionConfig } from './session-config.js';
import { resizeBilinearRGB } from '../image/resize.js';
import { LiveNormaliser } from '../live/live-normaliser.js';
import { lerpDepth } from '../live/interpolate.js';
import type { FromWorker, OpenRequest, ToWorker, WorkerDepth } from './protocol.js';

// The inference worker: owns the ONNX sessions and one DepthSession at a time, so the main
// thread (GStreamer, HTTP, WebSocket) never blocks on a model run. All per-pixel work (resize,
// CLIP preprocessing, noise, depth reduction) happens here too. Messages are handled strictly
// in order; a new frame after `end` starts a new sequence.

const port = parentPort;
if (!port) throw new Error('engine-worker must run in a worker thread');

let pack: LoadedModelPack | null = null;
let stages: OrtStages | null = null;
let open: OpenRequest | null = null;
let session: DepthSession | null = null;
let frameBuf: Float32Array | null = null;
let inputSize: { width: number; height: number } | null = null;
let usedExternalNoise = false;
let live: LiveNormaliser | null = null;
/** Fill fractions of the frames skipped before a session frame, by its index, until it comes out. */
const fills = new Map<number, readonly number[]>();
/** The sequence's last depth frame handed out (a copy: the original is transferred), to interpolate from. */
let lastOut: Float32Array | null = null;

function post(msg: FromWorker): void {
  const transfer = 'outputs' in msg ? msg.outputs.flatMap((o) => [o.depth.buffer, ...(o.latent ? [o.latent.buffer] : []), ...(o.fills ?? []).map((f) => f.buffer)] as ArrayBuffer[]) : [];
  port!.postMessage(msg, transfer);
}

function toWire(outs: SessionOutput[]): WorkerDepth[] {
  let prev = lastOut;
  const wire = outs.map((o): WorkerDepth => {
    // min/max are of the raw values (offline normalisation); live output is normalised here.
    let min = Infinity;
    let max = -Infinity;
    for (const v of o.depth) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const depth = live ? live.apply(o.depth) : o.depth;
    const fractions = fills.get(o.index);
    fills.delete(o.index);
    const interpolated = fractions?.map((t) => lerpDepth(prev ?? depth, depth, t));
    prev = depth;
    return { index: o.index, depth, window: o.window, min, max, ...(o.latent ? { latent: o.latent } : {}), ...(interpolated ? { fills: interpolated } : {}) };
  });
  if (open?.fill && prev !== lastOut && prev) lastOut = prev.slice();
  return wire;
}

function endSequence(): void {
  session = null;
  fills.clear();
  lastOut = null;
  live?.reset();
}

async function handle(msg: ToWorker): Promise<void> {
  switch (msg.type) {
    case 'open': {
      open = msg;
      pack = await loadModelPack(msg.packDir, { device: msg.device, intraOpNumThreads: msg.threads });
      // Check window/overlap/steps/guidance now, not at the first frame.
      const cfg = sessionConfig(pack.manifest, msg.choices, { height: 8 * pack.manifest.spatialDownsample, width: 8 * pack.manifest.spatialDownsample });
      stages = new OrtStages(pack);
      live = msg.live ? new LiveNormaliser(msg.live) : null;
      const settings = { window: cfg.window, overlap: cfg.overlap, steps: cfg.steps, guidance: cfg.guidance, decodeChunk: cfg.decodeChunk };
      post({ type: 'opened', packName: pack.manifest.name, dtype: pack.dtype, description: pack.manifest.description, latentChannels: pack.manifest.latentChannels, downsample: pack.manifest.spatialDownsample, settings });
      return;
    }
    case 'frame': {
      const t0 = performance.now();
      if (!pack || !stages || !open) throw new Error('engine not opened');
      if (!session) {
        const res = resolveResolution(pack.manifest, open.choices, msg.height, msg.width);
        const cfg = sessionConfig(pack.manifest, open.choices, res);
        let noise: NoiseSource = new SeededNoise(open.choices.seed ?? 42);
        if (open.noise) {
          if (usedExternalNoise) throw new Error('external noise covers one sequence only');
          usedExternalNoise = true;
          const pixelSize = 3 * res.height * res.width;
          const latentSize = pack.manifest.latentChannels * (res.height / cfg.downsample) * (res.width / cfg.downsample);
          noise = new ExternalNoise(
            { data: open.noise.pixel, frames: open.noise.pixelFrames, frameSize: pixelSize },
            { data: open.noise.latent, frames: open.noise.latentFrames, frameSize: latentSize },
          );
          if (open.noise.pixel.length !== open.noise.pixelFrames * pixelSize) {
            throw new RangeError(`noise "pixel" must be [N,3,${res.height},${res.width}] for this input; got ${open.noise.pixel.length} values for ${open.noise.pixelFrames} frames`);
          }
        }
        session = new DepthSession(cfg, stages, noise);
        frameBuf = new Float32Array(3 * res.height * res.width);
        inputSize = { width: msg.width, height: msg.height };
        post({ type: 'started', resolution: res, window: cfg.window, overlap: cfg.overlap, steps: cfg.steps, guidance: cfg.guidance });
      }
      if (msg.width !== inputSize!.width || msg.height !== inputSize!.height) {
        throw new Error(`frame size changed from ${inputSize!.width}x${inputSize!.height} to ${msg.width}x${msg.height} within one sequence`);
      }
      const cfg = session.config;
      resizeBilinearRGB(msg.rgb, msg.width, msg.height, msg.stride, cfg.width, cfg.height, frameBuf!);
      if (msg.fill && msg.fill.length > 0) fills.set(session.framesPushed, msg.fill);
      const windowsBefore = session.windowsRun;
      const outputs = toWire(await session.push(frameBuf!));
      post({ type: 'accepted', outputs, busyMs: performance.now() - t0, windowRan: session.windowsRun > windowsBefore });
      return;
    }
    case 'end': {
      const wire = toWire(session ? await session.end() : []);
      endSequence();
      post({ type: 'ended', outputs: wire });
      return;
    }
    case 'stats':
      post({ type: 'stats', stats: stages?.stats ?? emptyStats(), rssBytes: process.memoryUsage().rss });
      return;
    case 'close':
      await pack?.release();
      pack = null;
      port!.close();
      return;
  }
}

let chain: Promise<void> = Promise.resolve();
port.on('message', (msg: ToWorker) => {
  chain = chain.then(() => handle(msg)).catch((e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    endSequence();
    post({ type: 'error', message: err.message, name: err.name });
  });
});
