/**
 * Frames of a synthetic scene in order, rendered either on the calling thread or in a worker
 * thread that renders a bounded number of frames ahead.
 */
import type { Worker } from 'node:worker_threads';
import type { SceneDescription } from './scene.js';
import { Renderer } from './renderer.js';
import { spawnWorker } from '../util/spawn-worker.js';

export interface RenderJob {
  readonly scene: SceneDescription;
  readonly width: number;
  readonly height: number;
  readonly fovDeg: number;
  /** Frame i shows the scene at t = i / fps. */
  readonly fps: number;
}

export interface SynthFrame {
  readonly index: number;
  readonly rgb: Uint8Array;
  readonly depth: Float32Array;
  /** Time the render itself took. */
  readonly renderMs: number;
}

export type WorkerRequest = { readonly index: number };
export type WorkerReply =
  | { readonly type: 'frame'; readonly index: number; readonly rgb: Uint8Array; readonly depth: Float32Array; readonly renderMs: number }
  | { readonly type: 'error'; readonly message: string };

export interface FrameSource {
  /** The next frame in order (fresh buffers: the caller may keep them). */
  next(): Promise<SynthFrame>;
  /** Skip ahead: the next frame next() returns is `index` (frames before it are never handed out). */
  skipTo(index: number): void;
  close(): Promise<void>;
}

/** Renders each frame on the calling thread when asked. */
export class InlineFrameSource implements FrameSource {
  private readonly renderer: Renderer;
  constructor(
    private readonly job: RenderJob,
    private index: number,
  ) {
    this.renderer = new Renderer(job.scene, job);
  }
  renderNow(): SynthFrame {
    const t0 = performance.now();
    const f = this.renderer.render(this.index / this.job.fps);
    return { index: this.index++, rgb: f.rgb, depth: f.depth, renderMs: performance.now() - t0 };
  }
  next(): Promise<SynthFrame> {
    try {
      return Promise.resolve(this.renderNow());
    } catch (e) {
      return Promise.reject(e);
    }
  }
  /** Index of the frame next() will return. */
  get position(): number {
    return this.index;
  }
  skipTo(index: number): void {
    if (index > this.index) this.index = index;
  }
  async close(): Promise<void> {}
}

/**
 * Renders frames [first, end) in a worker, keeping up to `ahead` requested and not yet consumed.
 */
export class WorkerFrameSource implements FrameSource {
  private readonly worker: Worker;
  private readonly ready = new Map<number, SynthFrame>();
  private waiter: { index: number; resolve: (f: SynthFrame) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  private nextRequest: number;
  private nextOut: number;
  private closed = false;

  constructor(
    job: RenderJob,
    first: number,
    private readonly end: number,
    private readonly ahead: number,
  ) {
    this.nextRequest = first;
    this.nextOut = first;
    this.worker = spawnWorker(import.meta.url, 'render-worker', { workerData: job });
    this.worker.on('message', (m: WorkerReply) => {
      if (m.type === 'error') return this.fail(new Error(`synthetic render worker: ${m.message}`));
      const f: SynthFrame = { index: m.index, rgb: m.rgb, depth: m.depth, renderMs: m.renderMs };
      if (m.index < this.nextOut && this.waiter?.index !== m.index) return; // skipped while it was rendering
      if (this.waiter && this.waiter.index === m.index) {
        const w = this.waiter;
        this.waiter = null;
        w.resolve(f);
      } else this.ready.set(m.index, f);
    });
    this.worker.on('error', (e) => this.fail(e));
    this.worker.on('exit', (code) => {
      if (!this.closed) this.fail(new Error(`synthetic render worker exited unexpectedly (code ${code})`));
    });
    for (let i = 0; i < ahead; i++) this.request();
  }

  private request(): void {
    if (this.nextRequest >= this.end || this.closed) return;
    const req: WorkerRequest = { index: this.nextRequest++ };
    this.worker.postMessage(req);
  }

  next(): Promise<SynthFrame> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.nextOut >= this.end) return Promise.reject(new Error('no more frames'));
    const index = this.nextOut++;
    this.request(); // keep the pipeline full
    const f = this.ready.get(index);
    if (f) {
      this.ready.delete(index);
      return Promise.resolve(f);
    }
    return new Promise((resolve, reject) => (this.waiter = { index, resolve, reject }));
  }

  skipTo(index: number): void {
    if (index <= this.nextOut) return;
    for (const i of this.ready.keys()) if (i < index) this.ready.delete(i);
    this.nextOut = Math.min(index, this.end);
    if (this.nextRequest < this.nextOut) this.nextRequest = this.nextOut;
    // Frames still rendering below `index` are discarded when they arrive; keep `ahead` requested from here.
    while (this.nextRequest - this.nextOut < this.ahead && this.nextRequest < this.end && !this.closed) this.request();
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(e);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fail(new Error('frame source closed'));
    await this.worker.terminate();
  }
}
