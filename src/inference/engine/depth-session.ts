// Parity-critical: the reference's window loop (layout, noise roll, overlap, stitching, decode chunks); guarded by test/depth-session.test.ts and the parity tests.
import { EulerVSampler } from '../math/euler-sampler.js';
import { stitchOverlap, torchLinspace01 } from '../math/stitching.js';
import { noiseFrameIndex } from '../math/noise-schedule.js';
import { anchoredOverlapFrame, noiseFrame } from '../math/overlap-init.js';
import { readyChunks } from '../math/decode-chunks.js';
import { validateWindow } from '../math/segments.js';
import { FramePrep, type PreparedFrame } from './frame-prep.js';
import type { ModelStages } from '../backend/model-stages.js';
import type { ModelBackend, SamplerSettings } from '../backend/model-backend.js';
import { asBackend } from '../backend/stages-backend.js';
import type { NoiseSource } from './noise-source.js';

// The ONE engine: a stateful depth session that takes frames in order and hands back depth
// frames as soon as no later window can change them. It reproduces the reference's segment
// layout exactly without knowing the video length in advance:
//   - a window runs as soon as W frames are buffered from its start (stride S = W - O);
//   - at the end, leftover frames form a shorter last window (>= O+1 frames), or the whole
//     video if it never filled one window (then overlap is 0, as in the reference);
//   - window k uses the shared noise block rolled by k*O frames, overlap frames start from
//     the previous result + sigma_max * noise, and are blended with linspace(0,1,O) weights;
//   - decoding runs in chunks of 8 aligned to global frame indices, once those frames are final.
// Memory holds at most one window of frames, conditioning and latents, whatever the length.

export interface SessionConfig {
  /** Model resolution (multiples of 64 by the reference's rule; at least multiples of 8). */
  readonly height: number;
  readonly width: number;
  readonly window: number;
  readonly overlap: number;
  readonly steps: number;
  readonly guidance: number;
  readonly sigmaMin: number;
  readonly sigmaMax: number;
  readonly latentChannels: number;
  readonly downsample: number;
  readonly scalingFactor: number;
  readonly noiseAugStrength: number;
  readonly decodeChunk: number;
  readonly embeddingDim: number;
  readonly clipSize: number;
  readonly clipMean: readonly number[];
  readonly clipStd: readonly number[];
  /**
   * How consecutive windows are joined: `full` is the reference (noise-anchored initialisation of
   * the overlap + mortise-and-tenon linear weights); `init-only` keeps the anchored initialisation
   * but averages the overlap 50/50; `average` starts the overlap from pure noise and averages
   * 50/50 (the paper's naive baseline). The last two exist for the stitching ablation.
   */
  readonly stitch?: StitchMode;
  /** Hand out each frame's final stitched latent (scaled latent space) with its depth (parity checks). */
  readonly keepLatents?: boolean;
}

export type StitchMode = 'full' | 'init-only' | 'average';

export interface SessionOutput {
  /** Frame index in the session (0-based, input order). */
  readonly index: number;
  /** Raw disparity in [0,1] before any normalisation: mean over RGB of clamp((x+1)/2). */
  readonly depth: Float32Array;
  /** The window that finalised this frame. */
  readonly window: number;
  /** The stitched latent [C,h,w] that was decoded, when `keepLatents` is set. */
  readonly latent?: Float32Array;
}

/** Hooks for tests and the parity script: see the stitched latents before decoding. */
export interface SessionProbe {
  onStitched?(index: number, latent: Float32Array): void;
  onWindow?(info: { index: number; start: number; length: number }): void;
}

interface FrameCond {
  embedding: Float32Array;
  latent: Float32Array;
}

export class DepthSession {
  /** For the initial latents (sigma_0, init_noise_sigma); the backend runs the steps with the same settings. */
  private readonly sampler: EulerVSampler;
  private readonly samplerSettings: SamplerSettings;
  private readonly backend: ModelBackend;
  /** Inline frame preparation for push(); pushPrepared() takes frames prepared elsewhere. */
  private readonly prep: FramePrep;
  private readonly h: number;
  private readonly w: number;
  private readonly latentSize: number;
  private readonly pixelSize: number;
  /** Conditioning for frames from `condStart` on (each frame encoded exactly once). */
  private cond: FrameCond[] = [];
  private condStart = 0;
  /** Stitched latents for frames from `latentStart` on (scaled latent space). */
  private latents: Float32Array[] = [];
  private latentStart = 0;
  private decodedUpTo = 0;
  private pushed = 0;
  private windowIndex = 0;
  private nextWindowStart = 0;
  private ended = false;
  /** Chunks being decoded, oldest first; the depth frames that came out of them and are not handed out yet. */
  private decoding: Promise<void>[] = [];
  private readonly ready: SessionOutput[] = [];
  private failure: Error | null = null;
  /** Called when decoded depth frames are ready outside a push()/end() call (take them with drain()). */
  onReady: (() => void) | null = null;

  constructor(
    readonly config: SessionConfig,
    /** Where the models run: a backend, or per-step stages run in process (StagesBackend). */
    models: ModelBackend | ModelStages,
    private readonly noise: NoiseSource,
    private readonly probe: SessionProbe = {},
    /** Chunks that may still be decoding when push() returns: 0 decodes each window's chunks before it returns. */
    private readonly maxDecodesInFlight = 0,
  ) {
    validateWindow(config.window, config.overlap);
    if (config.height % config.downsample || config.width % config.downsample) {
      throw new Error(`model resolution ${config.width}x${config.height} must be a multiple of ${config.downsample}`);
    }
    if (!Number.isInteger(config.steps) || config.steps < 1) throw new Error(`steps must be an integer >= 1 (got ${config.steps})`);
    this.backend = asBackend(models);
    this.samplerSettings = { steps: config.steps, sigmaMin: config.sigmaMin, sigmaMax: config.sigmaMax, guidance: config.guidance };
    this.sampler = new EulerVSampler(this.samplerSettings);
    this.prep = new FramePrep(config, noise);
    this.h = config.height / config.downsample;
    this.w = config.width / config.downsample;
    this.latentSize = config.latentChannels * this.h * this.w;
    this.pixelSize = 3 * config.height * config.width;
  }

  get framesPushed(): number {
    return this.pushed;
  }

  /** Windows denoised so far. */
  get windowsRun(): number {
    return this.windowIndex;
  }

  /** Frames decoded and handed out so far. */
  get framesOut(): number {
    return this.decodedUpTo;
  }

  /**
   * Add the next frame: CHW float32 in [-1,1] at the model resolution. Returns the depth frames
   * that became final (none until a window completes).
   */
  async push(frame: Float32Array): Promise<SessionOutput[]> {
    if (frame.length !== this.pixelSize) throw new Error(`frame has ${frame.length} values, expected 3x${this.config.height}x${this.config.width}`);
    if (this.ended) throw new Error('session already ended');
    return this.pushPrepared(this.prep.prepare(frame, this.pushed));
  }

  /** Add the next frame as its encoders' inputs, prepared elsewhere with this session's pixel noise (FramePrep). */
  async pushPrepared(frame: PreparedFrame): Promise<SessionOutput[]> {
    if (this.ended) throw new Error('session already ended');
    if (this.failure) throw this.failure;
    if (frame.vae.length !== this.pixelSize) throw new Error(`frame has ${frame.vae.length} values, expected 3x${this.config.height}x${this.config.width}`);
    this.pushed++;
    this.cond.push(await this.encode(frame));
    const { window } = this.config;
    if (this.pushed - this.nextWindowStart === window) {
      return this.runWindow(this.nextWindowStart, window, this.nextWindowStart + window - this.config.overlap);
    }
    return this.drain();
  }

  /** No more frames: run the last (shorter) window if frames remain, and decode everything. */
  async end(): Promise<SessionOutput[]> {
    if (this.ended) return [];
    this.ended = true;
    const out: SessionOutput[] = [];
    const lastEnd = this.windowIndex === 0 ? 0 : this.nextWindowStart + this.config.overlap;
    if (this.pushed > lastEnd) {
      out.push(...(await this.runWindow(this.nextWindowStart, this.pushed - this.nextWindowStart, this.pushed)));
    }
    out.push(...(await this.decodeUpTo(this.pushed, true)));
    this.cond = [];
    this.latents = [];
    return out;
  }

  private async encode(frame: PreparedFrame): Promise<FrameCond> {
    const { embeddings: embedding, latents: latent } = await this.backend.encodeFrames(frame, 1, this.config.height, this.config.width);
    if (embedding.length !== this.config.embeddingDim)
      throw new Error(`image encoder returned ${embedding.length} values, the pack says embeddingDim ${this.config.embeddingDim}`);
    if (latent.length !== this.latentSize) throw new Error(`VAE encoder returned ${latent.length} values, expected ${this.latentSize}`);
    return { embedding, latent };
  }

  /** Denoise frames [start, start+length), stitch them in, and decode what became final (< finalUpTo). */
  private async runWindow(start: number, length: number, finalUpTo: number): Promise<SessionOutput[]> {
    const k = this.windowIndex;
    const firstWindow = k === 0;
    // A video that never fills a window is one pass with no overlap (the reference sets W := N).
    const overlap = firstWindow ? 0 : this.config.overlap;
    const blockFrames = firstWindow && this.ended ? length : this.config.window;
    this.probe.onWindow?.({ index: k, start, length });

    const L = this.latentSize;
    const { sampler } = this;
    const block = this.noise.latentBlock(blockFrames, L);
    const initSigma = sampler.initNoiseSigma;
    const sigma0 = sampler.sigmas[0];
    const x = new Float32Array(length * L);
    const anchored = (this.config.stitch ?? 'full') !== 'average';
    for (let i = 0; i < length; i++) {
      // Window k uses the block rolled right by k*O frames, so a frame gets the same noise in both windows that hold it.
      const src = noiseFrameIndex(k, i, blockFrames, this.config.overlap);
      const z = block.subarray(src * L, (src + 1) * L);
      const xi = x.subarray(i * L, (i + 1) * L);
      if (i < overlap && anchored) anchoredOverlapFrame(this.latentAt(start + i), z, initSigma, sigma0, xi);
      else noiseFrame(z, initSigma, xi);
    }

    const ehs = new Float32Array(length * this.config.embeddingDim);
    const condLatents: Float32Array[] = [];
    for (let i = 0; i < length; i++) {
      const c = this.cond[start + i - this.condStart];
      ehs.set(c.embedding, i * this.config.embeddingDim);
      condLatents.push(c.latent);
    }
    const denoised = await this.backend.denoiseWindow({ x, condLatents, embeddings: ehs, frames: length, h: this.h, w: this.w, sampler: this.samplerSettings });
    if (denoised.length !== x.length) throw new Error(`the backend denoised ${denoised.length} values, expected ${x.length}`);

    this.stitch(denoised, start, length, overlap);
    this.windowIndex++;
    this.nextWindowStart = start + this.config.window - this.config.overlap;
    // Conditioning before the next window's start is never needed again.
    const drop = Math.min(this.nextWindowStart, this.pushed) - this.condStart;
    if (drop > 0) {
      this.cond.splice(0, drop);
      this.condStart += drop;
    }
    return this.decodeUpTo(Math.min(finalUpTo, this.pushed), false);
  }

  private latentAt(index: number): Float32Array {
    const l = this.latents[index - this.latentStart];
    if (!l) throw new Error(`internal: latent ${index} not held (held from ${this.latentStart})`);
    return l;
  }

  private stitch(x: Float32Array, start: number, length: number, overlap: number): void {
    const L = this.latentSize;
    const weights = (this.config.stitch ?? 'full') === 'full' ? torchLinspace01(overlap) : new Float32Array(overlap).fill(0.5);
    // Mortise and tenon: the old window's weight falls 1 -> 0 while the new one's rises 0 -> 1, blended in place.
    const prev = Array.from({ length: overlap }, (_, i) => this.latentAt(start + i));
    const cur = Array.from({ length: overlap }, (_, i) => x.subarray(i * L, (i + 1) * L));
    stitchOverlap(prev, cur, weights, prev);
    for (let i = 0; i < overlap; i++) this.probe.onStitched?.(start + i, prev[i]);
    for (let i = overlap; i < length; i++) {
      if (start + i !== this.latentStart + this.latents.length) throw new Error('internal: latent frames out of order');
      this.latents.push(x.slice(i * L, (i + 1) * L));
    }
  }

  /**
   * Start decoding every chunk that became final (< finalUpTo), in order; then wait until at most
   * `maxDecodesInFlight` chunks are still decoding (all of them at the end), and hand out the
   * depth frames that are ready.
   */
  private async decodeUpTo(finalUpTo: number, flushAll: boolean): Promise<SessionOutput[]> {
    const chunk = this.config.decodeChunk;
    const { h, w } = this;
    const L = this.latentSize;
    const plane = this.config.height * this.config.width;
    // Chunks are aligned to global indices: only full chunks, and the very last one at the end.
    for (const { start, end } of readyChunks(this.decodedUpTo, finalUpTo, flushAll, chunk)) {
      const n = end - start;
      const z = new Float32Array(n * L);
      const kept: Float32Array[] = [];
      for (let i = 0; i < n; i++) {
        const l = this.latentAt(start + i);
        if (this.config.keepLatents) kept.push(l.slice());
        const dst = z.subarray(i * L, (i + 1) * L);
        for (let j = 0; j < L; j++) dst[j] = l[j] / this.config.scalingFactor;
      }
      const window = this.windowIndex - 1;
      // Started now (a remote decoder works while the next window denoises), collected in order.
      const job = this.backend.decodeChunk(z, n, h, w);
      const previous = this.decoding.at(-1)?.catch(() => {}) ?? Promise.resolve();
      const done = previous.then(async () => {
        const depths = await job;
        if (depths.length !== n || depths.some((d) => d.length !== plane))
          throw new Error(`the backend decoded ${depths.length} depth planes of ${depths[0]?.length} values, expected ${n} of ${plane}`);
        for (let i = 0; i < n; i++) this.ready.push({ index: start + i, depth: depths[i], window, ...(this.config.keepLatents ? { latent: kept[i] } : {}) });
      });
      this.decoding.push(done);
      void done.then(
        () => this.onReady?.(),
        (e: unknown) => {
          this.failure ??= e instanceof Error ? e : new Error(String(e));
          this.onReady?.();
        },
      );
      this.decodedUpTo = end;
    }
    // Keep only latents that a later window or chunk may still read: the last `overlap` frames.
    const keepFrom = Math.min(this.decodedUpTo, this.latentStart + this.latents.length - this.config.overlap);
    if (keepFrom > this.latentStart) {
      this.latents.splice(0, keepFrom - this.latentStart);
      this.latentStart = keepFrom;
    }
    const allowed = flushAll ? 0 : this.maxDecodesInFlight;
    while (this.decoding.length > allowed) await this.decoding.shift();
    return this.drain();
  }

  /** Depth frames whose decode finished since the last call, in order. Throws a decode failure. */
  drain(): SessionOutput[] {
    if (this.failure) throw this.failure;
    return this.ready.splice(0);
  }
}
