import type { Worker } from 'node:worker_threads';
import { spawnWorker } from '../../util/spawn-worker.js';
import type { FromWorker, OpenRequest, ResolvedSettings, ToWorker, WorkerDepth } from './protocol.js';
import type { SessionChoices } from './session-config.js';
import type { PackDevice } from '../pack/load-pack.js';
import type { StageStats } from './stages.js';
import type { Resolution } from '../math/resolution.js';
import { ModelPackError } from '../pack/manifest.js';

// The main-thread handle on the inference worker. Frames go in with push() (which waits only
// when too many frames are in flight), depth frames come out through onDepth in input order.
// Both the offline `infer` command and the live depth node are policies around this one engine.

export interface EngineOptions {
  readonly packDir: string;
  readonly device?: PackDevice;
  readonly threads?: number;
  readonly choices?: SessionChoices;
  readonly noise?: OpenRequest['noise'];
  /** Frames handed to the worker but not yet processed before push() waits. */
  readonly maxInFlight?: number;
  /** Live normalisation in the worker (see LiveNormaliser); offline output stays raw. */
  readonly live?: OpenRequest['live'];
  /** Frames will carry fill fractions (frames skipped by stride get interpolated depth). */
  readonly fill?: boolean;
}

/** One frame's work in the worker. */
export interface EngineWork {
  readonly busyMs: number;
  readonly windowRan: boolean;
}

export interface EngineDepth extends WorkerDepth {
  readonly width: number;
  readonly height: number;
}

export interface SequenceInfo {
  readonly resolution: Resolution;
  readonly window: number;
  readonly overlap: number;
  readonly steps: number;
  readonly guidance: number;
}

export class DepthEngine {
  /** Called for each final depth frame, in input order. */
  onDepth: (d: EngineDepth) => void = () => {};
  /** Called when a sequence's model resolution and settings are fixed (first frame). */
  onSequence: (info: SequenceInfo) => void = () => {};
  /** Called after the worker handled each frame, before its outputs are delivered. */
  onWork: (w: EngineWork) => void = () => {};
  /** Window, overlap, steps... as the sessions run them (the pack's defaults where none were chosen). */
  settings: ResolvedSettings = { window: 0, overlap: 0, steps: 0, guidance: 1, decodeChunk: 8 };
  packName = '';
  packDescription = '';
  /** Latent channels and spatial downsampling of the pack (the shape of `EngineDepth.latent`). */
  latentLayout = { channels: 4, downsample: 8 };
  sequence: SequenceInfo | null = null;
  private readonly worker: Worker;
  private inFlight = 0;
  /** Frames handed to the worker but not yet processed before push() waits. */
  maxInFlight: number;
  private spaceWaiters: Array<() => void> = [];
  private pending: Array<{ expect: FromWorker['type']; resolve: (m: FromWorker) => void; reject: (e: Error) => void }> = [];
  private failure: Error | null = null;
  private closed = false;

  private constructor(opts: EngineOptions) {
    this.maxInFlight = opts.maxInFlight ?? 2;
    this.worker = spawnWorker(import.meta.url, 'engine-worker');
    this.worker.on('message', (m: FromWorker) => this.onMessage(m));
    this.worker.on('error', (e) => this.fail(e));
    this.worker.on('exit', (code) => {
      if (!this.closed) this.fail(new Error(`inference worker exited unexpectedly (code ${code})`));
    });
  }

  static async open(opts: EngineOptions): Promise<DepthEngine> {
    const engine = new DepthEngine(opts);
    const req: OpenRequest = { type: 'open', packDir: opts.packDir, device: opts.device ?? 'cpu', threads: opts.threads, choices: opts.choices ?? {}, noise: opts.noise, live: opts.live, fill: opts.fill };
    try {
      const m = await engine.request(req, 'opened');
      if (m.type === 'opened') {
        engine.packName = m.packName;
        engine.packDescription = m.description;
        engine.latentLayout = { channels: m.latentChannels, downsample: m.downsample };
        engine.settings = m.settings;
      }
    } catch (e) {
      await engine.close();
      throw e;
    }
    return engine;
  }

  /** Frames sent to the worker and not yet handled. */
  get backlog(): number {
    return this.inFlight;
  }

  /**
   * Send one RGB frame (packed or with a row stride). Resolves when the engine can take another.
   * `fill`: time fractions of the frames skipped before this one, whose interpolated depth comes
   * out with this frame's (in `fills`).
   */
  async push(rgb: Uint8Array, width: number, height: number, stride = width * 3, fill?: readonly number[]): Promise<void> {
    if (this.failure) throw this.failure;
    this.inFlight++;
    this.post({ type: 'frame', rgb, width, height, stride, ...(fill && fill.length > 0 ? { fill } : {}) });
    while (this.inFlight >= this.maxInFlight && !this.failure) {
      await new Promise<void>((resolve) => this.spaceWaiters.push(resolve));
    }
    if (this.failure) throw this.failure;
  }

  /** End the current sequence: the remaining frames are computed and delivered before this resolves. */
  async end(): Promise<void> {
    await this.request({ type: 'end' }, 'ended');
  }

  async stats(): Promise<{ stats: StageStats; rssBytes: number }> {
    const m = await this.request({ type: 'stats' }, 'stats');
    if (m.type !== 'stats') throw new Error('unexpected reply');
    return { stats: m.stats, rssBytes: m.rssBytes };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.post({ type: 'close' });
    const timer = setTimeout(() => void this.worker.terminate(), 5000);
    await exited;
    clearTimeout(timer);
  }

  private post(msg: ToWorker): void {
    // Frames move to the worker without a copy when they own their buffer (never detach a shared pool).
    const transfer = msg.type === 'frame' && msg.rgb.byteLength === msg.rgb.buffer.byteLength ? [msg.rgb.buffer as ArrayBuffer] : [];
    this.worker.postMessage(msg, transfer);
  }

  private request(msg: ToWorker, expect: FromWorker['type']): Promise<FromWorker> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.push({ expect, resolve, reject });
      this.post(msg);
    });
  }

  private deliver(outputs: WorkerDepth[]): void {
    const res = this.sequence?.resolution;
    for (const o of outputs) this.onDepth({ ...o, width: res?.width ?? 0, height: res?.height ?? 0 });
  }

  private onMessage(m: FromWorker): void {
    switch (m.type) {
      case 'started':
        this.sequence = { resolution: m.resolution, window: m.window, overlap: m.overlap, steps: m.steps, guidance: m.guidance };
        this.onSequence(this.sequence);
        return;
      case 'accepted':
        this.onWork({ busyMs: m.busyMs, windowRan: m.windowRan });
        this.deliver(m.outputs);
        this.inFlight--;
        this.spaceWaiters.splice(0).forEach((w) => w());
        return;
      case 'ended':
        this.deliver(m.outputs);
        this.sequence = null;
        break;
      case 'error':
        this.fail(workerError(m.name, m.message));
        return;
    }
    const i = this.pending.findIndex((p) => p.expect === m.type);
    if (i >= 0) this.pending.splice(i, 1)[0].resolve(m);
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    this.pending.splice(0).forEach((p) => p.reject(e));
    this.spaceWaiters.splice(0).forEach((w) => w());
  }
}

/**
 * Errors cross the worker boundary as name + message: rebuild the classes callers branch on with
 * instanceof (the CLI maps RangeError and ModelPackError to exit code 2).
 */
function workerError(name: string, message: string): Error {
  if (name === 'RangeError') return new RangeError(message);
  if (name === 'ModelPackError' || name === 'ExecutionProviderError') {
    return Object.assign(new ModelPackError(message, { packDir: '' }), { name });
  }
  return Object.assign(new Error(message), { name });
}
