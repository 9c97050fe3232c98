import { parentPort, workerData } from 'node:worker_threads';
import { Renderer } from './renderer.js';
import type { RenderJob, WorkerReply, WorkerRequest } from './frame-source.js';

// Renders synthetic frames off the main thread. The main thread asks for frame indices (at most a
// few ahead of what it has consumed); each answer moves its buffers back without a copy.

const job = workerData as RenderJob;
const port = parentPort!;
const renderer = new Renderer(job.scene, { width: job.width, height: job.height, fovDeg: job.fovDeg });

port.on('message', (m: WorkerRequest) => {
  try {
    const t0 = performance.now();
    const f = renderer.render(m.index / job.fps);
    const reply: WorkerReply = { type: 'frame', index: m.index, rgb: f.rgb, depth: f.depth, renderMs: performance.now() - t0 };
    port.postMessage(reply, [f.rgb.buffer as ArrayBuffer, f.depth.buffer as ArrayBuffer]);
  } catch (e) {
    const reply: WorkerReply = { type: 'error', message: (e as Error).message ?? String(e) };
    port.postMessage(reply);
  }
});
