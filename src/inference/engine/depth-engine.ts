import type { FromWorker, OpenRequest, ResolvedSettings, WorkerDepth } from './protocol.js';
import type { SessionChoices } from './session-config.js';
import type { PackDevice } from '../pack/load-pack.js';
import type { Resolution } from '../math/resolution.js';
import { EngineHost, type StreamEndpoint } from './engine-host.js';

// One stream's handle on an inference worker (EngineHost). Frames go in with push() (which waits
// only when too many of this stream's frames are in flight), depth frames come out through
// onDepth in input order. Both the offline `infer` command and the live depth node are policies
// around this one engine; a live pipeline's depth nodes on the same pack and device share one
// host (EnginePool), each with its own stream.

export interface StreamOptions {
  readonly choices?: SessionChoices;
  readonly noise?: OpenRequest['noise'];
  /** Frames handed to the worker but not yet processed before push() waits. */
  readonly maxInFlight?: number;
  /** Live normalisation in the worker (see LiveNormaliser); offline output stays raw. */
  readonly live?: OpenRequest['live'];
  /** Frames will carry fill fractions (frames skipped by stride get interpolated depth). */
  readonly fill?: boolean;
}

export interface EngineOptions extends StreamOptions {
  readonly packDir: string;
  readonly device?: PackDevice;
  readonly threads?: number;
}

/** What to tell a user whose pack has random weights. */
export const RANDOM_WEIGHTS = (pack: string): string =>
  `pack "${pack}" has random weights (it only exercises the model contract): its depth is noise. For depth on synthetic scenes use models/synthetic-small; for real video the real DepthCrafter weights (README: Real DepthCrafter weights)`;

/** What to tell a user who runs a pack trained on synthetic scenes on real video. */
export const SYNTHETIC_ONLY = (pack: string, sources: readonly string[]): string =>
  `pack "${pack}" was trained on synthetic scenes only: on ${sources.join('/')} input its depth is not reliable. For real video use the real DepthCrafter weights (README: Real DepthCrafter weights)`;

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

export class DepthEngine implements StreamEndpoint {
  /** Called for each final depth frame, in input order. */
  onDepth: (d: EngineDepth) => void = () => {};
  /** Called when a sequence's model resolution and settings are fixed (first frame). */
  onSequence: (info: SequenceInfo) => void = () => {};
  /** Called after the worker handled each frame, before its outputs are delivered. */
  onWork: (w: EngineWork) => void = () => {};
  /** Window, overlap, steps... as the sessions run them (the pack's defaults where none were chosen). */
  settings: ResolvedSettings = { window: 0, overlap: 0, steps: 0, guidance: 1, decodeChunk: 8 };
  sequence: SequenceInfo | null = null;
  /** Frames handed to the worker but not yet processed before push() waits. */
  maxInFlight: number;
  private readonly id: number;
  private inFlight = 0;
  private spaceWaiters: Array<() => void> = [];
  private pending: Array<{ expect: FromWorker['type']; resolve: (m: FromWorker) => void; reject: (e: Error) => void }> = [];
  private failure: Error | null = null;
  private closed = false;

  private constructor(
    private readonly host: EngineHost,
    opts: StreamOptions,
    /** Close the host with the stream (a private engine). */
    private readonly ownsHost: boolean,
  ) {
    this.maxInFlight = opts.maxInFlight ?? 2;
    this.id = host.attach(this);
  }

  /** A private engine: its own worker and model copy (offline infer, eval, tests). */
  static async open(opts: EngineOptions): Promise<DepthEngine> {
    const host = await EngineHost.start(opts);
    return DepthEngine.onHost(host, opts, true);
  }

  /** A stream on a shared worker. */
  static async onHost(host: EngineHost, opts: StreamOptions, ownsHost = false): Promise<DepthEngine> {
    const engine = new DepthEngine(host, opts, ownsHost);
    if (host.error) engine.fail(host.error);
    const req: OpenRequest = { type: 'open', stream: engine.id, choices: opts.choices ?? {}, noise: opts.noise, live: opts.live, fill: opts.fill };
    try {
      const m = await engine.request(req, 'opened');
      if (m.type === 'opened') engine.settings = m.settings;
    } catch (e) {
      await engine.close();
      throw e;
    }
    return engine;
  }

  /** This stream's id on its worker (EngineHost.onWindow reports it). */
  get streamId(): number {
    return this.id;
  }

  get packName(): string {
    return this.host.info.packName;
  }

  /** The pack's weights are random: its depth means nothing. */
  get randomWeights(): boolean {
    return this.host.info.randomWeights;
  }

  /** What the pack was trained on, when its manifest says. */
  get trainingDomain(): 'synthetic' | 'real' | undefined {
    return this.host.info.trainingDomain;
  }

  get packDescription(): string {
    return this.host.info.description;
  }

  /** Latent channels and spatial downsampling of the pack (the shape of `EngineDepth.latent`). */
  get latentLayout(): { channels: number; downsample: number } {
    return { channels: this.host.info.latentChannels, downsample: this.host.info.downsample };
  }

  /** Frames sent to the worker and not yet handled. */
  get backlog(): number {
    return this.inFlight;
  }

  /** Fraction of the worker this stream can count on (1 when it is alone on it). */
  get share(): number {
    return this.host.share.shareOf(this.id);
  }

  /**
   * Send one RGB frame (packed or with a row stride). Resolves when the engine can take another.
   * `fill`: time fractions of the frames skipped before this one, whose interpolated depth comes
   * out with this frame's (in `fills`).
   */
  async push(rgb: Uint8Array, width: number, height: number, stride = width * 3, fill?: readonly number[]): Promise<void> {
    if (this.failure) throw this.failure;
    this.inFlight++;
    this.host.post({ type: 'frame', stream: this.id, rgb, width, height, stride, ...(fill && fill.length > 0 ? { fill } : {}) });
    while (this.inFlight >= this.maxInFlight && !this.failure) {
      await new Promise<void>((resolve) => this.spaceWaiters.push(resolve));
    }
    if (this.failure) throw this.failure;
  }

  /** End the current sequence: the remaining frames are computed and delivered before this resolves. */
  async end(): Promise<void> {
    await this.request({ type: 'end', stream: this.id }, 'ended');
  }

  stats(): ReturnType<EngineHost['stats']> {
    return this.host.stats();
  }

  /** Leave the worker (and close it when this engine owns it). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.failure && !this.host.error) {
      await this.request({ type: 'release', stream: this.id }, 'released').catch(() => {});
    } else if (!this.host.error) {
      this.host.post({ type: 'release', stream: this.id });
    }
    this.host.detach(this.id);
    if (this.ownsHost) await this.host.close();
  }

  receive(m: FromWorker): void {
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
      case 'depth':
        this.deliver(m.outputs);
        return;
      case 'ended':
        this.deliver(m.outputs);
        this.sequence = null;
        break;
    }
    const i = this.pending.findIndex((p) => p.expect === m.type);
    if (i >= 0) this.pending.splice(i, 1)[0].resolve(m);
  }

  fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    this.pending.splice(0).forEach((p) => p.reject(e));
    this.spaceWaiters.splice(0).forEach((w) => w());
  }

  private request(msg: Parameters<EngineHost['post']>[0], expect: FromWorker['type']): Promise<FromWorker> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.push({ expect, resolve, reject });
      this.host.post(msg);
    });
  }

  private deliver(outputs: WorkerDepth[]): void {
    const res = this.sequence?.resolution;
    for (const o of outputs) this.onDepth({ ...o, width: res?.width ?? 0, height: res?.height ?? 0 });
  }
}
