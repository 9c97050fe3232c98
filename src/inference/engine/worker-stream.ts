import type { LoadedModelPack } from '../pack/load-pack.js';
import type { ModelBackend } from '../backend/model-backend.js';
import { DepthSession, type SessionOutput } from './depth-session.js';
import { sequenceSetup, sessionConfig } from './session-config.js';
import { LiveNormaliser } from '../live/live-normaliser.js';
import { lerpDepth } from '../live/interpolate.js';
import type { FromWorker, OpenRequest, PreparedFrameRequest, ResolvedSettings, WorkerDepth } from './protocol.js';

// One stream's state inside an inference worker: its DepthSession (windows, noise, stitching),
// its live normaliser and the fill of frames skipped by stride. Streams share the worker's model
// sessions and nothing else, so a stream's output does not depend on the other streams.

type Started = Extract<FromWorker, { type: 'started' }>;

export class WorkerStream {
  readonly settings: ResolvedSettings;
  private session: DepthSession | null = null;
  private inputSize: { width: number; height: number } | null = null;
  private usedExternalNoise = false;
  private readonly live: LiveNormaliser | null;
  /** Fill fractions of the frames skipped before a session frame, by its index, until it comes out. */
  private readonly fills = new Map<number, readonly number[]>();
  /** The sequence's last depth frame handed out (a copy: the original is transferred), to interpolate from. */
  private lastOut: Float32Array | null = null;

  /** Depth frames that became ready between this stream's frames (a decoder in another worker). */
  onOutputs: (outputs: WorkerDepth[]) => void = () => {};
  /** A failure that surfaced outside a frame()/end() call (a decode that failed later). */
  onFailure: (e: unknown) => void = () => {};
  /** Inside frame()/end(): ready outputs go out with their result instead of through onOutputs. */
  private inCall = false;

  constructor(
    private readonly pack: LoadedModelPack,
    private readonly backend: ModelBackend,
    private readonly open: OpenRequest,
    /** Decode chunks that may still run when a frame's handling returns (a decoder in another worker). */
    private readonly maxDecodesInFlight = 0,
  ) {
    // Check window/overlap/steps/guidance now, not at the first frame.
    const side = 8 * pack.manifest.spatialDownsample;
    const cfg = sessionConfig(pack.manifest, open.choices, { height: side, width: side });
    this.settings = { window: cfg.window, overlap: cfg.overlap, steps: cfg.steps, guidance: cfg.guidance, decodeChunk: cfg.decodeChunk };
    this.live = open.live ? new LiveNormaliser(open.live) : null;
  }

  /** Handle one frame; `started` is set when it began a new sequence. */
  async frame(msg: PreparedFrameRequest): Promise<{ outputs: WorkerDepth[]; windowRan: boolean; started?: Started }> {
    this.inCall = true;
    try {
      return await this.handleFrame(msg);
    } finally {
      this.inCall = false;
    }
  }

  private async handleFrame(msg: PreparedFrameRequest): Promise<{ outputs: WorkerDepth[]; windowRan: boolean; started?: Started }> {
    let started: Started | undefined;
    if (!this.session) started = this.startSequence(msg);
    const session = this.session!;
    if (msg.width !== this.inputSize!.width || msg.height !== this.inputSize!.height) {
      throw new Error(`frame size changed from ${this.inputSize!.width}x${this.inputSize!.height} to ${msg.width}x${msg.height} within one sequence`);
    }
    if (msg.fill && msg.fill.length > 0) this.fills.set(session.framesPushed, msg.fill);
    const windowsBefore = session.windowsRun;
    const outputs = this.toWire(await session.pushPrepared(msg.prepared));
    return { outputs, windowRan: session.windowsRun > windowsBefore, ...(started ? { started } : {}) };
  }

  /** End the sequence: the last window runs and every frame comes out. */
  async end(): Promise<WorkerDepth[]> {
    this.inCall = true;
    try {
      const wire = this.toWire(this.session ? await this.session.end() : []);
      this.reset();
      return wire;
    } finally {
      this.inCall = false;
    }
  }

  reset(): void {
    this.session = null;
    this.fills.clear();
    this.lastOut = null;
    this.live?.reset();
  }

  private startSequence(msg: { readonly width: number; readonly height: number }): Started {
    const { pack, open } = this;
    if (open.noise) {
      if (this.usedExternalNoise) throw new Error('external noise covers one sequence only');
      this.usedExternalNoise = true;
    }
    const { res, cfg, noise } = sequenceSetup(pack.manifest, open.choices, open.noise, msg.height, msg.width);
    const session = new DepthSession(cfg, this.backend, noise, {}, this.maxDecodesInFlight);
    session.onReady = () => {
      if (this.inCall || this.session !== session) return;
      try {
        const outputs = this.toWire(session.drain());
        if (outputs.length > 0) this.onOutputs(outputs);
      } catch (e) {
        this.onFailure(e);
      }
    };
    this.session = session;
    this.inputSize = { width: msg.width, height: msg.height };
    return { type: 'started', stream: open.stream, resolution: res, window: cfg.window, overlap: cfg.overlap, steps: cfg.steps, guidance: cfg.guidance };
  }

  private toWire(outs: SessionOutput[]): WorkerDepth[] {
    let prev = this.lastOut;
    const wire = outs.map((o): WorkerDepth => {
      // min/max are of the raw values (offline normalisation); live output is normalised here.
      let min = Infinity;
      let max = -Infinity;
      for (const v of o.depth) {
        if (v < min) min = v;
        if (v > max) max = v;
      }
      const depth = this.live ? this.live.apply(o.depth) : o.depth;
      const fractions = this.fills.get(o.index);
      this.fills.delete(o.index);
      const interpolated = fractions?.map((t) => lerpDepth(prev ?? depth, depth, t));
      prev = depth;
      return { index: o.index, depth, window: o.window, min, max, ...(o.latent ? { latent: o.latent } : {}), ...(interpolated ? { fills: interpolated } : {}) };
    });
    if (this.open.fill && prev !== this.lastOut && prev) this.lastOut = prev.slice();
    return wire;
  }
}
