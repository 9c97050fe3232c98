import { parentPort, type MessagePort } from 'node:worker_threads';
import { loadModelPack, type LoadedModelPack } from '../pack/load-pack.js';
import { OrtStages } from '../backend/ort-stages.js';
import { emptyStats } from '../backend/model-stages.js';
import { StagesBackend } from '../backend/stages-backend.js';
import type { ModelBackend } from '../backend/model-backend.js';
import { WorkerStream } from './worker-stream.js';
import { RoundRobinQueues } from './round-robin.js';
import type { DecodeReply, FromWorker, StreamRequest, ToWorker } from './protocol.js';
import { RemoteDecoder } from './remote-decoder.js';

// An inference worker: owns one model pack's ONNX sessions and serves any number of streams, so
// the main thread (GStreamer, HTTP, WebSocket) never blocks on a model run and N cameras share
// one copy of the weights. All per-pixel work (resize, CLIP preprocessing, noise, depth
// reduction) happens here too. Each stream's messages are handled in order; streams take turns
// a window at a time (round-robin.ts). A failure in one stream's work fails that stream only.

const port = parentPort;
if (!port) throw new Error('engine-worker must run in a worker thread');

let pack: LoadedModelPack | null = null;
let remoteDecoder: RemoteDecoder | null = null;
let backend: ModelBackend | null = null;
const streams = new Map<number, WorkerStream>();
/** Streams whose work failed: their later messages are dropped (the main thread has failed them). */
const failed = new Set<number>();
const control: ToWorker[] = [];
const queues = new RoundRobinQueues<StreamRequest>();
let pumping = false;
/** Time spent on stream messages: model runs and the work between them (the benchmark's profile). */
let busyMs = 0;

function post(msg: FromWorker): void {
  const transfer =
    'outputs' in msg
      ? msg.outputs.flatMap((o) => [o.depth.buffer, ...(o.latent ? [o.latent.buffer] : []), ...(o.fills ?? []).map((f) => f.buffer)] as ArrayBuffer[])
      : [];
  port!.postMessage(msg, transfer);
}

function errorOf(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

async function handleControl(msg: ToWorker): Promise<void> {
  switch (msg.type) {
    case 'load': {
      const remote = msg.remoteDecoder === true && prepPort !== null;
      pack = await loadModelPack(msg.packDir, {
        device: msg.device,
        intraOpNumThreads: msg.threads,
        ...(remote ? { only: ['imageEncoder', 'vaeEncoder', 'unet'] } : {}),
      });
      remoteDecoder = remote ? new RemoteDecoder(prepPort!) : null;
      backend = new StagesBackend(new OrtStages(pack), remoteDecoder ?? undefined);
      const m = pack.manifest;
      post({
        type: 'loaded',
        packName: m.name,
        dtype: pack.dtype,
        description: m.description,
        latentChannels: m.latentChannels,
        downsample: m.spatialDownsample,
        randomWeights: m.randomWeights,
        ...(m.trainingDomain ? { trainingDomain: m.trainingDomain } : {}),
      });
      return;
    }
    case 'stats':
      post({ type: 'stats', stats: backend?.stats() ?? emptyStats(), rssBytes: process.memoryUsage().rss, busyMs });
      return;
    case 'close':
      await pack?.release();
      pack = null;
      prepPort?.close();
      port!.close();
      return;
  }
}

/** Handle one stream message; true when it did a window's worth of work (the stream's turn ends). */
async function handleStream(msg: StreamRequest): Promise<boolean> {
  const id = msg.stream;
  switch (msg.type) {
    case 'open': {
      if (!pack || !backend) throw new Error('engine not loaded');
      // With the decoder in the frame worker, up to two chunks decode while the next frames and window go on.
      const s = new WorkerStream(pack, backend, msg, remoteDecoder ? 2 : 0);
      s.onOutputs = (outputs) => post({ type: 'depth', stream: id, outputs });
      s.onFailure = (e) => failStream(id, e);
      streams.set(id, s);
      post({ type: 'opened', stream: id, settings: s.settings });
      return false;
    }
    case 'prep-failed':
      throw Object.assign(new Error(msg.message), { name: msg.name });
    case 'frame':
      // Raw frames are prepared by the frame worker, which forwards one here only for a stream it does not know.
      throw new Error(`stream ${id} is not open`);
    case 'prepared': {
      const t0 = performance.now();
      const s = streams.get(id);
      if (!s) throw new Error(`stream ${id} is not open`);
      const r = await s.frame(msg);
      if (r.started) post(r.started);
      post({ type: 'accepted', stream: id, outputs: r.outputs, busyMs: performance.now() - t0, windowRan: r.windowRan });
      return r.windowRan;
    }
    case 'end': {
      const outputs = (await streams.get(id)?.end()) ?? [];
      post({ type: 'ended', stream: id, outputs });
      return true;
    }
    case 'release':
      streams.delete(id);
      failed.delete(id);
      queues.remove(id);
      post({ type: 'released', stream: id });
      return true;
  }
}

/** A stream's work failed: it stops here (its later messages are dropped), the others go on. */
function failStream(id: number, e: unknown): void {
  if (failed.has(id)) return;
  const err = errorOf(e);
  streams.get(id)?.reset();
  streams.delete(id);
  failed.add(id);
  queues.remove(id);
  post({ type: 'error', stream: id, message: err.message, name: err.name });
}

async function pump(): Promise<void> {
  if (pumping) return;
  pumping = true;
  for (;;) {
    const c = control.shift();
    if (c) {
      try {
        await handleControl(c);
      } catch (e) {
        const err = errorOf(e);
        post({ type: 'error', message: err.message, name: err.name });
      }
      continue;
    }
    const id = queues.next();
    if (id === null) break;
    const msg = queues.take(id)!;
    let turnOver: boolean;
    if (failed.has(id) && msg.type !== 'release') {
      turnOver = true;
    } else {
      try {
        const t0 = performance.now();
        turnOver = await handleStream(msg).finally(() => (busyMs += performance.now() - t0));
      } catch (e) {
        failStream(id, e);
        continue;
      }
    }
    if (turnOver || queues.pending(id) === 0) queues.endTurn(id);
  }
  pumping = false;
}

let prepPort: MessagePort | null = null;

function receive(msg: ToWorker): void {
  if (msg.type === 'connect') {
    // Stream messages from the frame-preparation worker.
    prepPort = msg.port;
    prepPort.on('message', receive);
    return;
  }
  const reply = msg as unknown as DecodeReply;
  if (reply.type === 'decoded' || reply.type === 'decode-failed') {
    remoteDecoder?.receive(reply);
    return;
  }
  if ('stream' in msg) queues.add(msg.stream, msg);
  else control.push(msg);
  void pump();
}

port.on('message', receive);
