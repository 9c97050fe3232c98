import { z } from 'zod';
import { defineNode } from '../../graph/node-kind.js';
import { nowMs, type DepthFrame, type Packet, type VideoFrame } from '../../graph/packets.js';
import { resolve } from 'node:path';
import { DepthEngine, RANDOM_WEIGHTS, SYNTHETIC_ONLY } from '../../inference/engine/depth-engine.js';
import { EngineHost } from '../../inference/engine/engine-host.js';
import { DEFAULT_PACK } from '../../inference/pack/default-pack.js';
import { SourceRate } from '../../inference/live/source-rate.js';
import { StrideController, ThroughputMeter } from '../../inference/live/stride-controller.js';
import { timeFraction } from '../../inference/live/interpolate.js';
import { expectedLatency } from '../../inference/live/latency-model.js';
import { depthMetrics, type SequenceReason } from './depth-metrics.js';
import { CheckError } from '../../graph/check.js';
import { readPackManifest } from '../../inference/pack/manifest.js';
import { sessionConfig } from '../../inference/engine/session-config.js';
import { mergeProviderOptions, ProviderOptionsSchema, resolveExecutionProviders, withProviderOptionsEnv } from '../../inference/pack/provider-options.js';

// The streaming depth node: the live policy around the one engine. When the model is slower than
// the source (the normal case), the node computes every k-th source frame, k the smallest stride
// that keeps the engine real time, changed only at window boundaries; frames skipped by design
// get depth interpolated in time between their computed neighbours (fill), so every frame that
// reached the node comes out, in order. Skipping never ends a sequence: only a source
// discontinuity, a frame-size change or a time gap longer than maxGapMs does. The drop-oldest
// edge in front remains the safety net for bursts; its drops arrive marked on the next frame.

export const depthOptions = z
  .object({
    model: z.string().default(DEFAULT_PACK).describe('Model pack folder (manifest.json + ONNX files).'),
    device: z
      .enum(['cpu', 'cuda', 'tensorrt', 'webgpu'])
      .default('cpu')
      .describe('Execution provider; a provider that cannot load is an error, never a silent fall-back to CPU.'),
    threads: z.number().int().min(1).max(64).optional().describe("ONNX Runtime intra-op threads per model (default: ONNX Runtime's choice)."),
    providerOptions: ProviderOptionsSchema.optional().describe(
      "Execution-provider options over the pack's own (docs/gpu.md): deviceId (cuda/tensorrt), webgpuPreferredLayout; options onnxruntime-node 1.30 cannot pass (trtFp16, trtEngineCacheDir, trtMaxWorkspaceBytes, cudnnConvAlgoSearch) are an error on their device; options for another device are ignored with a note.",
    ),
    window: z
      .number()
      .int()
      .min(1)
      .max(110)
      .optional()
      .describe("Frames per sliding window (the pack's default unless set; at most the pack's maxWindow and 110)."),
    overlap: z
      .number()
      .int()
      .min(0)
      .max(109)
      .optional()
      .describe("Frames shared by consecutive windows, stitched mortise-and-tenon (the pack's default unless set)."),
    steps: z.number().int().min(1).max(100).optional().describe("Denoising steps per window (the pack's default unless set)."),
    guidance: z.number().min(1).max(100).optional().describe("Classifier-free guidance scale; 1 disables it (the pack's default unless set)."),
    seed: z.number().int().min(0).default(42).describe('Seed of the initial and pixel noise (the same seed and frames give the same depth).'),
    maxRes: z
      .number()
      .int()
      .min(64)
      .max(4096)
      .optional()
      .describe("Longest side of the model resolution (multiples of 64); unset: the pack's native resolution or default."),
    stride: z
      .union([z.literal('auto'), z.number().int().min(1).max(64)])
      .default('auto')
      .describe("Compute every k-th source frame: `auto` adapts k to the engine's measured throughput; a number fixes it (1 = every frame)."),
    maxStride: z.number().int().min(1).max(64).default(16).describe('Largest stride `auto` may choose; beyond it the edge in front sheds frames.'),
    fill: z
      .enum(['none', 'hold', 'linear'])
      .default('linear')
      .describe(
        'Depth for frames skipped by the stride: `linear` in time between the computed neighbours, `hold` the previous one, `none` (no output for them).',
      ),
    maxGapMs: z.number().min(1).default(2000).describe('A gap in presentation time longer than this starts a new sequence (a stream that stalled or jumped).'),
    maxInFlight: z.number().int().min(1).max(256).optional().describe('Frames handed to the inference worker before the node waits (default: one window).'),
    engine: z
      .enum(['shared', 'own'])
      .default('shared')
      .describe(
        '`shared`: depth nodes naming the same model, device and threads share one inference worker (one copy of the weights, windows scheduled fairly); `own`: a worker of its own.',
      ),
    rangeAlpha: z.number().gt(0).max(1).default(0.05).describe("Live normalisation: EMA weight of each frame's robust range."),
    keepSource: z.boolean().default(true).describe('Attach the RGB frame to each depth frame (for viewers that show both).'),
  })
  .strict()
  .refine((o) => o.window === undefined || o.overlap === undefined || o.overlap < o.window, {
    message: 'overlap must be smaller than window',
    path: ['overlap'],
  });

/** Recent edge drops within this window make the node report itself degraded. */
const DROP_MEMORY_MS = 10_000;

export const depthNode = defineNode({
  kind: 'depth',
  role: 'transform',
  description: 'DepthCrafter video depth over sliding windows (ONNX model pack, inference in a worker thread)',
  inputs: { video: 'video' },
  outputs: { depth: 'depth' },
  inputPaths: { model: 'pack' },
  options: depthOptions,
  reportsStatus: true,
  async check(o) {
    let manifest;
    try {
      manifest = await readPackManifest(o.model);
    } catch (e) {
      throw new CheckError('options.model', (e as Error).message);
    }
    try {
      sessionConfig(manifest, { window: o.window, overlap: o.overlap, steps: o.steps, guidance: o.guidance }, { height: 64, width: 64 });
    } catch (e) {
      const field = /\b(window|overlap|steps|guidance)\b/.exec((e as Error).message)?.[1];
      throw new CheckError(field ? `options.${field}` : 'options', `${(e as Error).message} (pack ${manifest.name})`);
    }
    for (const [key, value] of Object.entries(mergeProviderOptions(manifest.providerOptions, o.providerOptions))) {
      const own = o.providerOptions?.[key as keyof typeof o.providerOptions] !== undefined;
      try {
        resolveExecutionProviders(o.device, { [key]: value }, own ? 'options.providerOptions' : `pack ${manifest.name} providerOptions`);
      } catch (e) {
        throw new CheckError(own ? `options.providerOptions.${key}` : 'options.model', (e as Error).message);
      }
    }
  },
  async create(o, ctx) {
    const node = ctx.name;
    const L = { node, stream: ctx.stream };
    const m = depthMetrics(ctx.metrics.registry, L);
    const hostOptions = { packDir: o.model, device: o.device, threads: o.threads };
    // Provider options reach the worker's loader through its copy of the environment (withProviderOptionsEnv).
    const po = o.providerOptions;
    for (const note of resolveExecutionProviders(o.device, po, 'options.providerOptions').notes) ctx.log.warn(note);
    // Depth nodes on the same pack and device share one worker and one copy of the weights (streams of a multi-camera pipeline).
    const lease =
      o.engine === 'shared'
        ? await ctx.shared.acquire(
            `depth-engine:${resolve(o.model)}|${o.device}|${o.threads ?? ''}${po && Object.keys(po).length > 0 ? `|${JSON.stringify(po)}` : ''}`,
            () => withProviderOptionsEnv(po, () => EngineHost.start(hostOptions)),
            (h) => h.close(),
          )
        : null;
    let engine: DepthEngine;
    try {
      const streamOptions = {
        choices: { window: o.window, overlap: o.overlap, steps: o.steps, guidance: o.guidance, seed: o.seed, maxRes: o.maxRes },
        live: { alpha: o.rangeAlpha },
        fill: o.fill !== 'none',
      };
      engine = lease
        ? await DepthEngine.onHost(lease.value, streamOptions)
        : await withProviderOptionsEnv(po, () => DepthEngine.open({ ...hostOptions, ...streamOptions }));
    } catch (e) {
      await lease?.release();
      throw e;
    }
    if (lease && !lease.created)
      ctx.log.info(
        { pack: engine.packName, streams: lease.value.streamCount },
        'sharing the depth engine of an earlier node (one worker, one copy of the model)',
      );
    // Honest about the model: random weights draw noise; a pack trained on renders only is not reliable on real video.
    const realSources = ctx.upstreamSources.filter((k) => k !== 'synthetic');
    const packWarning = engine.randomWeights
      ? RANDOM_WEIGHTS(engine.packName)
      : engine.trainingDomain === 'synthetic' && realSources.length > 0
        ? SYNTHETIC_ONLY(engine.packName, realSources)
        : null;
    if (packWarning) ctx.log.warn({ pack: engine.packName }, `model ${packWarning}`);
    const { window: W, overlap: O, steps, decodeChunk } = engine.settings;
    // A window's worth of frames may wait in the worker while it denoises the previous one.
    const inFlight = o.maxInFlight ?? W;
    // Until the worker's first window has run, twice that: the first window runs cold (first model runs) and took
    // 3-5x a steady one with the tiny pack, long enough at 30-40 fps for a window of frames to pile up behind it and
    // the edge in front to drop the next ones, once per start.
    engine.maxInFlight = o.maxInFlight ?? 2 * W;
    const period = W - O;
    ctx.log.info({ pack: engine.packName, window: W, overlap: O, steps, stride: o.stride, fill: o.fill }, 'depth engine ready');

    const rate = new SourceRate();
    const recentLatency = new RecentValues(200);
    // The worker's first window is a warm-up (first runs of each model): not a sample of its throughput. The next four
    // samples replace the value rather than being averaged in (stride-controller.ts): while the whole process warms up
    // (on a loaded 2-core machine the second window measured 6-22 fps, the fourth 65-81), the newest sample wins.
    const meter = new ThroughputMeter(undefined, { skip: 1, replace: 4 });
    const controller = o.stride === 'auto' ? new StrideController({ maxStride: o.maxStride }) : null;
    let k = o.stride === 'auto' ? 1 : o.stride;
    m.stride.set(L, k);

    // The current sequence: frames not yet answered (in order), and those skipped since the last computed one.
    const waiting: Array<{ frame: VideoFrame; computed: boolean }> = [];
    let skipped: VideoFrame[] = [];
    let last: VideoFrame | null = null;
    let lastComputed: VideoFrame | null = null;
    let engineFrames = 0;
    let nextReason: SequenceReason = 'start';
    let nextReasonText = 'first frame';
    let sequences = 0;
    let emitting: Promise<void> = Promise.resolve();
    const counts = { computed: 0, interpolated: 0, skipped: 0 };
    const drops: Array<{ at: number; n: number }> = [];
    let lastDropLog = -Infinity;
    let firstOut = false;

    const recentDrops = (): number => {
      const now = nowMs();
      while (drops.length > 0 && now - drops[0].at > DROP_MEMORY_MS) drops.shift();
      return drops.reduce((a, d) => a + d.n, 0);
    };

    const report = () => {
      const fps = rate.fps;
      // On a shared worker the stream can count on its share of it, not the whole.
      const share = engine.share;
      const thr = meter.fps * share;
      const dropped = recentDrops();
      const expected = fps > 0 && thr > 0 ? expectedLatency({ window: W, overlap: O, chunk: decodeChunk, stride: k }, fps, thr, o.fill === 'none').p95 : NaN;
      if (Number.isFinite(fps)) m.sourceFps.set(L, fps);
      if (Number.isFinite(thr)) m.throughput.set(L, thr);
      if (Number.isFinite(expected)) m.expectedLatency.set(L, expected);
      const slower =
        k > 1
          ? `model slower than the camera: every ${ordinal(k)} frame computed${o.fill === 'none' ? '' : ', the others interpolated'}`
          : 'every frame computed';
      const message = dropped > 0 ? `overloaded: ${dropped} frames dropped in front of the model in the last ${DROP_MEMORY_MS / 1000} s (${slower})` : slower;
      const total = counts.computed + counts.interpolated;
      ctx.setStatus({
        state: !firstOut ? 'starting' : dropped > 0 ? 'degraded' : 'ok',
        message: firstOut ? message : `waiting for the first window (${W} frames)`,
        details: {
          stride: k,
          sourceFps: round(fps),
          throughputFps: round(thr),
          engineShare: round(share),
          latencyP95S: round(recentLatency.p95()),
          computedFps: round(fps / k),
          sequences,
          framesComputed: counts.computed,
          framesInterpolated: counts.interpolated,
          interpolatedShare: total > 0 ? round(counts.interpolated / total, 3) : null,
          droppedRecently: dropped,
          expectedLatencyS: round(expected),
          window: W,
          overlap: O,
          steps,
          pack: engine.packName,
          ...(packWarning ? { packWarning } : {}),
        },
      });
    };
    report();

    const emitDepth = (src: VideoFrame, data: Float32Array, window: number, interpolated: boolean, width: number, height: number) => {
      const out: DepthFrame = {
        type: 'depth',
        streamId: src.streamId,
        seq: src.seq,
        ptsMs: src.ptsMs,
        arrivalMs: src.arrivalMs,
        width,
        height,
        data,
        window,
        ...(interpolated ? { interpolated: true } : {}),
        ...(src.droppedBefore ? { droppedBefore: src.droppedBefore } : {}),
        source: o.keepSource ? src : undefined,
      };
      if (interpolated) counts.interpolated++;
      else counts.computed++;
      m.frames.inc({ ...L, kind: interpolated ? 'interpolated' : 'computed' });
      const latencyS = Math.max(0, nowMs() - src.arrivalMs) / 1000;
      m.latency.observe(L, latencyS);
      recentLatency.add(latencyS);
      // A window's frames come out together (with k - 1 interpolated before each computed one): give the
      // consumer a turn after each, so a fast sink behind a drop-oldest edge is not flooded by the burst.
      emitting = emitting.then(() => ctx.emit('depth', out)).then(yieldTurn);
    };

    // A frame's cost is its work in the inference worker. (The time between frames handled while frames were queued
    // was tried as well: it also counts CPU lost to other processes and the stages in front of the worker, but at
    // start-up, when the whole process warms up at once, it made the first stride 4-6 at 30 fps where 1 sufficed,
    // and doubled the latency; the backlog term of the controller catches a worker that really falls behind.)
    let warm = false;
    engine.onWork = (w) => {
      meter.record(w.busyMs, w.windowRan);
      // Back to one window once the first has run and the backlog it caused is down to that (no stall on the way).
      if (w.windowRan) warm = true;
      if (warm && engine.maxInFlight !== inFlight && engine.backlog - 1 < inFlight) engine.maxInFlight = inFlight;
    };
    engine.onSequence = (s) => ctx.log.debug({ resolution: `${s.resolution.width}x${s.resolution.height}`, sequence: sequences }, 'model resolution fixed');
    engine.onDepth = (d) => {
      for (const fill of d.fills ?? []) {
        const e = waiting.shift();
        if (!e || e.computed) throw new Error('internal: interpolated depth without a skipped frame');
        emitDepth(e.frame, fill, d.window, true, d.width, d.height);
      }
      const e = waiting.shift();
      if (!e || !e.computed) throw new Error('internal: depth frame without a computed source frame');
      emitDepth(e.frame, d.depth, d.window, false, d.width, d.height);
      if (!firstOut) {
        firstOut = true;
        report();
      }
    };

    const sendToEngine = async (p: VideoFrame) => {
      if (engineFrames === 0) {
        sequences++;
        m.sequences.inc({ ...L, reason: nextReason });
        ctx.log.info({ sequence: sequences, reason: nextReason, stride: k }, `depth sequence ${sequences} started (${nextReason}: ${nextReasonText})`);
      }
      const from = lastComputed;
      const fill = from ? skipped.map((f) => (o.fill === 'hold' ? 0 : timeFraction(from.ptsMs, p.ptsMs, f.ptsMs))) : [];
      skipped = [];
      waiting.push({ frame: p, computed: true });
      lastComputed = p;
      engineFrames++;
      // The engine takes ownership of what it is sent; other consumers of this frame keep theirs.
      await engine.push(p.data.slice(), p.width, p.height, undefined, fill);
      if (engineFrames >= W && (engineFrames - W) % period === 0) atWindowBoundary();
    };

    // k changes only here, so the new frames of one window are evenly spaced in time.
    const atWindowBoundary = () => {
      if (controller) {
        const before = k;
        const share = engine.share;
        // On a shared worker up to a window of frames waits for the other streams' turns in steady state: only more is falling behind.
        const backlog = share < 1 ? Math.max(0, engine.backlog - period) : engine.backlog;
        k = controller.next({ sourceFps: rate.fps, throughputFps: meter.fps * share, backlog, period });
        m.stride.set(L, k);
        if (k !== before)
          ctx.log.info(
            { stride: k, was: before, sourceFps: round(rate.fps), throughputFps: round(meter.fps), engineShare: round(engine.share), backlog: engine.backlog },
            `stride ${before} -> ${k}`,
          );
      }
      report();
    };

    const endSequence = async (reason: SequenceReason | null, text: string) => {
      if (skipped.length > 0) {
        // Frames after the last computed one need a right-hand neighbour: compute the newest of them.
        const tail = skipped.pop()!;
        waiting.pop();
        await sendToEngine(tail);
      }
      if (engineFrames > 0) await engine.end();
      last = null;
      lastComputed = null;
      engineFrames = 0;
      await emitting;
      if (reason) {
        nextReason = reason;
        nextReasonText = text;
        if (reason === 'discontinuity') rate.reset();
        await ctx.emit('depth', { type: 'discontinuity', streamId: ctx.stream, reason: text });
      }
    };

    return {
      async process(_port: string, p: Packet) {
        if (p.type === 'discontinuity') {
          await endSequence('discontinuity', p.reason);
          return;
        }
        if (p.type !== 'video') return;
        if (last && (p.width !== last.width || p.height !== last.height)) {
          await endSequence('size', `frame size changed from ${last.width}x${last.height} to ${p.width}x${p.height}`);
        } else if (last && p.ptsMs - last.ptsMs > o.maxGapMs) {
          await endSequence('gap', `no frame for ${Math.round(p.ptsMs - last.ptsMs)} ms (maxGapMs ${o.maxGapMs})`);
        }
        if (p.droppedBefore) {
          drops.push({ at: nowMs(), n: p.droppedBefore });
          if (nowMs() - lastDropLog > DROP_MEMORY_MS) {
            lastDropLog = nowMs();
            ctx.log.warn({ dropped: p.droppedBefore, stride: k }, 'frames dropped in front of the depth node: the model fell behind a burst');
          }
          report();
        }
        rate.observe(p.seq, p.ptsMs);
        last = p;
        if (lastComputed && p.seq - lastComputed.seq < k) {
          counts.skipped++;
          if (o.fill === 'none') {
            ctx.metrics.framesDropped.inc({ ...L, reason: 'stride' });
            return;
          }
          waiting.push({ frame: p, computed: false });
          skipped.push(p);
          return;
        }
        await sendToEngine(p);
        await emitting;
      },
      async flush() {
        await endSequence(null, 'end of stream');
      },
      async close() {
        await engine.close();
        await lease?.release();
      },
    };
  },
});

/** The last n values, for a percentile of recent latency (the histogram metric covers the whole run). */
class RecentValues {
  private readonly values: number[] = [];
  constructor(private readonly n: number) {}
  add(v: number): void {
    this.values.push(v);
    if (this.values.length > this.n) this.values.shift();
  }
  p95(): number {
    if (this.values.length === 0) return NaN;
    const sorted = [...this.values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(0.95 * sorted.length))];
  }
}

function yieldTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function round(v: number, digits = 2): number | null {
  if (!Number.isFinite(v)) return null;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

function ordinal(n: number): string {
  const s = n % 100 >= 11 && n % 100 <= 13 ? 'th' : (({ 1: 'st', 2: 'nd', 3: 'rd' } as Record<number, string>)[n % 10] ?? 'th');
  return `${n}${s}`;
}
