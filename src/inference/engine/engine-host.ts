import { MessageChannel, type Worker } from 'node:worker_threads';
import type { FrameWorkerData } from './frame-worker.js';
import type { PrepTimes } from './frame-prep.js';
import { spawnWorker } from '../../util/spawn-worker.js';
import type { FromWorker, PackInfo, ToWorker } from './protocol.js';
import type { PackDevice } from '../pack/load-pack.js';
import type { StageStats } from '../backend/model-stages.js';
import { ModelPackError } from '../pack/manifest.js';
import { EngineShare } from './engine-share.js';
import { OptionError, errorFromWorker } from '../../util/errors.js';

// The main-thread handle on one inference worker: one model pack on one device, loaded once,
// serving any number of streams (DepthEngine is one stream's handle). Messages from the worker
// are routed to their stream; a stream's failure reaches that stream alone, the worker's own
// failure (it died, the pack did not load) reaches every stream.

export interface HostOptions {
  readonly packDir: string;
  readonly device?: PackDevice;
  readonly threads?: number;
}

/** What a stream handle on the host implements to receive its messages. */
export interface StreamEndpoint {
  receive(m: FromWorker): void;
  fail(e: Error): void;
}

export class EngineHost {
  info: PackInfo = { packName: '', dtype: '', description: '', latentChannels: 4, downsample: 8, randomWeights: false };
  /** How busy each stream keeps the worker: a stream's share of it for rate adaptation. */
  readonly share = new EngineShare();
  /** Called with the stream id each time a stream's window ran (scheduling tests and traces). */
  onWindow: (stream: number) => void = () => {};
  private readonly worker: Worker;
  private readonly prep: Worker;
  /** The VAE decoder runs in the frame worker (CPU), else in the inference worker. */
  private remoteDecoder = false;
  private readonly streams = new Map<number, StreamEndpoint>();
  private nextStream = 1;
  private pending: Array<{ expect: FromWorker['type']; resolve: (m: FromWorker) => void; reject: (e: Error) => void }> = [];
  private failure: Error | null = null;
  private closed = false;

  private constructor(packDir: string) {
    this.worker = spawnWorker(import.meta.url, 'engine-worker');
    // Stream messages go through the frame worker, which hands the inference worker each frame as
    // its encoders' inputs over a direct channel (no hop through this thread) and decodes for it.
    const channel = new MessageChannel();
    this.prep = spawnWorker(import.meta.url, 'frame-worker', {
      workerData: { packDir, engine: channel.port1 } satisfies FrameWorkerData,
      transferList: [channel.port1],
    });
    this.worker.postMessage({ type: 'connect', port: channel.port2 } satisfies ToWorker, [channel.port2]);
    for (const [w, what] of [
      [this.worker, 'inference worker'],
      [this.prep, 'frame worker'],
    ] as const) {
      w.on('message', (m: FromWorker) => this.onMessage(m));
      w.on('error', (e) => this.fail(e));
      w.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`${what} exited unexpectedly (code ${code})`));
      });
    }
  }

  static async start(opts: HostOptions): Promise<EngineHost> {
    const host = new EngineHost(opts.packDir);
    try {
      // Both workers' sessions get ONNX Runtime's default (one thread per core) unless told: measured on 2 cores,
      // 2+2 threads beat 1+1 by 22-28 % in wall time for 3-10 % more CPU (docs/performance.md; pools do not spin).
      // The decoder moves to the frame worker on CPU only: two WebGPU sessions on two threads of one process
      // crashed the process (lavapipe); the GPU providers are not verified with it either.
      const device = opts.device ?? 'cpu';
      host.remoteDecoder = device === 'cpu';
      const load = { type: 'load', packDir: opts.packDir, device, threads: opts.threads, remoteDecoder: host.remoteDecoder } as const;
      const [m] = await Promise.all([host.request(load, 'loaded'), host.remoteDecoder ? host.request(load, 'decoder-loaded', host.prep) : null]);
      if (m.type === 'loaded')
        host.info = {
          packName: m.packName,
          dtype: m.dtype,
          description: m.description,
          latentChannels: m.latentChannels,
          downsample: m.downsample,
          randomWeights: m.randomWeights,
          ...(m.trainingDomain ? { trainingDomain: m.trainingDomain } : {}),
        };
    } catch (e) {
      await host.close();
      throw e;
    }
    return host;
  }

  get error(): Error | null {
    return this.failure;
  }

  /** Streams attached now. */
  get streamCount(): number {
    return this.streams.size;
  }

  /** Give a new stream its id; its messages reach `endpoint` from now on. */
  attach(endpoint: StreamEndpoint): number {
    const id = this.nextStream++;
    this.streams.set(id, endpoint);
    this.share.add(id);
    return id;
  }

  detach(id: number): void {
    this.streams.delete(id);
    this.share.remove(id);
  }

  post(msg: ToWorker): void {
    if (this.closed) return;
    // Frames move to the worker without a copy when they own their buffer (never detach a shared pool).
    const owned = (a: ArrayBufferView) => (a.byteLength === a.buffer.byteLength ? [a.buffer as ArrayBuffer] : []);
    const noise = msg.type === 'open' ? msg.noise : undefined;
    // External noise (infer --noise, up to gigabytes) moves too: the caller does not keep it.
    const transfer =
      msg.type === 'frame' ? owned(msg.rgb) : noise ? [...owned(noise.pixel), ...(noise.latent.buffer !== noise.pixel.buffer ? owned(noise.latent) : [])] : [];
    ('stream' in msg ? this.prep : this.worker).postMessage(msg, transfer);
  }

  async stats(): Promise<{ stats: StageStats; rssBytes: number; busyMs: number; prep: PrepTimes }> {
    const [m, p] = await Promise.all([this.request({ type: 'stats' }, 'stats'), this.request({ type: 'stats' }, 'prep-stats', this.prep)]);
    if (m.type !== 'stats' || p.type !== 'prep-stats') throw new Error('unexpected reply');
    // The decoder's runs are counted where it runs, in the frame worker.
    const stats: StageStats = !this.remoteDecoder
      ? m.stats
      : {
          calls: { ...m.stats.calls, decode: p.decoder.calls },
          framesIn: { ...m.stats.framesIn, decode: p.decoder.frames },
          ms: { ...m.stats.ms, decode: p.decoder.ms },
        };
    return { stats, rssBytes: m.rssBytes, busyMs: m.busyMs, prep: p.times };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(
      [this.worker, this.prep].map(async (w) => {
        const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
        w.postMessage({ type: 'close' } satisfies ToWorker);
        const timer = setTimeout(() => void w.terminate(), 5000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  private request(msg: ToWorker, expect: FromWorker['type'], to?: Worker): Promise<FromWorker> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.push({ expect, resolve, reject });
      if (to) to.postMessage(msg);
      else this.post(msg);
    });
  }

  private onMessage(m: FromWorker): void {
    if ('stream' in m && m.stream !== undefined) {
      if (m.type === 'accepted') {
        this.share.record(m.stream, m.busyMs);
        if (m.windowRan) this.onWindow(m.stream);
      }
      const s = this.streams.get(m.stream);
      if (!s) return;
      if (m.type === 'error') s.fail(workerError(m.name, m.message));
      else s.receive(m);
      return;
    }
    if (m.type === 'error') {
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
    for (const s of this.streams.values()) s.fail(e);
  }
}

/**
 * Errors cross the worker boundary as name + message: rebuild the classes callers branch on with
 * instanceof (the CLI maps RangeError and ModelPackError to exit code 2).
 */
export function workerError(name: string, message: string): Error {
  const packError = (m: string) => Object.assign(new ModelPackError(m, { packDir: '' }), { name });
  return errorFromWorker(name, message, { ModelPackError: packError, ExecutionProviderError: packError, ProviderOptionsError: (m) => new OptionError(m) });
}
